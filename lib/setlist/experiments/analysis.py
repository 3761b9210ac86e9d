"""A/B statistics from per-variant moments (pandas/numpy/scipy; no Spark, no I/O).

The statistics need only a few moments of each variant's users: the count, the mean and
sample variance of each metric and, for CUPED, the mean and variance of its pre-exposure
value ``<metric><pre_suffix>`` and the covariance of the two. :data:`MOMENT_COLUMNS` is that
summary, one row per variant x metric; Spark computes it next to the data
(``setlist.experiments.outcomes.variant_moments``) so the driver never holds per-user rows,
and :func:`summarize` computes the same from a per-user pandas frame (simulations, tests).
Output: tidy frames, one row per metric x treatment variant, ready to be written to a
Delta table by a pipeline step.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from setlist.config import ExperimentConfig, ExperimentsConfig
from setlist.errors import SetlistError

RESULT_COLUMNS = [
    "experiment", "metric", "control", "variant", "n_control", "n_variant",
    "mean_control", "mean_variant",
    "abs_diff", "abs_ci_low", "abs_ci_high", "p_value",
    "rel_diff", "rel_ci_low", "rel_ci_high", "rel_p_value",
    "significant",
    "has_cuped", "cuped_theta", "cuped_mean_control", "cuped_mean_variant",
    "cuped_abs_diff", "cuped_ci_low", "cuped_ci_high", "cuped_p_value",
    "cuped_rel_diff", "cuped_rel_ci_low", "cuped_rel_ci_high",
    "cuped_variance_reduction", "cuped_significant", "alpha",
]
SRM_COLUMNS = ["experiment", "variant", "expected_share", "observed_users", "expected_users",
               "observed_share", "chi2", "p_value", "srm_alpha", "srm_detected"]
# One row per variant x metric: ``n`` rows and ``users`` distinct user ids in the variant;
# ``n_y`` non-null (and non-NaN) metric values, their mean and sample variance (ddof=1);
# ``has_pre`` whether the metric has a pre-exposure column, then ``n_x`` non-null values of
# it, its mean and sample variance and its sample covariance with the metric (NaN without
# one). A variant whose frame has no metric at all has one row with ``metric`` null.
MOMENT_COLUMNS = ["variant", "metric", "n", "users", "n_y", "mean_y", "var_y",
                  "has_pre", "n_x", "mean_x", "var_x", "cov_xy"]
# Smallest group on which a sample variance exists.
MIN_USERS_PER_VARIANT = 2


class ExperimentDataError(SetlistError):
    """A per-user experiment frame lacks a column, has nulls, or names unknown variants."""


@dataclass(frozen=True)
class Estimate:
    """A difference with its two-sided (1 - alpha) interval and p-value."""
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    se: float


@dataclass(frozen=True)
class GroupMoments:
    """One group's size, mean and sample variance (ddof=1): all a Welch test needs."""
    n: int
    mean: float
    var: float

    @classmethod
    def of(cls, values: np.ndarray) -> "GroupMoments":
        return cls(len(values), *_moments(values))


@dataclass(frozen=True)
class CovariateMoments:
    """One group's moments of a metric ``y`` and its pre-exposure covariate ``x``."""
    n: int
    mean_y: float
    var_y: float
    mean_x: float
    var_x: float
    cov_xy: float

    @classmethod
    def of(cls, y: np.ndarray, x: np.ndarray) -> "CovariateMoments":
        (mean_y, var_y), (mean_x, var_x) = _moments(y), _moments(x)
        return cls(len(y), mean_y, var_y, mean_x, var_x, _covariance(y, x))


def _count(values: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isnan(values)))


