"""Train-ranker step and publishing with the champion, on four tiny generated days."""
import mlflow
import numpy as np
import pytest
from pyspark.sql import functions as F

from setlist import generator, lab, lake, ranking, tracking
from setlist.candidates.own_artists import own_artists_candidates
from setlist.candidates.popularity import popularity_candidates
from setlist.candidates.union import union_candidates
from setlist.events import LISTENS_SCHEMA
from setlist.features import SURFACE_CODE, feature_columns
from setlist.interactions import build_interactions
from setlist.config import load_config
from setlist.pipeline import lab as lab_step
from setlist.pipeline import publish, train_ranker

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
SMALL = ["generator.n_users=40", "generator.n_artists=30", "generator.n_genres=4",
         "candidates.sources=[popularity,own_artists]",
         "candidates.source_priority=[own_artists,popularity]", "candidates.top_n_per_source=20",
         "ranking.num_boost_round=30", "ranking.early_stopping_rounds=10", "ranking.num_leaves=7",
         "ranking.min_data_in_leaf=5", "ranking.num_threads=1", "ranking.gate_tolerance=0.0",
         "publish.top_n=5", "publish.surfaces=[home,radio]"]


@pytest.fixture(scope="module")
def lake_days(spark, tmp_path_factory):
    """Listens and candidates of DAYS written straight to a temp lake (no ingest, two cheap sources)."""
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("ranker")
    cfg = load_config(overrides=TEST_OVERRIDES + SMALL + [
        f"paths.lake={root / 'lake'}", f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"paths.mlflow_artifacts={root / 'mlartifacts'}"])
    world = generator.build_world(cfg.generator)
    c = cfg.candidates
    for ds in DAYS:
        day = spark.createDataFrame(generator.generate_day(cfg.generator, ds, world).astype({"ts": str}))
        day = day.withColumn("ds", F.lit(ds)).select(
            *[F.col(f.name).cast(f.dataType).alias(f.name) for f in LISTENS_SCHEMA.fields])
        lake.write_partition(day, cfg, cfg.tables.listens, ds, "fixture")
        listens = lake.read_table(spark, cfg, cfg.tables.listens).where(F.col("ds") <= ds)
        interactions = build_interactions(listens, ds, cfg.rewards).cache()
        lake.write_partition(interactions, cfg, cfg.tables.interactions, ds, "fixture")
        frames = [popularity_candidates(interactions, listens, c.popularity),
                  own_artists_candidates(interactions, c.own_artists)]
        union = union_candidates(frames, c.sources).withColumn("ds", F.lit(ds))
        lake.write_partition(union, cfg, cfg.tables.candidates, ds, "fixture")
        interactions.unpersist()
    return cfg


@pytest.fixture(scope="module")
def first_model(spark, lake_days):
    return train_ranker.run(spark, lake_days, DAYS[-1], "first")


def test_too_little_history_is_skipped_without_logging(spark, lake_days):
    result = train_ranker.run(spark, lake_days, DAYS[-2], "early")
    assert result.status == train_ranker.SKIPPED and "listens ds=2026-11-03" not in result.message
    assert "candidates ds=2026-10-31" in result.message


def test_the_first_model_becomes_champion_with_its_run_logged(lake_days, first_model):
    cfg = lake_days
    assert first_model.status == train_ranker.PROMOTED
    assert tracking.champion_version(cfg) == first_model.version == 1
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    run = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name], output_format="list",
                             filter_string="tags.step = 'train_ranker'")[0]
    assert run.data.tags["gate_decision"] == "promoted"
    assert run.data.metrics["gate_promoted"] == 1.0
    assert {"ranker_ndcg_at_10", "ranker_map_at_10", "ranker_hit_rate_at_10",
            "popularity_order_ndcg_at_10"} <= set(run.data.metrics)
    assert run.data.params["train_ds"] == DAYS[0] and run.data.params["eval_ds"] == DAYS[2]
    artifacts = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id)}
    assert {"feature_importance.png", "feature_importance.json"} <= artifacts
    model = mlflow.models.get_model_info(f"models:/{cfg.tracking.model_name}@{cfg.tracking.champion_alias}")
    assert model.signature is not None
    assert [i.name for i in model.signature.inputs.inputs] == feature_columns(cfg)


