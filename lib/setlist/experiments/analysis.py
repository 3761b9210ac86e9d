"""A/B statistics on per-user metric frames (pandas/numpy/scipy; no Spark, no I/O).

Input: one row per exposed user with ``user_id``, ``variant``, one column per metric
(post-exposure) and optionally ``<metric><pre_suffix>`` (the same metric before exposure,
the CUPED covariate). Output: tidy frames, one row per metric x treatment variant,
ready to be written to a Delta table by a pipeline step.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
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


def welch_difference(treatment: np.ndarray, control: np.ndarray, alpha: float) -> Estimate:
    """mean(treatment) - mean(control) with a Welch t interval (unequal variances)."""
    n_t, n_c = len(treatment), len(control)
    var_t, var_c = np.var(treatment, ddof=1) / n_t, np.var(control, ddof=1) / n_c
    se = np.sqrt(var_t + var_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = (var_t + var_c) ** 2 / (var_t ** 2 / (n_t - 1) + var_c ** 2 / (n_c - 1))
        diff = float(np.mean(treatment) - np.mean(control))
        half = stats.t.ppf(1 - alpha / 2, dof) * se
        p_value = 2 * stats.t.sf(abs(diff / se), dof)
    return Estimate(diff, diff - half, diff + half, float(p_value), float(se))


def ratio_difference(mean_t: float, var_mean_t: float, mean_c: float, var_mean_c: float,
                     alpha: float) -> Estimate:
    """mean_t / mean_c - 1 with a delta-method normal interval.

    ``var_mean_*`` are variances of the two (independent) means:
    Var(a/b) ~ Var(a)/b^2 + a^2 Var(b)/b^4.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = mean_t / mean_c - 1
        se = np.sqrt(var_mean_t / mean_c ** 2 + mean_t ** 2 * var_mean_c / mean_c ** 4)
        half = stats.norm.ppf(1 - alpha / 2) * se
        p_value = 2 * stats.norm.sf(abs(diff / se))
    return Estimate(float(diff), float(diff - half), float(diff + half), float(p_value), float(se))


def relative_difference(treatment: np.ndarray, control: np.ndarray, alpha: float) -> Estimate:
    """mean(treatment) / mean(control) - 1 with a delta-method interval."""
    return ratio_difference(np.mean(treatment), np.var(treatment, ddof=1) / len(treatment),
                            np.mean(control), np.var(control, ddof=1) / len(control), alpha)


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """CUPED slope Cov(y, x) / Var(x), pooled over every user given (all variants)."""
    x_centered = x - np.mean(x)
    denominator = np.dot(x_centered, x_centered)
    if denominator == 0:
        return 0.0
    return float(np.dot(y - np.mean(y), x_centered) / denominator)


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float) -> np.ndarray:
    """y - theta (x - mean x): same expected difference between variants, smaller variance."""
    return y - theta * (x - np.mean(x))


def _check_frame(per_user: pd.DataFrame, experiment: ExperimentConfig, metrics: list[str]) -> None:
    where = f"experiment '{experiment.name}'"
    missing = [c for c in ["user_id", "variant", *metrics] if c not in per_user.columns]
    if missing:
        raise ExperimentDataError(f"{where}: per-user frame lacks column(s) {missing}; "
                                  f"has {list(per_user.columns)}")
    unknown = sorted(set(per_user["variant"].unique()) - set(experiment.allocation))
    if unknown:
        raise ExperimentDataError(f"{where}: variant(s) {unknown} are not in the allocation "
                                  f"{sorted(experiment.allocation)}")
    if per_user["user_id"].duplicated().any():
        raise ExperimentDataError(f"{where}: user_id must be unique in the per-user frame")


def _check_values(values: np.ndarray, column: str, experiment: ExperimentConfig) -> None:
    if np.isnan(values).any():
        raise ExperimentDataError(f"experiment '{experiment.name}': column '{column}' has nulls; "
                                  "fill users without activity with 0 before the analysis")


