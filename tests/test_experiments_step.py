"""Experiment steps on simulated listens with a known effect: assignments, results, report, MLflow."""
from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable

from setlist import lake
from setlist.config import ExperimentConfig
from setlist.experiments.analysis import analyze
from setlist.experiments.assignment import assign_variant
from setlist.experiments.outcomes import user_outcomes
from setlist.experiments.simulator import simulate_events, simulate_users
from setlist.pipeline import experiments

START = "2026-11-08"
LIFT = 0.25
AB = {"name": "home_ranker", "salt": "home_ranker_2026", "start_date": START,
      "allocation": {"control": 0.5, "treatment": 0.5}, "models": {"control": "champion", "treatment": 7}}
LATER = {"name": "later", "salt": "later_salt", "start_date": "2026-12-01",
         "allocation": {"control": 0.5, "treatment": 0.5}, "models": {"control": "champion", "treatment": 9}}
SIM = ["experiments.simulator.n_users=400", "experiments.simulator.pre_days=7",
       "experiments.simulator.post_days=7", "experiments.pre_days=7",
       "experiments.metrics=[minutes_played, streams, skips, rec_minutes_played]"]
LAST_DAY = "2026-11-14"  # START + post_days - 1


def frame(cfg, table):
    return DeltaTable(lake.table_path(cfg, table)).to_pandas()


def simulated_users(cfg, experiment: ExperimentConfig) -> pd.DataFrame:
    """Simulated users whose variant is the hashed one, treatment minutes lifted by LIFT."""
    sim = cfg.experiments.simulator
    users = simulate_users(experiment, sim, np.random.default_rng(sim.seed), relative_lift=0.0)
    users["variant"] = [assign_variant(u, experiment) for u in users.user_id]
    lifted = np.where(users.variant == "treatment", 1 + LIFT, 1.0)
    users["minutes_played"] = np.round(users.minutes_played * lifted * 60_000) / 60_000
    return users


def as_listens(events: pd.DataFrame) -> pd.DataFrame:
    """Simulated events in the listens layout the outcome metrics read."""
    return pd.DataFrame({
        "user_id": events.user_id, "ts": events.ts, "ms_played": events.ms_played,
        "track_duration_ms": 210_000, "skipped": events.skipped, "saved": events.saved,
        "reason_end": np.where(events.skipped, "fwdbtn", "trackdone"),
        "surface": np.where(events.from_recommendation, "home", "library"),
        "ds": events.ts.dt.strftime("%Y-%m-%d")})


@pytest.fixture(scope="module")
def simulated(spark, tmp_path_factory):
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("experiments")
    cfg = load_config(overrides=TEST_OVERRIDES + SIM + [
        f"paths.lake={root / 'lake'}", f"paths.reports={root / 'reports'}",
        f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}", f"paths.mlflow_artifacts={root / 'mlart'}",
        f"experiments.experiments=[{AB}, {LATER}]".replace("'", '"')])
    experiment = cfg.experiments.experiments[0]
    users = simulated_users(cfg, experiment)
    events = simulate_events(users, experiment, cfg.experiments.simulator, seed=3)
    lake.replace_table(spark.createDataFrame(as_listens(events)), cfg, cfg.tables.listens, "sim")
    experiments.assign(spark, cfg, LAST_DAY, "assign")
    written = experiments.analyze(spark, cfg, LAST_DAY, "analyze")
    return cfg, experiment, users, events, written


def test_assignments_hold_every_seen_user_once_per_experiment_with_the_hashed_variant(simulated):
    cfg, experiment, _, events, _ = simulated
    assignments = frame(cfg, "experiment_assignments")
    assert list(assignments.columns) == ["experiment", "user_id", "bucket", "variant", "model_ref", "ds"]
    assert set(assignments.ds) == {LAST_DAY}
    seen = set(events.user_id)
    for exp in cfg.experiments.experiments:
        rows = assignments[assignments.experiment == exp.name]
        assert set(rows.user_id) == seen and rows.user_id.is_unique
        assert (rows.variant == [assign_variant(u, exp) for u in rows.user_id]).all()
        assert (rows.model_ref == rows.variant.map({k: str(v) for k, v in exp.models.items()})).all()
    # Different salts: the two experiments split users independently.
    pivot = assignments.pivot(index="user_id", columns="experiment", values="variant")
    assert 0.3 < (pivot.home_ranker == pivot.later).mean() < 0.7


def test_outcomes_aggregate_the_simulated_minutes_per_period(spark, simulated):
    cfg, experiment, users, events, _ = simulated
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    assignments = lake.read_table(spark, cfg, cfg.tables.experiment_assignments, LAST_DAY)
    outcomes = user_outcomes(listens, assignments, experiment, cfg.experiments, cfg.rewards, LAST_DAY).toPandas()
    seen = users[users.user_id.isin(set(events.user_id))].set_index("user_id")
    outcomes = outcomes.set_index("user_id").loc[seen.index]
    np.testing.assert_allclose(outcomes.minutes_played, seen.minutes_played, rtol=1e-12)
    np.testing.assert_allclose(outcomes.minutes_played_pre, seen.minutes_played_pre, rtol=1e-12)
    post = as_listens(events).query("ds >= @START")
    # The interaction matrix's early skip: flagged and ended before the listen threshold.
    early = post.skipped & (post.ms_played < 30_000)
    expected_skips = early.groupby(post.user_id).sum().reindex(seen.index, fill_value=0)
    expected_streams = (post.ms_played >= 30_000).groupby(post.user_id).sum().reindex(seen.index, fill_value=0)
    rec = post[post.surface == "home"].groupby("user_id").ms_played.sum().reindex(seen.index, fill_value=0)
    np.testing.assert_array_equal(outcomes.skips, expected_skips)
    np.testing.assert_array_equal(outcomes.streams, expected_streams)
    np.testing.assert_allclose(outcomes.rec_minutes_played, rec / 60_000, rtol=1e-12)
    assert (outcomes.variant == seen.variant).all()