def test_a_worse_model_is_refused_and_an_equal_one_promoted(spark, lake_days, first_model):
    cfg = lake_days
    days = train_ranker.split_days(DAYS[-1], cfg.ranking.train_lag_days)
    frames = train_ranker.day_frames(spark, cfg, days)
    shuffled = frames["train"].copy()
    shuffled["label"] = np.random.default_rng(cfg.ranking.seed).permutation(shuffled["label"].to_numpy())

    def fit(train):
        return ranking.fit_ranker(train, frames["valid"], feature_columns(cfg), [SURFACE_CODE], cfg.ranking,
                                  cfg.evaluation.ranking_k)

    worse = train_ranker.release(cfg, fit(shuffled), frames["eval"], DAYS[-1], "shuffled")
    assert worse.status == train_ranker.REFUSED
    assert "champion" in worse.message and "ndcg_at_10" in worse.message
    assert tracking.champion_version(cfg) == first_model.version
    assert worse.metrics["ranker_ndcg_at_10"] < worse.metrics["champion_ndcg_at_10"]

    equal = train_ranker.release(cfg, fit(frames["train"]), frames["eval"], DAYS[-1], "retrained")
    assert equal.status == train_ranker.PROMOTED
    assert tracking.champion_version(cfg) == equal.version == worse.version + 1


def test_publish_uses_the_champion_and_a_rerun_keeps_one_copy(spark, lake_days, first_model):
    cfg = lake_days
    champion = tracking.champion_version(cfg)
    for run_id in ["pub-1", "pub-2"]:
        assert publish.run(spark, cfg, DAYS[-1], run_id) == str(champion)
    recs = lake.read_table(spark, cfg, cfg.tables.ranked_recs, DAYS[-1]).toPandas()
    assert not recs.duplicated(["user_id", "surface", "rank"]).any()
    assert not recs.duplicated(["user_id", "surface", "track_id"]).any()
    assert set(recs.model_version) == {str(champion)}
    assert set(recs.surface) == set(cfg.publish.surfaces)
    assert recs.groupby(["user_id", "surface"]).size().max() == cfg.publish.top_n
    for _, lst in recs.groupby(["user_id", "surface"]):
        assert lst.sort_values("rank").score.is_monotonic_decreasing
    candidates = lake.read_table(spark, cfg, cfg.tables.candidates, DAYS[-1]).select("user_id").distinct().count()
    assert recs.user_id.nunique() == candidates
    assert [h.operation for h in lake.history(spark, cfg, cfg.tables.ranked_recs).collect()[:2]] == ["WRITE", "WRITE"]


def test_each_variant_is_served_its_own_model_and_recorded(spark, lake_days, first_model):
    """treatment -> version 1 while the champion is a later version: treatment users get
    exactly version 1's lists, control users the champion's, and every row says which."""
    from setlist.config import ExperimentConfig
    from setlist.pipeline import experiments
    champion = tracking.champion_version(lake_days)
    assert champion != 1
    experiment = ExperimentConfig(name="ranker_ab", salt="ab-salt", allocation={"control": 0.5, "treatment": 0.5},
                                  models={"control": "champion", "treatment": 1}, start_date=DAYS[-1])
    cfg = lake_days.model_copy(update={"experiments": lake_days.experiments.model_copy(
        update={"experiments": [experiment]})})
    experiments.assign(spark, cfg, DAYS[-1], "assign-ab")
    publish.run(spark, cfg, DAYS[-1], "pub-ab")
    recs = lake.read_table(spark, cfg, cfg.tables.ranked_recs, DAYS[-1]).toPandas()
    assignments = lake.read_table(spark, cfg, cfg.tables.experiment_assignments, DAYS[-1]).toPandas()
    variant_of = assignments.set_index("user_id")["variant"]
    assert (recs["variant"] == recs["user_id"].map(variant_of)).all() and set(recs["experiment"]) == {"ranker_ab"}
    assert set(recs.loc[recs.variant == "treatment", "model_version"]) == {"1"}
    assert set(recs.loc[recs.variant == "control", "model_version"]) == {str(champion)}

    # The same day published with version 1 for everyone, into another table.
    alias = cfg.model_copy(update={"tracking": cfg.tracking.model_copy(update={"champion_alias": "only_v1"}),
                                   "tables": cfg.tables.model_copy(update={"ranked_recs": "ranked_recs_v1"}),
                                   "experiments": lake_days.experiments.model_copy(update={"experiments": []})})
    tracking.set_champion(alias, 1)
    publish.run(spark, alias, DAYS[-1], "pub-v1")
    by_v1 = lake.read_table(spark, alias, "ranked_recs_v1", DAYS[-1]).toPandas()
    keys = ["user_id", "surface", "rank"]
    treated = recs[recs.variant == "treatment"].sort_values(keys).reset_index(drop=True)
    expected = by_v1[by_v1.user_id.isin(set(treated.user_id))].sort_values(keys).reset_index(drop=True)
    assert len(treated) > 0
    assert (treated.track_id == expected.track_id).all()
    np.testing.assert_allclose(treated.score, expected.score, rtol=0, atol=1e-12)