def analyze(per_user: pd.DataFrame, experiment: ExperimentConfig, cfg: ExperimentsConfig,
            metrics: list[str] | None = None) -> pd.DataFrame:
    """Every metric x treatment variant against the experiment's control.

    ``metrics`` defaults to ``cfg.metrics``. CUPED columns are filled when
    ``<metric><cfg.pre_suffix>`` is present, NaN otherwise (``has_cuped`` says which).
    Returns one row per (metric, variant) with :data:`RESULT_COLUMNS`.
    """
    metrics = list(cfg.metrics if metrics is None else metrics)
    _check_frame(per_user, experiment, metrics)
    alpha = cfg.alpha
    variant = per_user["variant"].to_numpy()
    groups = {name: variant == name for name in experiment.allocation}
    for name, mask in groups.items():
        if mask.sum() < MIN_USERS_PER_VARIANT:
            raise ExperimentDataError(f"experiment '{experiment.name}': variant '{name}' has "
                                      f"{int(mask.sum())} users, need at least {MIN_USERS_PER_VARIANT}")
    control = groups[experiment.control]
    rows = []
    for metric in metrics:
        y = per_user[metric].to_numpy(dtype=float)
        _check_values(y, metric, experiment)
        pre_column = f"{metric}{cfg.pre_suffix}"
        has_cuped = pre_column in per_user.columns
        if has_cuped:
            x = per_user[pre_column].to_numpy(dtype=float)
            _check_values(x, pre_column, experiment)
            theta = cuped_theta(y, x)
            y_adjusted = cuped_adjust(y, x, theta)
        for name, mask in groups.items():
            if name == experiment.control:
                continue
            plain = welch_difference(y[mask], y[control], alpha)
            relative = relative_difference(y[mask], y[control], alpha)
            row = {
                "experiment": experiment.name, "metric": metric,
                "control": experiment.control, "variant": name,
                "n_control": int(control.sum()), "n_variant": int(mask.sum()),
                "mean_control": float(np.mean(y[control])), "mean_variant": float(np.mean(y[mask])),
                "abs_diff": plain.diff, "abs_ci_low": plain.ci_low, "abs_ci_high": plain.ci_high,
                "p_value": plain.p_value,
                "rel_diff": relative.diff, "rel_ci_low": relative.ci_low,
                "rel_ci_high": relative.ci_high, "rel_p_value": relative.p_value,
                "significant": bool(plain.p_value < alpha),
                "has_cuped": has_cuped, "alpha": alpha,
            }
            if has_cuped:
                adjusted = welch_difference(y_adjusted[mask], y_adjusted[control], alpha)
                adjusted_relative = relative_difference(y_adjusted[mask], y_adjusted[control], alpha)
                row.update({
                    "cuped_theta": theta,
                    "cuped_mean_control": float(np.mean(y_adjusted[control])),
                    "cuped_mean_variant": float(np.mean(y_adjusted[mask])),
                    "cuped_abs_diff": adjusted.diff, "cuped_ci_low": adjusted.ci_low,
                    "cuped_ci_high": adjusted.ci_high, "cuped_p_value": adjusted.p_value,
                    "cuped_rel_diff": adjusted_relative.diff,
                    "cuped_rel_ci_low": adjusted_relative.ci_low,
                    "cuped_rel_ci_high": adjusted_relative.ci_high,
                    # Share of the difference's variance that the covariate removed.
                    "cuped_variance_reduction": 1 - adjusted.se ** 2 / plain.se ** 2,
                    "cuped_significant": bool(adjusted.p_value < alpha),
                })
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def sample_ratio_check(per_user: pd.DataFrame, experiment: ExperimentConfig,
                       cfg: ExperimentsConfig) -> pd.DataFrame:
    """Chi-square goodness of fit of users per variant against the allocation.

    One row per variant (allocation order) with :data:`SRM_COLUMNS`; ``srm_detected``
    is true on every row when the p-value is below ``cfg.srm_alpha``.
    """
    _check_frame(per_user, experiment, [])
    counts = per_user["variant"].value_counts()
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


