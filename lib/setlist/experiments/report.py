"""The experiment report: a plot of each effect with its interval and a Markdown summary
(the pipeline step writes both beside the results table)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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
