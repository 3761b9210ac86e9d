"""Simulated experiments: known effect, exact event aggregation, coverage and A/A behaviour."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from setlist.config import ExperimentConfig, ExperimentsConfig, ExperimentSimulatorConfig
from setlist.errors import ConfigError
from setlist.experiments.simulator import (
    EVENT_COLUMNS, coverage_study, run_simulations, simulate_events, simulate_users, true_effect)

SIM = ExperimentSimulatorConfig(seed=7, n_users=2000, n_simulations=300)
CFG = ExperimentsConfig(metrics=["minutes_played"], simulator=SIM)
AB = ExperimentConfig(name="home_ranker", salt="s", allocation={"control": 0.5, "treatment": 0.5},
                      models={"control": "champion", "treatment": 7}, start_date="2026-11-08")


def test_same_seed_gives_the_same_users_and_another_seed_does_not():
    first = simulate_users(AB, SIM, np.random.default_rng(1), n_users=50)
    pd.testing.assert_frame_equal(first, simulate_users(AB, SIM, np.random.default_rng(1), n_users=50))
    assert not first.equals(simulate_users(AB, SIM, np.random.default_rng(2), n_users=50))
    assert list(first.columns) == ["user_id", "variant", "minutes_played", "minutes_played_pre"]


def test_true_effect_is_the_lift_times_the_analytic_control_mean():
    sim = SIM.model_copy(update={"log_minutes_mean": 2.0, "propensity_sigma": 0.5, "inactive_share": 0.2})
    absolute, relative = true_effect(sim, 0.1)
    assert relative == 0.1
    assert absolute == pytest.approx(0.8 * np.exp(2.0 + 0.125) * 0.1)
    # ... and the simulation agrees with the analytic mean on a large sample.
    users = simulate_users(AB, sim, np.random.default_rng(0), relative_lift=0.1, n_users=400_000)
    control = users.minutes_played[users.variant == "control"]
    assert control.mean() == pytest.approx(absolute / relative, rel=0.01)


def test_events_aggregate_back_to_the_per_user_minutes_exactly():
    users = simulate_users(AB, SIM, np.random.default_rng(5), n_users=60)
    events = simulate_events(users, AB, SIM, seed=5)
    assert list(events.columns) == EVENT_COLUMNS
    start = pd.Timestamp("2026-11-08", tz="UTC")
    assert events.ts.min() >= start - pd.Timedelta(days=SIM.pre_days)
    assert events.ts.max() < start + pd.Timedelta(days=SIM.post_days)
    assert (events.ms_played >= 0).all()
    period = np.where(events.ts >= start, "minutes_played", "minutes_played_pre")
    minutes = events.groupby(["user_id", period]).ms_played.sum().unstack(fill_value=0) / 60_000
    expected = users.set_index("user_id")[["minutes_played", "minutes_played_pre"]]
    pd.testing.assert_frame_equal(minutes.reindex(expected.index, fill_value=0.0).rename_axis(columns=None),
                                  expected, check_exact=True)
    # Inactive users have no events at all in that period.
    inactive = users.user_id[users.minutes_played == 0]
    assert not events[(events.ts >= start) & events.user_id.isin(inactive)].shape[0]
    assert 0.3 < events.skipped.mean() < 0.6


def test_post_only_events_and_missing_start_date():
    users = simulate_users(AB, SIM, np.random.default_rng(5), n_users=20)
    assert (simulate_events(users, AB, SIM, seed=1, include_pre=False).ts
            >= pd.Timestamp("2026-11-08", tz="UTC")).all()
    with pytest.raises(ConfigError, match="experiment 'no_date'.*start_date"):
        simulate_events(users, AB.model_copy(update={"name": "no_date", "start_date": None}), SIM, seed=1)


def test_run_simulations_is_reproducible():
    first = run_simulations(AB, CFG, n_simulations=3, relative_lift=0.05, seed=11, n_users=300)
    pd.testing.assert_frame_equal(first, run_simulations(AB, CFG, 3, 0.05, seed=11, n_users=300))
    assert first.simulation.tolist() == [0, 1, 2]
    assert first.abs_diff.nunique() == 3


def test_intervals_cover_the_true_effect_and_aa_tests_reject_at_alpha():
    summary = coverage_study(AB, CFG)
    assert summary.n_simulations == 300
    for coverage in (summary.coverage_absolute, summary.coverage_relative,
                     summary.coverage_cuped, summary.coverage_cuped_relative):
        assert 0.90 <= coverage <= 0.99
    assert 0.01 <= summary.aa_false_positive_rate <= 0.10
    assert 0.01 <= summary.aa_false_positive_rate_cuped <= 0.10
    assert summary.mean_ci_width_cuped < summary.mean_ci_width_plain
    assert summary.mean_variance_reduction > 0.2