def _moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample variance (ddof=1), NaN where undefined (too few values, or a NaN)."""
    n = len(values)
    mean = float(np.mean(values)) if n else float("nan")
    return mean, float(np.var(values, ddof=1)) if n > 1 else float("nan")


def _covariance(y: np.ndarray, x: np.ndarray) -> float:
    """Sample covariance (ddof=1) of centred values, NaN below two values."""
    n = len(y)
    return float(np.dot(y - np.mean(y), x - np.mean(x)) / (n - 1)) if n > 1 else float("nan")


def welch_from_moments(treatment: GroupMoments, control: GroupMoments, alpha: float) -> Estimate:
    """treatment mean - control mean with a Welch t interval (unequal variances)."""
    n_t, n_c = treatment.n, control.n
    # numpy floats: a zero variance gives inf/NaN under errstate, not ZeroDivisionError.
    var_t, var_c = np.float64(treatment.var) / n_t, np.float64(control.var) / n_c
    se = np.sqrt(var_t + var_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = (var_t + var_c) ** 2 / (var_t ** 2 / (n_t - 1) + var_c ** 2 / (n_c - 1))
        diff = float(treatment.mean - control.mean)
        half = stats.t.ppf(1 - alpha / 2, dof) * se
        p_value = 2 * stats.t.sf(abs(diff / se), dof)
    return Estimate(diff, diff - half, diff + half, float(p_value), float(se))


def welch_difference(treatment: np.ndarray, control: np.ndarray, alpha: float) -> Estimate:
    """mean(treatment) - mean(control) with a Welch t interval (unequal variances)."""
    return welch_from_moments(GroupMoments.of(treatment), GroupMoments.of(control), alpha)


def ratio_difference(mean_t: float, var_mean_t: float, mean_c: float, var_mean_c: float,
                     alpha: float) -> Estimate:
    """mean_t / mean_c - 1 with a delta-method normal interval.

    ``var_mean_*`` are variances of the two (independent) means:
    Var(a/b) ~ Var(a)/b^2 + a^2 Var(b)/b^4.
    """
    mean_t, var_mean_t, mean_c, var_mean_c = np.float64([mean_t, var_mean_t, mean_c, var_mean_c])
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = mean_t / mean_c - 1
        se = np.sqrt(var_mean_t / mean_c ** 2 + mean_t ** 2 * var_mean_c / mean_c ** 4)
        half = stats.norm.ppf(1 - alpha / 2) * se
        p_value = 2 * stats.norm.sf(abs(diff / se))
    return Estimate(float(diff), float(diff - half), float(diff + half), float(p_value), float(se))


def relative_from_moments(treatment: GroupMoments, control: GroupMoments, alpha: float) -> Estimate:
    """treatment mean / control mean - 1 with a delta-method interval."""
    return ratio_difference(treatment.mean, treatment.var / treatment.n,
                            control.mean, control.var / control.n, alpha)


def relative_difference(treatment: np.ndarray, control: np.ndarray, alpha: float) -> Estimate:
    """mean(treatment) / mean(control) - 1 with a delta-method interval."""
    return relative_from_moments(GroupMoments.of(treatment), GroupMoments.of(control), alpha)


def cuped_from_moments(groups: Mapping[str, CovariateMoments]) -> tuple[float, dict[str, GroupMoments]]:
    """CUPED slope theta = Cov(y, x) / Var(x) pooled over every group given (all variants),
    and each group's moments of ``y - theta (x - mean x)`` (mean x over all groups).

    The pooled sums of squares combine the within-group ones with the spread of the group
    means, measured from the first group's means: equal groups add exactly zero (a constant
    covariate gives theta 0) and no large mean is squared.
    """
    first = next(iter(groups.values()))
    n_total = sum(g.n for g in groups.values())
    dx = {name: g.mean_x - first.mean_x for name, g in groups.items()}
    dy = {name: g.mean_y - first.mean_y for name, g in groups.items()}
    dx_bar = sum(g.n * dx[name] for name, g in groups.items()) / n_total
    dy_bar = sum(g.n * dy[name] for name, g in groups.items()) / n_total
    sxx = sum((g.n - 1) * g.var_x + g.n * (dx[name] - dx_bar) ** 2 for name, g in groups.items())
    sxy = sum((g.n - 1) * g.cov_xy + g.n * (dx[name] - dx_bar) * (dy[name] - dy_bar)
              for name, g in groups.items())
    theta = 0.0 if sxx == 0 else float(sxy / sxx)
    adjusted = {
        # Var(y - theta x) within the group; rounding may take a perfect fit a hair below 0.
        name: GroupMoments(g.n, g.mean_y - theta * (dx[name] - dx_bar),
                           max(g.var_y - 2 * theta * g.cov_xy + theta ** 2 * g.var_x, 0.0))
        for name, g in groups.items()}
    return theta, adjusted


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """CUPED slope Cov(y, x) / Var(x), pooled over every user given (all variants)."""
    return cuped_from_moments({"all": CovariateMoments.of(y, x)})[0]


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float) -> np.ndarray:
    """y - theta (x - mean x): same expected difference between variants, smaller variance."""
    return y - theta * (x - np.mean(x))


def _check_frame(per_user: pd.DataFrame, experiment: ExperimentConfig, metrics: list[str]) -> None:
    where = f"experiment '{experiment.name}'"
    missing = [c for c in ["user_id", "variant", *metrics] if c not in per_user.columns]
    if missing:
        raise ExperimentDataError(f"{where}: per-user frame lacks column(s) {missing}; "
                                  f"has {list(per_user.columns)}")
    _check_variants(set(per_user["variant"].unique()), experiment)
    if per_user["user_id"].duplicated().any():
        raise ExperimentDataError(f"{where}: user_id must be unique in the per-user frame")


def _check_variants(variants: set[str], experiment: ExperimentConfig) -> None:
    unknown = sorted(variants - set(experiment.allocation))
    if unknown:
        raise ExperimentDataError(f"experiment '{experiment.name}': variant(s) {unknown} are not in the "
                                  f"allocation {sorted(experiment.allocation)}")


def _null_error(column: str, experiment: ExperimentConfig) -> ExperimentDataError:
    return ExperimentDataError(f"experiment '{experiment.name}': column '{column}' has nulls; "
                               "fill users without activity with 0 before the analysis")


def summarize(per_user: pd.DataFrame, experiment: ExperimentConfig, cfg: ExperimentsConfig,
              metrics: list[str] | None = None) -> pd.DataFrame:
    """:data:`MOMENT_COLUMNS` of a per-user pandas frame (``user_id``, ``variant``, each metric
    and optionally ``<metric><cfg.pre_suffix>``), variants in order of first appearance."""
    metrics = list(cfg.metrics if metrics is None else metrics)
    _check_frame(per_user, experiment, metrics)
    rows = []
    for name, group in per_user.groupby("variant", sort=False):
        common = {"variant": name, "n": len(group), "users": int(group["user_id"].nunique())}
        if not metrics:
            rows.append({**common, "metric": None, "has_pre": False})
        for metric in metrics:
            y = group[metric].to_numpy(dtype=float)
            mean_y, var_y = _moments(y)
            row = {**common, "metric": metric, "n_y": _count(y), "mean_y": mean_y, "var_y": var_y,
                   "has_pre": False, "n_x": 0}
            pre_column = f"{metric}{cfg.pre_suffix}"
            if pre_column in group.columns:
                x = group[pre_column].to_numpy(dtype=float)
                mean_x, var_x = _moments(x)
                row.update(has_pre=True, n_x=_count(x), mean_x=mean_x, var_x=var_x, cov_xy=_covariance(y, x))
            rows.append(row)
    return pd.DataFrame(rows, columns=MOMENT_COLUMNS)


def users_per_variant(moments: pd.DataFrame) -> dict[str, int]:
    """Variant -> users, from :data:`MOMENT_COLUMNS` rows (the count is on each metric's row)."""
    return {str(v): int(n) for v, n in moments.groupby("variant", sort=False)["n"].first().items()}


def _check_moments(moments: pd.DataFrame, experiment: ExperimentConfig, cfg: ExperimentsConfig,
                   metrics: list[str]) -> None:
    where = f"experiment '{experiment.name}'"
    _check_variants(set(moments["variant"]), experiment)
    if (moments["users"] < moments["n"]).any():
        raise ExperimentDataError(f"{where}: user_id must be unique in the per-user frame")
    counts = users_per_variant(moments)
    for name in experiment.allocation:
        if counts.get(name, 0) < MIN_USERS_PER_VARIANT:
            raise ExperimentDataError(f"{where}: variant '{name}' has {counts.get(name, 0)} users, "
                                      f"need at least {MIN_USERS_PER_VARIANT}")
    present = set(zip(moments["variant"], moments["metric"]))
    missing = [m for m in metrics if any((name, m) not in present for name in experiment.allocation)]
    if missing:
        raise ExperimentDataError(f"{where}: moments lack metric(s) {missing} for some variant")
    for metric in metrics:
        rows = moments[moments["metric"] == metric]
        if (rows["n_y"] < rows["n"]).any():
            raise _null_error(metric, experiment)
        if rows["has_pre"].any() and (rows["n_x"] < rows["n"]).any():
            raise _null_error(f"{metric}{cfg.pre_suffix}", experiment)


def _variance_reduction(cuped: Estimate, plain: Estimate) -> float:
    """Share of the difference's variance that the covariate removed (NaN for a constant metric)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1 - np.float64(cuped.se) ** 2 / np.float64(plain.se) ** 2)


def analyze_moments(moments: pd.DataFrame, experiment: ExperimentConfig, cfg: ExperimentsConfig,
                    metrics: list[str] | None = None) -> pd.DataFrame:
    """Every metric x treatment variant against the experiment's control, from
    :data:`MOMENT_COLUMNS` rows (one per variant x metric).

    ``metrics`` defaults to ``cfg.metrics``. CUPED columns are filled where the metric has a
    pre-exposure covariate (``has_pre``), NaN otherwise (``has_cuped`` says which); theta is
    pooled over all variants. Returns one row per (metric, variant) with :data:`RESULT_COLUMNS`.
    """
    metrics = list(cfg.metrics if metrics is None else metrics)
    _check_moments(moments, experiment, cfg, metrics)
    alpha = cfg.alpha
    rows = []
    for metric in metrics:
        by_variant = {r.variant: r for r in moments[moments["metric"] == metric].itertuples(index=False)}
        ordered = [by_variant[name] for name in experiment.allocation]
        plain = {r.variant: GroupMoments(int(r.n), float(r.mean_y), float(r.var_y)) for r in ordered}
        has_cuped = bool(ordered[0].has_pre)
        if has_cuped:
            theta, adjusted = cuped_from_moments({r.variant: CovariateMoments(
                int(r.n), float(r.mean_y), float(r.var_y), float(r.mean_x), float(r.var_x), float(r.cov_xy))
                for r in ordered})
        control = plain[experiment.control]
        for name in experiment.allocation:
            if name == experiment.control:
                continue
            difference = welch_from_moments(plain[name], control, alpha)
            relative = relative_from_moments(plain[name], control, alpha)
            row = {
                "experiment": experiment.name, "metric": metric,
                "control": experiment.control, "variant": name,
                "n_control": control.n, "n_variant": plain[name].n,
                "mean_control": control.mean, "mean_variant": plain[name].mean,
                "abs_diff": difference.diff, "abs_ci_low": difference.ci_low,
                "abs_ci_high": difference.ci_high, "p_value": difference.p_value,
                "rel_diff": relative.diff, "rel_ci_low": relative.ci_low,
                "rel_ci_high": relative.ci_high, "rel_p_value": relative.p_value,
                "significant": bool(difference.p_value < alpha),
                "has_cuped": has_cuped, "alpha": alpha,
            }
            if has_cuped:
                treated, untreated = adjusted[name], adjusted[experiment.control]
                cuped = welch_from_moments(treated, untreated, alpha)
                cuped_relative = relative_from_moments(treated, untreated, alpha)
                row.update({
                    "cuped_theta": theta,
                    "cuped_mean_control": untreated.mean, "cuped_mean_variant": treated.mean,
                    "cuped_abs_diff": cuped.diff, "cuped_ci_low": cuped.ci_low,
                    "cuped_ci_high": cuped.ci_high, "cuped_p_value": cuped.p_value,
                    "cuped_rel_diff": cuped_relative.diff,
                    "cuped_rel_ci_low": cuped_relative.ci_low,
                    "cuped_rel_ci_high": cuped_relative.ci_high,
                    "cuped_variance_reduction": _variance_reduction(cuped, difference),
                    "cuped_significant": bool(cuped.p_value < alpha),
                })
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def analyze(per_user: pd.DataFrame, experiment: ExperimentConfig, cfg: ExperimentsConfig,
            metrics: list[str] | None = None) -> pd.DataFrame:
    """:func:`analyze_moments` of a per-user pandas frame (``user_id``, ``variant``, one
    column per metric, optionally ``<metric><cfg.pre_suffix>``), through :func:`summarize`."""
    return analyze_moments(summarize(per_user, experiment, cfg, metrics), experiment, cfg, metrics)


def sample_ratio_from_counts(counts: Mapping[str, int], experiment: ExperimentConfig,
                             cfg: ExperimentsConfig) -> pd.DataFrame:
    """Chi-square goodness of fit of users per variant (``counts``) against the allocation.

    One row per variant (allocation order) with :data:`SRM_COLUMNS`; an allocated variant
    missing from ``counts`` has 0 users. ``srm_detected`` is true on every row when the
    p-value is below ``cfg.srm_alpha``.
    """
    _check_variants(set(counts), experiment)
    variants = list(experiment.allocation)
    observed = np.array([int(counts.get(v, 0)) for v in variants])
    shares = np.array([experiment.allocation[v] for v in variants])
    total = observed.sum()
    if total == 0:
        raise ExperimentDataError(f"experiment '{experiment.name}': no users to check")
    expected = shares * total
    chi2, p_value = stats.chisquare(observed, expected)
    return pd.DataFrame({
        "experiment": experiment.name, "variant": variants, "expected_share": shares,
        "observed_users": observed, "expected_users": expected, "observed_share": observed / total,
        "chi2": float(chi2), "p_value": float(p_value), "srm_alpha": cfg.srm_alpha,
        "srm_detected": bool(p_value < cfg.srm_alpha),
    }, columns=SRM_COLUMNS)


def sample_ratio_check(per_user: pd.DataFrame, experiment: ExperimentConfig,
                       cfg: ExperimentsConfig) -> pd.DataFrame:
    """:func:`sample_ratio_from_counts` of a per-user pandas frame (``user_id``, ``variant``)."""
    _check_frame(per_user, experiment, [])
    return sample_ratio_from_counts(per_user["variant"].value_counts().to_dict(), experiment, cfg)