def effects_plot(results: pd.DataFrame, path: str | Path) -> Path:
    """PNG of each relative effect with its interval (plain and, where available, CUPED)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = list(dict.fromkeys(results["metric"]))
    figure = Figure(figsize=(7, 1.2 + 1.1 * max(len(results), 1)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels, position = [], 0
    for metric in metrics:
        for row in results[results["metric"] == metric].itertuples():
            estimates = [("plain", row.rel_diff, row.rel_ci_low, row.rel_ci_high, "tab:blue")]
            if row.has_cuped:
                estimates.append(("CUPED", row.cuped_rel_diff, row.cuped_rel_ci_low,
                                  row.cuped_rel_ci_high, "tab:orange"))
            for offset, (kind, centre, low, high, colour) in enumerate(estimates):
                y = position - 0.25 * offset
                axes.errorbar([100 * centre], [y], xerr=[[100 * (centre - low)], [100 * (high - centre)]],
                              fmt="o", color=colour, capsize=4, label=kind if position == 0 else None)
            labels.append(f"{metric}\n{row.variant} vs {row.control}")
            position -= 1
    axes.axvline(0, color="grey", linewidth=1)
    axes.set_yticks(range(0, position, -1), labels)
    axes.set_xlabel("relative difference vs control (%)")
    level = _level(results)
    experiments = ", ".join(dict.fromkeys(results["experiment"])) if len(results) else ""
    axes.set_title(f"{experiments}: effects with {level} intervals")
    if len(results):
        axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def _level(results: pd.DataFrame) -> str:
    alpha = float(results["alpha"].iloc[0]) if len(results) else float("nan")
    return f"{100 * (1 - alpha):g} %"


def _interval(centre: float, low: float, high: float, scale: float = 1.0, unit: str = "") -> str:
    return f"{scale * centre:+.4g}{unit} [{scale * low:+.4g}, {scale * high:+.4g}]"


def report_markdown(results: pd.DataFrame, srm: pd.DataFrame) -> str:
    """A readable Markdown report: sample-ratio check, then one table row per metric x variant."""
    names = list(dict.fromkeys([*results["experiment"], *srm["experiment"]]))
    lines = [f"# Experiment report: {', '.join(names)}", ""]
    if len(srm):
        p_value, detected = float(srm["p_value"].iloc[0]), bool(srm["srm_detected"].iloc[0])
        verdict = ("**SAMPLE RATIO MISMATCH: do not trust the effects below**" if detected
                   else "no sample ratio mismatch")
        lines += ["## Sample ratio", "",
                  f"Chi-square p = {p_value:.3g} (threshold {float(srm['srm_alpha'].iloc[0]):g}): {verdict}.",
                  "", "| variant | expected share | users | observed share |", "|---|---|---|---|"]
        lines += [f"| {r.variant} | {r.expected_share:.3f} | {r.observed_users} | {r.observed_share:.3f} |"
                  for r in srm.itertuples()]
        lines.append("")
    level = _level(results)
    lines += ["## Effects", "",
              f"Differences are variant minus control with {level} intervals "
              "(Welch for absolute, delta method for relative).", "",
              "| metric | variant | n | control mean | variant mean | difference | relative | p | "
              "CUPED difference | CUPED relative | CUPED p | variance reduction |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results.itertuples():
        if r.has_cuped:
            cuped = [_interval(r.cuped_abs_diff, r.cuped_ci_low, r.cuped_ci_high),
                     _interval(r.cuped_rel_diff, r.cuped_rel_ci_low, r.cuped_rel_ci_high, 100, " %"),
                     f"{r.cuped_p_value:.3g}", f"{100 * r.cuped_variance_reduction:.1f} %"]
        else:
            cuped = ["n/a"] * 4
        lines.append(" | ".join([
            f"| {r.metric}", f"{r.variant} vs {r.control}", f"{r.n_variant} / {r.n_control}",
            f"{r.mean_control:.4g}", f"{r.mean_variant:.4g}",
            _interval(r.abs_diff, r.abs_ci_low, r.abs_ci_high),
            _interval(r.rel_diff, r.rel_ci_low, r.rel_ci_high, 100, " %"),
            f"{r.p_value:.3g}{' *' if r.significant else ''}", *cuped]) + " |")
    lines.append("")
    return "\n".join(lines)