def test_a_days_frame_is_kept_and_reused_until_its_candidates_are_rewritten(spark, lake_days):
    import pandas as pd
    cfg = lake_days
    day = train_ranker.split_days(DAYS[-1], cfg.ranking.train_lag_days)["train"]
    first = train_ranker.day_frame(spark, cfg, day, "keep-a")
    commits = lake.history(spark, cfg, cfg.tables.ranker_frames).count()
    again = train_ranker.day_frame(spark, cfg, day, "keep-b")
    assert lake.history(spark, cfg, cfg.tables.ranker_frames).count() == commits  # reused, not rebuilt
    pd.testing.assert_frame_equal(first, again)
    assert len(first) > 0 and "label" in first.columns and train_ranker.FINGERPRINT not in first.columns
    candidates = lake.read_table(spark, cfg, cfg.tables.candidates, day)
    lake.write_partition(spark.createDataFrame(candidates.toPandas(), candidates.schema), cfg,
                         cfg.tables.candidates, day, "candidates-rerun")
    rebuilt = train_ranker.day_frame(spark, cfg, day, "keep-c")
    assert lake.history(spark, cfg, cfg.tables.ranker_frames).count() == commits + 1  # stale: rebuilt
    pd.testing.assert_frame_equal(first, rebuilt)  # same candidates, same frame


def test_lab_runs_variants_on_the_ranker_split_and_logs_a_parent_with_children(spark, lake_days):
    cfg, overrides = lake_days, lake_days_overrides(lake_days)
    variants = [lab_step.parse_variant("noise:lab.signals=[noise]"),
                lab_step.parse_variant("saves5:rewards.save_weight=5")]
    lifts, best = lab_step.run(spark, cfg, None, overrides, variants, DAYS[-1], "lab-test")
    assert {(x.variant, x.surface) for x in lifts} >= {("noise", lab.ALL_SURFACES), ("saves5", lab.ALL_SURFACES)}
    assert all(x.users > 0 and np.isfinite(x.lift) for x in lifts)
    assert best in (None, "noise", "saves5")
    # The reward variant got its own interactions and candidates; the lake's are untouched.
    assert lake.table_exists(spark, cfg, "lab_saves5_candidates")
    assert not lake.table_exists(spark, cfg, "lab_noise_candidates")
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name], filter_string="tags.step = 'lab'")
    parent = runs.iloc[0]
    children = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'")
    assert sorted(children["tags.mlflow.runName"]) == [f"lab-{DAYS[-1]}-noise", f"lab-{DAYS[-1]}-saves5"]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(parent.run_id)}
    assert {"lift_by_surface.png", "lifts.json", "lifts.txt"} <= artifacts


def lake_days_overrides(cfg):
    """The overrides that rebuild ``test_train_ranker``'s config (the lab loads variants from them)."""
    from conftest import TEST_OVERRIDES
    overrides = TEST_OVERRIDES + SMALL + [f"paths.lake={cfg.paths.lake}",
                                          f"paths.mlflow_tracking_uri={cfg.paths.mlflow_tracking_uri}",
                                          f"paths.mlflow_artifacts={cfg.paths.mlflow_artifacts}",
                                          f"paths.checkpoints={cfg.paths.lake}/../checkpoints"]
    assert load_config(overrides=overrides).candidates == cfg.candidates
    return overrides