def test_outcomes_give_zero_to_assigned_users_without_listening(spark, make_cfg):
    cfg = make_cfg(f"experiments.experiments=[{AB}]".replace("'", '"'), "experiments.metrics=[minutes_played]")
    listens = spark.createDataFrame(
        [("u1", "2026-11-01", 120_000, False, False, "home"), ("u1", "2026-11-08", 60_000, True, False, "home"),
         ("u2", "2026-11-09", 30_000, False, False, "home"), ("u1", "2026-11-20", 60_000, False, False, "home")],
        "user_id string, ds string, ms_played long, skipped boolean, saved boolean, surface string")
    assignments = spark.createDataFrame(
        [("home_ranker", "u1", "control"), ("home_ranker", "u2", "treatment"), ("home_ranker", "u3", "control"),
         ("other", "u4", "control")], "experiment string, user_id string, variant string")
    actual = user_outcomes(listens, assignments, cfg.experiments.experiments[0], cfg.experiments, cfg.rewards, "2026-11-10")
    expected = spark.createDataFrame(
        [("u1", "control", 1.0, 2.0), ("u2", "treatment", 0.5, 0.0), ("u3", "control", 0.0, 0.0)],
        "user_id string, variant string, minutes_played double, minutes_played_pre double")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_results_table_matches_the_pure_analysis_and_covers_the_injected_effect(simulated):
    cfg, experiment, users, events, written = simulated
    results = frame(cfg, "experiment_results").sort_values(["metric"]).reset_index(drop=True)
    assert set(results.ds) == {LAST_DAY} and set(results.experiment) == {"home_ranker"}
    assert sorted(results.metric) == sorted(cfg.experiments.metrics)
    seen = users[users.user_id.isin(set(events.user_id))]
    expected = analyze(seen, experiment, cfg.experiments, metrics=["minutes_played"]).iloc[0]
    minutes = results.set_index("metric").loc["minutes_played"]
    for column in ("n_control", "n_variant", "abs_diff", "abs_ci_low", "abs_ci_high", "rel_diff",
                   "rel_ci_low", "rel_ci_high", "cuped_abs_diff", "cuped_ci_low", "cuped_ci_high"):
        assert minutes[column] == pytest.approx(expected[column], rel=1e-9), column
    assert minutes.rel_ci_low < LIFT < minutes.rel_ci_high
    assert minutes.cuped_rel_ci_low < LIFT < minutes.cuped_rel_ci_high
    assert minutes.cuped_significant and minutes.cuped_variance_reduction > 0.2
    assert not minutes.srm_detected
    assert (minutes.pre_start, minutes.post_start, minutes.post_end) == ("2026-11-01", START, LAST_DAY)


def test_report_plot_and_mlflow_run_are_written(simulated):
    cfg, *_ = simulated
    folder = Path(cfg.paths.reports) / "experiments" / f"ds={LAST_DAY}"
    report = (folder / "home_ranker.md").read_text()
    assert "no sample ratio mismatch" in report and "minutes_played" in report
    assert (folder / "home_ranker.png").read_bytes()[:4] == b"\x89PNG"
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    [run] = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name], output_format="list")
    assert run.data.tags["ds"] == LAST_DAY
    assert run.data.params["home_ranker.salt"] == "home_ranker_2026"
    results = frame(cfg, "experiment_results").set_index("metric")
    assert run.data.metrics["home_ranker/minutes_played/treatment/rel_diff"] == pytest.approx(
        results.loc["minutes_played", "rel_diff"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "experiments/home_ranker")}
    assert artifacts == {"experiments/home_ranker/home_ranker.md", "experiments/home_ranker/home_ranker.png"}


def test_rerun_replaces_the_day_and_no_running_experiment_writes_an_empty_day(spark, simulated):
    cfg, *_ = simulated
    before = frame(cfg, "experiment_results")
    experiments.analyze(spark, cfg, LAST_DAY, "analyze-again")
    after = frame(cfg, "experiment_results")
    pd.testing.assert_frame_equal(after.sort_values("metric").reset_index(drop=True),
                                  before.sort_values("metric").reset_index(drop=True))
    assert experiments.analyze(spark, cfg, "2026-11-05", "before-start").empty  # nothing started yet
    assert set(frame(cfg, "experiment_results").ds) == {LAST_DAY}


def test_assignment_from_yesterdays_users_plus_todays_equals_a_scan_of_all_history(spark, make_cfg):
    cfg = make_cfg(f"experiments.experiments=[{AB}]".replace("'", '"'))
    days = ["2026-11-08", "2026-11-09", "2026-11-10"]
    listeners = {days[0]: ["a", "b"], days[1]: ["c"], days[2]: ["a", "d"]}
    rows = [(u, ds) for ds, users in listeners.items() for u in users]
    lake.replace_table(spark.createDataFrame(rows, "user_id string, ds string"), cfg, cfg.tables.listens, "sim")
    for ds in days:
        experiments.assign(spark, cfg, ds, f"assign-{ds}")
        got = {r.user_id for r in lake.read_table(spark, cfg, cfg.tables.experiment_assignments, ds).collect()}
        scanned = {u for d, users in listeners.items() if d <= ds for u in users}
        assert got == scanned, ds
    assert {r.user_id for r in experiments.seen_users(spark, cfg, days[2]).collect()} == {"a", "b", "c", "d"}
