"""Exploration at publish and ``setlist ope`` on a small generated lake: propensities as
recorded, the logging policy valued on itself exactly, a candidate valued per surface, the gate,
and the errors for logs that cannot support an estimate."""
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from setlist import cli, generator, lake, ranking, tracking
from setlist.config import load_config
from setlist.errors import GateRefused, OpeError
from setlist.pipeline import daily, ope, publish

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
EXPLORE = ["publish.exploration.policy=epsilon_greedy", "publish.exploration.epsilon=0.5",
           "publish.exploration.pool=5"]


def small(root):
    from conftest import TEST_OVERRIDES
    from test_daily_e2e import SMALL
    return TEST_OVERRIDES + [o for o in SMALL if "sequential" not in o] + [
        f"paths.lake={root / 'lake'}", f"paths.raw={root / 'raw'}",
        f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"paths.mlflow_artifacts={root / 'mlartifacts'}", f"paths.checkpoints={root / 'checkpoints'}",
        f"paths.compiled_models={root / 'compiled'}"]


def register_ranker(cfg, frame, seed):
    """A LambdaRank model on the day's real features, labels from a random mix of them."""
    features = [c for c in frame.columns if c not in ("user_id", "surface", "track_id", "sources")]
    rng = np.random.default_rng(seed)
    numeric = frame[features].astype(float).fillna(0.0)
    signal = (numeric - numeric.mean()) / (numeric.std() + 1e-9) @ rng.normal(size=len(features))
    train = ranking.sort_groups(frame.assign(label=pd.qcut(signal, 4, labels=False, duplicates="drop")))
    booster = lgb.train({"objective": "lambdarank", "num_leaves": 7, "verbosity": -1, "seed": seed},
                        lgb.Dataset(train[features].astype(float), label=train["label"],
                                    group=ranking.group_sizes(train)), num_boost_round=10)
    with tracking.start_run(cfg, f"test-ranker-{seed}"):
        return tracking.log_ranker(cfg, booster, train[features].astype(float).head(5))


@pytest.fixture(scope="module")
def logged(spark, tmp_path_factory):
    """Day 2's candidates, two registered rankers (the first is champion), day 2 published first
    without exploration (what ``setlist ope`` then refuses) and then with it; day 3's listens
    reward day 2's lists."""
    root = tmp_path_factory.mktemp("ope")
    overrides = small(root)
    cfg = load_config(overrides=overrides)
    world = generator.build_world(cfg.generator)
    for ds in DAYS:
        events = generator.generate_day(cfg.generator, ds, world)
        lake.write_raw_day(events, lake.raw_day_path(cfg, ds), "json", cfg.generator.files_per_day)
        daily.run_step(spark, cfg, "ingest", ds, "ope-test")
    for step in ("interactions", "candidates"):
        daily.run_step(spark, cfg, step, DAYS[1], "ope-test")
    union = lake.read_table(spark, cfg, cfg.tables.candidates, DAYS[1])
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, DAYS[1])
    frame = publish.champion_features(spark, cfg, union, interactions, DAYS[1]).toPandas()
    champion = register_ranker(cfg, frame, seed=1)
    challenger = register_ranker(cfg, frame, seed=2)
    tracking.set_champion(cfg, champion)
    publish.run(spark, cfg, DAYS[1], "plain-publish")
    with pytest.raises(OpeError) as refused:
        ope.run(spark, cfg, "champion", DAYS[1], DAYS[1], gate=False, run_id="t0")
    explore_cfg = load_config(overrides=overrides + EXPLORE)
    publish.run(spark, explore_cfg, DAYS[1], "ope-publish")
    return explore_cfg, overrides, champion, challenger, str(refused.value)


def recs(cfg, ds):
    table = DeltaTable(lake.table_path(cfg, cfg.tables.ranked_recs)).to_pandas()
    return table[table.ds == ds].sort_values(["user_id", "surface", "rank"]).reset_index(drop=True)


