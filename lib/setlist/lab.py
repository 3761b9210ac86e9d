"""The signal lab's measurements (pure pandas / scipy): extra signals as features, and the
offline lift of a variant over the baseline per surface with a bootstrap CI over users.

Signals a variant can add as ranker features (``lab.signals``):

- ``noise``: a uniform number fixed by (``lab.seed``, user, track): no information at all, the
  control that a lift must beat;
- ``true_affinity``: the event generator's own preference of the user for the track
  (``setlist.generator.true_affinity_of``): on generated data, the most informative signal there is.

Lift on a surface = mean variant NDCG@k / mean baseline NDCG@k - 1 over the users with a
relevant item on that surface in both, paired by user. Its CI is ``scipy.stats.bootstrap``'s
(percentile method, users resampled with their pair of values). ``all`` pools the publishing
surfaces with each user's mean over the surfaces they have. A variant wins when the lower end of
its ``all`` CI is above 0; of several, the one with the largest lift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from setlist.config import GeneratorConfig, LabConfig

ALL_SURFACES = "all"
_UNIT = float(2 ** 64)


def noise_signal(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Uniform [0, 1) per (user, track), fixed by ``seed``."""
    keys = pd.Series(f"{seed}\x1f" + frame["user_id"].astype(str) + "\x1f" + frame["track_id"].astype(str))
    return pd.util.hash_pandas_object(keys, index=False).to_numpy().astype(np.float64) / _UNIT


def true_affinity_signal(frame: pd.DataFrame, generator: GeneratorConfig) -> np.ndarray:
    from setlist.generator import true_affinity_of

    return np.asarray(true_affinity_of(generator, frame["user_id"].to_numpy(), frame["track_id"].to_numpy()),
                      dtype=np.float64)


def with_signals(frame: pd.DataFrame, cfg: LabConfig, generator: GeneratorConfig) -> pd.DataFrame:
    """``frame`` plus a ``signal_<name>`` column per signal of ``cfg.signals``."""
    builders = {"noise": lambda: noise_signal(frame, cfg.seed),
                "true_affinity": lambda: true_affinity_signal(frame, generator)}
    return frame.assign(**{signal_column(name): builders[name]() for name in cfg.signals})


def signal_column(name: str) -> str:
    return f"signal_{name}"


@dataclass(frozen=True)
class Lift:
    variant: str
    surface: str
    users: int
    baseline: float
    value: float
    lift: float
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


def _relative_lift(base, variant, axis=-1):
    return np.mean(variant, axis=axis) / np.mean(base, axis=axis) - 1.0


def paired_lift(base: np.ndarray, variant: np.ndarray, cfg: LabConfig, seed: int) -> tuple[float, float, float]:
    """(lift, ci_low, ci_high) of paired per-user values (the module doc)."""
    point = float(_relative_lift(base, variant))
    if len(base) < 2 or np.all(base == base[0]) and np.all(variant == variant[0]):
        return point, float("nan"), float("nan")
    result = stats.bootstrap((base, variant), _relative_lift, paired=True, vectorized=True,
                             n_resamples=cfg.bootstrap_resamples, confidence_level=cfg.confidence,
                             method="percentile", rng=np.random.default_rng(seed))
    return point, float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare(baseline: pd.DataFrame, variant: pd.DataFrame, name: str, surfaces: list[str], cfg: LabConfig,
            metric: str = "ndcg") -> list[Lift]:
    """Per-group metrics (``ranking.group_metrics``) of the baseline and a variant -> a Lift per
    publishing surface and for ``all``."""
    paired = baseline.merge(variant, on=["user_id", "surface"], suffixes=("_base", "_variant"))
    paired = paired[paired["surface"].isin(surfaces)]
    lifts = []
    parts = [(s, paired[paired["surface"] == s]) for s in surfaces]
    pooled = paired.groupby("user_id")[[f"{metric}_base", f"{metric}_variant"]].mean().reset_index()
    for i, (surface, rows) in enumerate([*parts, (ALL_SURFACES, pooled)]):
        if rows.empty:
            continue
        base, var = rows[f"{metric}_base"].to_numpy(), rows[f"{metric}_variant"].to_numpy()
        lift, low, high = paired_lift(base, var, cfg, cfg.seed + i)
        lifts.append(Lift(name, surface, len(rows), float(base.mean()), float(var.mean()), lift, low, high))
    return lifts


def winner(lifts: list[Lift]) -> str | None:
    """The variant whose ``all`` CI is above 0 with the largest lift; None when none is."""
    winning = [x for x in lifts if x.surface == ALL_SURFACES and x.ci_low > 0]
    return max(winning, key=lambda x: x.lift).variant if winning else None


def lift_table(lifts: list[Lift], k: int) -> str:
    lines = [f"{'variant':<18} {'surface':<12} {'users':>6} {'baseline':>9} {'variant':>9} "
             f"{'lift':>8}  95% CI (NDCG@{k})"]
    for x in lifts:
        flag = " *" if x.significant else ""
        lines.append(f"{x.variant:<18} {x.surface:<12} {x.users:>6} {x.baseline:>9.4f} {x.value:>9.4f} "
                     f"{x.lift:>+8.2%}  [{x.ci_low:+.2%}, {x.ci_high:+.2%}]{flag}")
    return "\n".join(lines)


def lift_figure(lifts: list[Lift]):
    """Lift per surface and variant with its CI as error bars (matplotlib Figure)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(x.variant for x in lifts))
    surfaces = list(dict.fromkeys(x.surface for x in lifts))
    fig, ax = plt.subplots(figsize=(1.5 + 1.6 * len(surfaces), 4))
    width = 0.8 / max(len(variants), 1)
    for j, name in enumerate(variants):
        mine = {x.surface: x for x in lifts if x.variant == name}
        xs = [i + j * width for i, s in enumerate(surfaces) if s in mine]
        ys = [mine[s].lift for s in surfaces if s in mine]
        errors = [[mine[s].lift - mine[s].ci_low for s in surfaces if s in mine],
                  [mine[s].ci_high - mine[s].lift for s in surfaces if s in mine]]
        ax.bar(xs, ys, width, yerr=errors, capsize=3, label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(surfaces))], surfaces)
    ax.set_ylabel("relative NDCG lift (95% CI)")
    ax.legend()
    fig.tight_layout()
    return fig
