"""A/B statistics, each checked against an independent computation of the same number."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from setlist.config import ExperimentConfig, ExperimentsConfig
from setlist.experiments.analysis import (
    RESULT_COLUMNS, ExperimentDataError, analyze, cuped_adjust, cuped_theta, relative_difference,
    sample_ratio_check, welch_difference)
from setlist.experiments.report import effects_plot, report_markdown

CFG = ExperimentsConfig(metrics=["minutes_played", "streams"])
AB = ExperimentConfig(name="home_ranker", salt="s", allocation={"control": 0.5, "treatment": 0.5},
                      models={"control": "champion", "treatment": 7})
ABC = ExperimentConfig(name="three_way", salt="s", allocation={"control": 0.4, "a": 0.3, "b": 0.3},
                       models={"control": "champion", "a": 7, "b": 8})


def per_user_frame(n=400, seed=3, lift=0.1, experiment=AB):
    rng = np.random.default_rng(seed)
    variants = list(experiment.allocation)
    variant = rng.choice(variants, size=n, p=list(experiment.allocation.values()))
    propensity = rng.lognormal(4, 1, size=n)
    pre = propensity * rng.lognormal(0, 0.4, size=n)
    post = propensity * rng.lognormal(0, 0.4, size=n) * np.where(variant == "control", 1, 1 + lift)
    return pd.DataFrame({"user_id": [f"u{i}" for i in range(n)], "variant": variant,
                         "minutes_played": post, "minutes_played_pre": pre,
                         "streams": rng.poisson(post / 3).astype(float)})


def test_welch_difference_matches_scipy_and_statsmodels():
    frame = per_user_frame()
    t = frame.loc[frame.variant == "treatment", "minutes_played"].to_numpy()
    c = frame.loc[frame.variant == "control", "minutes_played"].to_numpy()
    estimate = welch_difference(t, c, alpha=0.05)
    assert estimate.p_value == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-10)
    low, high = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert (estimate.ci_low, estimate.ci_high) == (pytest.approx(low, rel=1e-10), pytest.approx(high, rel=1e-10))
    assert estimate.diff == pytest.approx(t.mean() - c.mean())


def test_relative_difference_matches_hand_written_delta_method():
    t, c = [2.0, 4.0, 6.0], [1.0, 2.0, 2.0, 3.0]
    mean_t, mean_c = sum(t) / 3, sum(c) / 4
    var_t = sum((v - mean_t) ** 2 for v in t) / 2 / 3     # variance of the mean
    var_c = sum((v - mean_c) ** 2 for v in c) / 3 / 4
    se = math.sqrt(var_t / mean_c ** 2 + mean_t ** 2 * var_c / mean_c ** 4)
    z = 1.959963984540054
    estimate = relative_difference(np.array(t), np.array(c), alpha=0.05)
    assert estimate.diff == pytest.approx(mean_t / mean_c - 1)   # 4 / 2 - 1 = 1
    assert estimate.diff == pytest.approx(1.0)
    assert (estimate.ci_low, estimate.ci_high) == (pytest.approx(1 - z * se), pytest.approx(1 + z * se))
    assert estimate.p_value == pytest.approx(math.erfc(1 / se / math.sqrt(2)))


def test_cuped_theta_is_the_pooled_regression_slope():
    frame = per_user_frame()
    y, x = frame.minutes_played.to_numpy(), frame.minutes_played_pre.to_numpy()
    slope, _ = np.polyfit(x, y, 1)
    assert cuped_theta(y, x) == pytest.approx(slope, rel=1e-9)
    adjusted = cuped_adjust(y, x, slope)
    assert adjusted.mean() == pytest.approx(y.mean())
    assert np.corrcoef(adjusted, x)[0, 1] == pytest.approx(0, abs=1e-9)


def test_cuped_theta_of_constant_covariate_is_zero():
    assert cuped_theta(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0])) == 0.0


def test_analyze_reports_plain_relative_and_cuped_rows_checked_independently():
    frame = per_user_frame()
    results = analyze(frame, AB, CFG)
    assert list(results.columns) == RESULT_COLUMNS
    assert list(results.metric) == ["minutes_played", "streams"]
    row = results.iloc[0]
    is_t = frame.variant == "treatment"
    t, c = frame.minutes_played[is_t].to_numpy(), frame.minutes_played[~is_t].to_numpy()
    assert (row.n_variant, row.n_control) == (len(t), len(c))
    assert (row.mean_variant, row.mean_control) == (pytest.approx(t.mean()), pytest.approx(c.mean()))
    assert row.p_value == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue)
    assert row.rel_diff == pytest.approx(t.mean() / c.mean() - 1)
    # CUPED by hand: slope over all users, then Welch on the adjusted values.
    x = frame.minutes_played_pre.to_numpy()
    theta = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]), frame.minutes_played.to_numpy(),
                            rcond=None)[0][1]
    adjusted = frame.minutes_played.to_numpy() - theta * (x - x.mean())
    a_t, a_c = adjusted[is_t.to_numpy()], adjusted[~is_t.to_numpy()]
    low, high = CompareMeans(DescrStatsW(a_t), DescrStatsW(a_c)).tconfint_diff(alpha=0.05, usevar="unequal")
    assert row.cuped_theta == pytest.approx(theta)
    assert row.cuped_abs_diff == pytest.approx(a_t.mean() - a_c.mean())
    assert (row.cuped_ci_low, row.cuped_ci_high) == (pytest.approx(low), pytest.approx(high))
    assert row.cuped_p_value == pytest.approx(stats.ttest_ind(a_t, a_c, equal_var=False).pvalue)
    plain_var = t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c)
    cuped_var = a_t.var(ddof=1) / len(a_t) + a_c.var(ddof=1) / len(a_c)
    assert row.cuped_variance_reduction == pytest.approx(1 - cuped_var / plain_var)
    assert row.cuped_variance_reduction > 0.3
    assert row.cuped_ci_high - row.cuped_ci_low < row.abs_ci_high - row.abs_ci_low


def test_metric_without_pre_period_has_no_cuped_columns():
    row = analyze(per_user_frame(), AB, CFG).set_index("metric").loc["streams"]
    assert not row.has_cuped
    assert np.isnan(row.cuped_abs_diff) and np.isnan(row.cuped_variance_reduction)
    assert not np.isnan(row.abs_diff)


def test_each_treatment_variant_is_compared_with_control():
    frame = per_user_frame(n=600, experiment=ABC)
    results = analyze(frame, ABC, CFG, metrics=["minutes_played"])
    assert list(results.variant) == ["a", "b"] and set(results.control) == {"control"}
    b = frame.minutes_played[frame.variant == "b"]
    c = frame.minutes_played[frame.variant == "control"]
    assert results.iloc[1].abs_diff == pytest.approx(b.mean() - c.mean())
    # theta is pooled over all three variants
    slope = np.polyfit(frame.minutes_played_pre, frame.minutes_played, 1)[0]
    assert results.cuped_theta.tolist() == pytest.approx([slope, slope])


def test_sample_ratio_check_matches_chi_square_by_hand_and_flags_mismatch():
    balanced = pd.DataFrame({"user_id": range(10_000), "variant": ["control"] * 5050 + ["treatment"] * 4950})
    srm = sample_ratio_check(balanced, AB, CFG)
    assert srm.chi2.iloc[0] == pytest.approx(50 ** 2 / 5000 * 2)   # = 1.0
    assert srm.p_value.iloc[0] == pytest.approx(stats.chi2.sf(1.0, df=1))
    assert not srm.srm_detected.any()
    skewed = pd.DataFrame({"user_id": range(10_000), "variant": ["control"] * 5200 + ["treatment"] * 4800})
    flagged = sample_ratio_check(skewed, AB, CFG)
    assert flagged.chi2.iloc[0] == pytest.approx(16.0)
    assert flagged.srm_detected.all()
    assert flagged.observed_users.tolist() == [5200, 4800]


def test_sample_ratio_check_counts_an_allocated_variant_with_no_users():
    frame = pd.DataFrame({"user_id": range(100), "variant": ["control"] * 60 + ["a"] * 40})
    srm = sample_ratio_check(frame, ABC, CFG)
    assert srm.observed_users.tolist() == [60, 40, 0]
    assert srm.srm_detected.all()


def test_missing_metric_column_is_named():
    with pytest.raises(ExperimentDataError, match=r"lacks column\(s\) \['streams'\]"):
        analyze(per_user_frame().drop(columns="streams"), AB, CFG)


def test_unknown_variant_and_nulls_are_rejected():
    frame = per_user_frame()
    with pytest.raises(ExperimentDataError, match=r"variant\(s\) \['ghost'\]"):
        analyze(frame.assign(variant=frame.variant.where(frame.index > 0, "ghost")), AB, CFG)
    with pytest.raises(ExperimentDataError, match="'minutes_played_pre' has nulls"):
        analyze(frame.assign(minutes_played_pre=frame.minutes_played_pre.where(frame.index > 0)), AB, CFG)


def test_effects_plot_writes_a_png(tmp_path):
    path = effects_plot(analyze(per_user_frame(), AB, CFG), tmp_path / "plots" / "effects.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5_000


def test_report_markdown_states_srm_verdict_and_each_effect():
    frame = per_user_frame()
    results = analyze(frame, AB, CFG)
    report = report_markdown(results, sample_ratio_check(frame, AB, CFG))
    assert report.startswith("# Experiment report: home_ranker")
    assert "no sample ratio mismatch" in report
    assert "| minutes_played | treatment vs control |" in report
    assert "| streams | treatment vs control |" in report and "n/a" in report
    skewed = pd.DataFrame({"user_id": range(100), "variant": ["control"] * 90 + ["treatment"] * 10})
    assert "SAMPLE RATIO MISMATCH" in report_markdown(results, sample_ratio_check(skewed, AB, CFG))