def test_exploring_publish_records_the_policys_propensities_and_reruns_identically(spark, logged):
    cfg, _, champion, _, _ = logged
    day = recs(cfg, DAYS[1])
    assert set(day.model_version) == {str(champion)} and (day.propensity > 0).all()
    epsilon, pool = 0.5, 5
    for _, rows in day.groupby(["user_id", "surface"]):
        greedy = rows.sort_values(["score", "track_id"], ascending=[False, True])["rank"].to_numpy()
        greedy_rank = np.empty(len(rows), dtype=int)
        greedy_rank[np.argsort(greedy)] = np.arange(1, len(rows) + 1)  # served rank -> greedy rank
        expected = np.where(rows["rank"] <= pool,
                            (1 - epsilon) * (greedy_rank == rows["rank"]) + epsilon / pool, 1.0)
        np.testing.assert_allclose(rows["propensity"].to_numpy(), expected)
    shuffled = day.groupby(["user_id", "surface"])["score"].apply(lambda s: not s.is_monotonic_decreasing)
    assert 0.2 < shuffled.mean() < 0.8  # about half the lists explored
    publish.run(spark, cfg, DAYS[1], "ope-publish-again")
    pd.testing.assert_frame_equal(recs(cfg, DAYS[1]), day)


def test_the_logging_policy_valued_on_itself_is_its_logged_value(spark, logged):
    cfg, _, champion, _, _ = logged
    estimates = ope.run(spark, cfg, "champion", DAYS[1], DAYS[1], gate=False, run_id="t1")
    at = estimates.set_index(["surface", "setting", "estimator"])
    day = recs(cfg, DAYS[1])
    listens = DeltaTable(lake.table_path(cfg, cfg.tables.listens)).to_pandas()
    played = listens[(listens.ds == DAYS[2]) & (listens.ms_played >= cfg.rewards.listen_threshold_s * 1000)]
    hits = set(zip(played.user_id, played.track_id))
    top = day[day["rank"] <= cfg.ope.slate]
    per_list = top.assign(hit=[(u, t) in hits for u, t in zip(top.user_id, top.track_id)]).groupby(
        ["user_id", "surface"])["hit"].sum()
    assert at.loc[("all", "slate", "logged"), "value"] == pytest.approx(per_list.mean())
    assert at.loc[("all", "slate", "logged"), "n_lists"] == len(per_list)
    for estimator in ("ips", "snips"):  # every weight is exactly 1
        for surface in cfg.publish.surfaces + ["all"]:
            assert at.loc[(surface, "slate", estimator), "value"] == pytest.approx(
                at.loc[(surface, "slate", "logged"), "value"])
    assert at.loc[("all", "slate", "ips"), "ess"] == pytest.approx(len(per_list))
    with pytest.raises(GateRefused, match="lower bound .* below the champion's logged value"):
        ope.check_gate(estimates, cfg, champion)


def test_setlist_ope_values_a_candidate_per_surface_and_logs_to_mlflow(logged, capsys):
    cfg, overrides, _, challenger, _ = logged
    argv = ["ope", "--model", f"models:/{cfg.tracking.model_name}/{challenger}", "--start", DAYS[1],
            "--end", DAYS[1]] + [x for o in overrides + EXPLORE for x in ("--set", o)]
    args = cli.command_parser().parse_args(argv)
    assert cli.run_command(args.handler, args) == 0
    table = capsys.readouterr().out
    for surface in cfg.publish.surfaces:
        assert f"\n{surface:<12}slate  dr" in table
    import mlflow
    run = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name],
                             filter_string="tags.`setlist.step` = 'ope'", output_format="list")[0]
    assert run.data.params["model_version"] == str(challenger)
    assert np.isfinite(run.data.metrics["all.slate.dr.value"])


def test_logs_that_cannot_support_an_estimate_are_refused_with_the_reason(spark, logged):
    cfg, refused = logged[0], logged[4]
    assert f"OPE needs exploration, and {DAYS[1]} lack" in refused  # published without it
    with pytest.raises(OpeError, match=f"OPE needs exploration, and {DAYS[0]} lack"):  # no lists at all
        ope.run(spark, cfg, "champion", DAYS[0], DAYS[1], gate=False, run_id="t2")
    plain = cfg.model_copy(update={"publish": cfg.publish.model_copy(update={"exploration": type(
        cfg.publish.exploration)()})})  # exploration off: not the config the day was published with
    with pytest.raises(OpeError, match="differ from those of the exploration config given"):
        ope.run(spark, plain, "champion", DAYS[1], DAYS[1], gate=False, run_id="t5")
    with pytest.raises(OpeError, match="no lists between 2026-10-01 and 2026-10-02"):
        ope.run(spark, cfg, "champion", "2026-10-01", "2026-10-02", gate=False, run_id="t3")
    with pytest.raises(OpeError, match="no listens on 2026-11-04"):
        cfg3 = cfg.model_copy(update={"ope": cfg.ope.model_copy(update={"reward_days": 2})})
        ope.run(spark, cfg3, "champion", DAYS[1], DAYS[1], gate=False, run_id="t4")
