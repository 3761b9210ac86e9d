"""The daily pipeline end to end on two small generated days."""
import json

import pandas as pd
import pytest
from deltalake import DeltaTable

from setlist import generator, lake
from setlist.pipeline import daily
from setlist.publish import RANKED_RECS_COLUMNS

from conftest import event, write_lines

DAYS = ["2026-11-01", "2026-11-02"]
TABLES = ["listens", "quarantined_events", "ingest_audit", "interactions", "candidates", "ranked_recs"]
SMALL = ["generator.n_users=60", "generator.n_artists=40", "generator.n_genres=5",
         "generator.files_per_day=2", "publish.top_n=10",
         # One ALS block: Spark sums YtY over blocks in task-finish order, so with more
         # blocks a rerun differs in the last float bits and near-tied ranks can swap.
         "candidates.als.num_blocks=1", "candidates.als.rank=8", "candidates.als.max_iter=5",
         # The whole chain, the transformer included: train_sequential -> candidates -> ranker -> publish.
         "candidates.sequential.train_in_daily=true"]


def frame(cfg, table):
    return DeltaTable(lake.table_path(cfg, table)).to_pandas()


def sorted_frame(df):
    df = df.copy()
    for col in df.columns:  # arrays/maps are not orderable; compare their text
        if df[col].map(lambda v: isinstance(v, (list, dict)) or hasattr(v, "tolist")).any():
            df[col] = df[col].map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str))
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("e2e")
    cfg = load_config(overrides=TEST_OVERRIDES + SMALL + [f"paths.lake={root / 'lake'}",
                                                          f"paths.raw={root / 'raw'}",
                                                          f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
                                                          f"paths.mlflow_artifacts={root / 'mlartifacts'}",
                                                          f"paths.checkpoints={root / 'checkpoints'}"])
    world = generator.build_world(cfg.generator)
    lines_per_day = {}
    for ds in DAYS:
        events = generator.generate_day(cfg.generator, ds, world)
        lake.write_raw_day(events, lake.raw_day_path(cfg, ds), "json", cfg.generator.files_per_day)
        lines_per_day[ds] = len(events)
    # Bad rows as an upstream bug would send them, in a file of their own on day 2.
    bad = [json.dumps(event(1, event_id="bad-surface", ts="2026-11-02T10:00:00Z", surface="car")),
           json.dumps(event(2, event_id="bad-ms", ts="2026-11-02T10:00:00Z", ms_played=-3)),
           json.dumps(event(3, event_id="late", ts="2026-11-01T10:00:00Z")),
           '{"event_id": "cut", "user_id": "u1", "tra']
    write_lines(lake.raw_day_path(cfg, DAYS[1]), bad, "part-99999.json")
    lines_per_day[DAYS[1]] += len(bad)
    ran = daily.backfill(spark, cfg, DAYS[0], DAYS[1], "e2e")
    assert ran == DAYS
    return cfg, lines_per_day


def test_every_raw_row_is_accounted_for(generated):
    cfg, lines_per_day = generated
    audit = frame(cfg, "ingest_audit").set_index("ds")
    listens, quarantined = frame(cfg, "listens"), frame(cfg, "quarantined_events")
    for ds, lines in lines_per_day.items():
        row = audit.loc[ds]
        assert row.rows_read == lines
        assert row.accepted + row.quarantined + row.duplicates == lines
        assert (listens.ds == ds).sum() == row.accepted
        assert (quarantined.ds == ds).sum() == row.quarantined
    day2 = quarantined[quarantined.ds == DAYS[1]].set_index("event_id")
    assert day2.loc["bad-surface", "reason_code"] == "UNKNOWN_SURFACE"
    assert day2.loc["bad-ms", "reason_code"] == "NEGATIVE_MS_PLAYED"
    assert day2.loc["late", "reason_code"] == "TS_OUTSIDE_DAY"
    assert "MALFORMED_RECORD" in set(day2.reason_code)


def test_recommendations_are_ranked_lists_per_user_and_day(generated):
    cfg, _ = generated
    recs = frame(cfg, "ranked_recs")
    assert set(recs.ds) == set(DAYS)
    assert list(recs.columns) == RANKED_RECS_COLUMNS
    # No champion after two days (the ranker trains from day 4): the blend is published.
    assert set(recs.model_version) == {cfg.publish.model_version}
    assert set(recs.surface) == set(cfg.publish.surfaces)
    for _, lst in recs.groupby(["ds", "user_id", "surface"]):
        assert sorted(lst["rank"]) == list(range(1, len(lst) + 1))
        assert len(lst) <= cfg.publish.top_n
        assert lst.track_id.is_unique
        assert lst.sort_values("rank").score.is_monotonic_decreasing
    users_with_history = frame(cfg, "interactions").query("ds == @DAYS[1]").user_id.nunique()
    assert recs[recs.ds == DAYS[1]].user_id.nunique() == users_with_history


def test_the_transformer_trained_in_the_chain_proposes_candidates_that_reach_the_lists(generated):
    cfg, _ = generated
    union = frame(cfg, "candidates")
    for ds in DAYS:  # each day's candidates are scored by that day's champion
        assert union[(union.ds == ds) & union.sequential_flag.fillna(False)].user_id.nunique() > 0
    recs = frame(cfg, "ranked_recs")
    assert recs.sources.map(lambda s: "sequential" in list(s)).any()
    # Day 2's model went through the gate against day 1's champion, on the same held-out plays.
    import mlflow
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name], output_format="list",
                              filter_string="tags.step = 'train_sequential'")
    day2 = next(r for r in runs if r.data.tags["ds"] == DAYS[1])
    assert "champion_val_ndcg_at_10" in day2.data.metrics
    assert day2.data.tags["gate_decision"] in ("promoted", "refused") and "champion's" in day2.data.tags["gate_message"]


def test_rerunning_a_day_replaces_it_with_the_same_content(spark, generated):
    cfg, _ = generated
    before = {t: frame(cfg, t) for t in TABLES}
    versions = {t: DeltaTable(lake.table_path(cfg, t)).version() for t in TABLES}
    daily.run(spark, cfg, DAYS[1], "e2e-rerun")
    for table in TABLES:
        after = frame(cfg, table)
        assert DeltaTable(lake.table_path(cfg, table)).version() == versions[table] + 1, table
        if table == "ingest_audit":  # records which run wrote it
            before[table] = before[table].drop(columns="run_id")
            after = after.drop(columns="run_id")
        pd.testing.assert_frame_equal(sorted_frame(after), sorted_frame(before[table]), obj=table)
    history = DeltaTable(lake.table_path(cfg, "ranked_recs")).history()
    assert [h["operation"] for h in history[:2]] == ["WRITE", "WRITE"]


def test_backfill_skips_complete_days(spark, generated):
    cfg, _ = generated
    version = DeltaTable(lake.table_path(cfg, "ranked_recs")).version()
    assert daily.backfill(spark, cfg, DAYS[0], DAYS[1], "again") == []
    assert DeltaTable(lake.table_path(cfg, "ranked_recs")).version() == version
