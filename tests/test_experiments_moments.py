"""The analysis from per-variant moments (Spark or pandas) equals the per-user computation it replaced.

``reference_analyze`` is the per-user pandas/numpy analysis as it stood before the moments
(every exposed user on the driver), kept here as the reference only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from scipy import stats

from setlist.config import ExperimentConfig, ExperimentsConfig
from setlist.experiments.analysis import (
    MOMENT_COLUMNS, RESULT_COLUMNS, ExperimentDataError, analyze, analyze_moments, sample_ratio_check,
    sample_ratio_from_counts, summarize, users_per_variant)
from setlist.experiments.outcomes import variant_moments

CFG = ExperimentsConfig(metrics=["minutes_played", "streams"])
AB = ExperimentConfig(name="home_ranker", salt="s", allocation={"control": 0.5, "treatment": 0.5},
                      models={"control": "champion", "treatment": 7})
ABC = ExperimentConfig(name="three_way", salt="s", allocation={"control": 0.4, "a": 0.3, "b": 0.3},
                       models={"control": "champion", "a": 7, "b": 8})


# --------------------------------------------------------------------------- the per-user reference

def _welch(t, c, alpha):
    var_t, var_c = np.var(t, ddof=1) / len(t), np.var(c, ddof=1) / len(c)
    se = np.sqrt(var_t + var_c)
    dof = (var_t + var_c) ** 2 / (var_t ** 2 / (len(t) - 1) + var_c ** 2 / (len(c) - 1))
    diff = float(np.mean(t) - np.mean(c))
    half = stats.t.ppf(1 - alpha / 2, dof) * se
    return diff, diff - half, diff + half, float(2 * stats.t.sf(abs(diff / se), dof)), float(se)


def _relative(t, c, alpha):
    mean_t, mean_c = np.mean(t), np.mean(c)
    var_t, var_c = np.var(t, ddof=1) / len(t), np.var(c, ddof=1) / len(c)
    diff = mean_t / mean_c - 1
    se = np.sqrt(var_t / mean_c ** 2 + mean_t ** 2 * var_c / mean_c ** 4)
    half = stats.norm.ppf(1 - alpha / 2) * se
    return float(diff), float(diff - half), float(diff + half), float(2 * stats.norm.sf(abs(diff / se)))


def reference_analyze(per_user: pd.DataFrame, experiment: ExperimentConfig,
                      cfg: ExperimentsConfig) -> pd.DataFrame:
    alpha, rows = cfg.alpha, []
    variant = per_user["variant"].to_numpy()
    control = variant == experiment.control
    for metric in cfg.metrics:
        y = per_user[metric].to_numpy(dtype=float)
        pre = f"{metric}{cfg.pre_suffix}"
        has_cuped = pre in per_user.columns
        if has_cuped:
            x = per_user[pre].to_numpy(dtype=float)
            xc = x - x.mean()
            theta = float(np.dot(y - y.mean(), xc) / np.dot(xc, xc))
            adjusted = y - theta * xc
        for name in experiment.allocation:
            if name == experiment.control:
                continue
            mask = variant == name
            diff, low, high, p, se = _welch(y[mask], y[control], alpha)
            rel, rel_low, rel_high, rel_p = _relative(y[mask], y[control], alpha)
            row = {"experiment": experiment.name, "metric": metric, "control": experiment.control,
                   "variant": name, "n_control": int(control.sum()), "n_variant": int(mask.sum()),
                   "mean_control": y[control].mean(), "mean_variant": y[mask].mean(),
                   "abs_diff": diff, "abs_ci_low": low, "abs_ci_high": high, "p_value": p,
                   "rel_diff": rel, "rel_ci_low": rel_low, "rel_ci_high": rel_high, "rel_p_value": rel_p,
                   "significant": p < alpha, "has_cuped": has_cuped, "alpha": alpha}
            if has_cuped:
                c_diff, c_low, c_high, c_p, c_se = _welch(adjusted[mask], adjusted[control], alpha)
                c_rel, c_rel_low, c_rel_high, _ = _relative(adjusted[mask], adjusted[control], alpha)
                row.update({"cuped_theta": theta, "cuped_mean_control": adjusted[control].mean(),
                            "cuped_mean_variant": adjusted[mask].mean(), "cuped_abs_diff": c_diff,
                            "cuped_ci_low": c_low, "cuped_ci_high": c_high, "cuped_p_value": c_p,
                            "cuped_rel_diff": c_rel, "cuped_rel_ci_low": c_rel_low,
                            "cuped_rel_ci_high": c_rel_high, "cuped_variance_reduction": 1 - c_se ** 2 / se ** 2,
                            "cuped_significant": c_p < alpha})
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


# --------------------------------------------------------------------------- helpers

def per_user_frame(n=500, seed=5, lift=0.08, experiment=AB, offset=0.0):
    """Log-normal minutes (pre predicts post), Poisson streams without a pre column; ``offset``
    is added to every minutes value (a large one tests the precision of the moments)."""
    rng = np.random.default_rng(seed)
    variant = rng.choice(list(experiment.allocation), size=n, p=list(experiment.allocation.values()))
    propensity = rng.lognormal(3, 1, size=n)
    pre = propensity * rng.lognormal(0, 0.5, size=n)
    post = propensity * rng.lognormal(0, 0.5, size=n) * np.where(variant == experiment.control, 1, 1 + lift)
    return pd.DataFrame({"user_id": [f"u{i:05d}" for i in range(n)], "variant": variant,
                         "minutes_played": post + offset, "minutes_played_pre": pre + offset,
                         "streams": rng.poisson(post / 4).astype(float)})


def spark_moments(spark, frame: pd.DataFrame, cfg=CFG) -> pd.DataFrame:
    return variant_moments(spark.createDataFrame(frame), cfg.metrics, cfg.pre_suffix).toPandas()


def assert_results_equal(actual: pd.DataFrame, expected: pd.DataFrame, rel=1e-9):
    assert list(actual.columns) == RESULT_COLUMNS
    assert len(actual) == len(expected)
    for column in RESULT_COLUMNS:
        a, e = actual[column].tolist(), expected[column].tolist()
        if expected[column].dtype == object and not all(isinstance(v, float) for v in e):
            assert a == e, column
        else:
            assert a == pytest.approx(e, rel=rel, abs=0, nan_ok=True), column


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("experiment", [AB, ABC], ids=["two_way", "three_way"])
def test_spark_moments_give_the_per_user_results(spark, experiment):
    frame = per_user_frame(experiment=experiment)
    moments = spark_moments(spark, frame)
    assert len(moments) == len(experiment.allocation) * len(CFG.metrics)
    assert_results_equal(analyze_moments(moments, experiment, CFG), reference_analyze(frame, experiment, CFG))


def test_pandas_moments_give_the_per_user_results():
    frame = per_user_frame(experiment=ABC)
    assert_results_equal(analyze(frame, ABC, CFG), reference_analyze(frame, ABC, CFG))


def test_moments_keep_precision_on_values_far_from_zero(spark):
    # Minutes around 1e8 with a spread of tens: the variance (~3e3) from a raw sum of squares
    # (~5e18) keeps about 4 digits (1e-4 relative error on this frame); the moments are of
    # centred values (Spark's var_samp/covar_samp), so only rounding is lost.
    # A mean near 1e8 is exact to an ulp (1.5e-8) however it is summed, so a difference of
    # means of ~10 agrees to ~3e-9 relative at best: hence 1e-7 here.
    frame = per_user_frame(offset=1e8)
    expected = reference_analyze(frame, AB, CFG)
    assert_results_equal(analyze_moments(spark_moments(spark, frame), AB, CFG), expected, rel=1e-7)
    assert_results_equal(analyze(frame, AB, CFG), expected, rel=1e-7)
    assert 0.3 < expected.cuped_variance_reduction.iloc[0] < 1


def test_variant_moments_of_a_small_frame(spark):
    frame = spark.createDataFrame(
        [("u1", "control", 1.0, 2.0), ("u2", "control", 3.0, 2.0), ("u3", "control", 5.0, 8.0),
         ("u4", "treatment", 2.0, 1.0), ("u5", "treatment", 4.0, float("nan"))],
        "user_id string, variant string, minutes_played double, minutes_played_pre double")
    actual = variant_moments(frame, ["minutes_played"], "_pre")
    # control: y 1, 3, 5 (mean 3, var 4); x 2, 2, 8 (mean 4, var 12); cov (-2*-2 + 0 + 2*4) / 2 = 6.
    # treatment: the NaN pre value is not counted (n_x 1) and makes its moments NaN.
    nan = float("nan")
    expected = spark.createDataFrame(
        [("control", "minutes_played", 3, 3, 3, 3.0, 4.0, True, 3, 4.0, 12.0, 6.0),
         ("treatment", "minutes_played", 2, 2, 2, 3.0, 2.0, True, 1, nan, nan, nan)],
        "variant string, metric string, n long, users long, n_y long, mean_y double, var_y double, "
        "has_pre boolean, n_x long, mean_x double, var_x double, cov_xy double")
    assert actual.columns == MOMENT_COLUMNS
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True, allow_nan_equality=True)


def test_metric_without_pre_column_has_no_covariate_moments(spark):
    moments = spark_moments(spark, per_user_frame()).set_index(["metric", "variant"])
    assert not moments.loc["streams", "has_pre"].any() and moments.loc["minutes_played", "has_pre"].all()
    assert moments.loc["streams", "mean_x"].isna().all() and (moments.loc["streams", "n_x"] == 0).all()


def test_spark_moments_reject_nulls_duplicates_and_unknown_variants(spark):
    frame = per_user_frame(n=60)
    with_null = frame.assign(minutes_played_pre=frame.minutes_played_pre.where(frame.index > 0))
    with pytest.raises(ExperimentDataError, match="'minutes_played_pre' has nulls"):
        analyze_moments(spark_moments(spark, with_null), AB, CFG)
    twice = pd.concat([frame, frame[frame.variant == "control"].head(1)])
    with pytest.raises(ExperimentDataError, match="user_id must be unique"):
        analyze_moments(spark_moments(spark, twice), AB, CFG)
    ghost = frame.assign(variant=frame.variant.where(frame.index > 0, "ghost"))
    with pytest.raises(ExperimentDataError, match=r"variant\(s\) \['ghost'\]"):
        analyze_moments(spark_moments(spark, ghost), AB, CFG)
    lonely = frame[(frame.variant == "control") | (frame.index == frame[frame.variant == "treatment"].index[0])]
    with pytest.raises(ExperimentDataError, match="variant 'treatment' has 1 users"):
        analyze_moments(spark_moments(spark, lonely), AB, CFG)


def test_sample_ratio_from_the_moments_counts_equals_the_per_user_check(spark):
    frame = per_user_frame(n=300, experiment=ABC)
    moments = spark_moments(spark, frame[frame.variant != "b"])
    assert users_per_variant(moments) == frame[frame.variant != "b"].variant.value_counts().to_dict()
    pd.testing.assert_frame_equal(sample_ratio_from_counts(users_per_variant(moments), ABC, CFG),
                                  sample_ratio_check(frame[frame.variant != "b"], ABC, CFG))


def test_no_metrics_still_count_users(spark):
    cfg = ExperimentsConfig(metrics=[])
    frame = per_user_frame(n=50)
    moments = spark_moments(spark, frame, cfg)
    assert moments.metric.isna().all()
    assert users_per_variant(moments) == users_per_variant(summarize(frame, AB, cfg)) == \
        frame.variant.value_counts().to_dict()
    assert analyze_moments(moments, AB, cfg).empty
