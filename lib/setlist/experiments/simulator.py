"""Synthetic experiments with a known injected effect, to check the analysis end to end.

Per user, listening minutes in a period are ``propensity * noise`` with a log-normal
propensity shared by the pre and post periods (so pre predicts post and CUPED helps)
and a mean-one log-normal noise per period; a share of users is inactive (0 minutes)
in each period. Non-control variants get ``(1 + relative_lift)`` times the post minutes,
so the true effect is known exactly (:func:`true_effect`). Minutes are whole milliseconds,
so events from :func:`simulate_events` aggregate back to exactly the same numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd

from setlist.config import ExperimentConfig, ExperimentsConfig, ExperimentSimulatorConfig
from setlist.errors import ConfigError
from setlist.experiments.analysis import analyze

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
EVENT_COLUMNS = ["user_id", "ts", "ms_played", "skipped", "saved", "from_recommendation"]
# Independent random streams of one seed: effect runs, A/A runs, events.
_EFFECT_STREAM, _AA_STREAM, _EVENTS_STREAM = 0, 1, 2


def true_effect(sim: ExperimentSimulatorConfig, relative_lift: float) -> tuple[float, float]:
    """(absolute, relative) expected difference of post-period metric, treatment minus control."""
    control_mean = (1 - sim.inactive_share) * np.exp(sim.log_minutes_mean + sim.propensity_sigma ** 2 / 2)
    return control_mean * relative_lift, relative_lift


def _period_minutes(propensity: np.ndarray, sim: ExperimentSimulatorConfig,
                    rng: np.random.Generator) -> np.ndarray:
    sigma = sim.period_noise_sigma
    noise = np.exp(sigma * rng.standard_normal(len(propensity)) - sigma ** 2 / 2)
    active = rng.random(len(propensity)) >= sim.inactive_share
    return propensity * noise * active


def _whole_ms(minutes: np.ndarray) -> np.ndarray:
    return np.round(minutes * MS_PER_MINUTE) / MS_PER_MINUTE


def simulate_users(experiment: ExperimentConfig, sim: ExperimentSimulatorConfig,
                   rng: np.random.Generator, relative_lift: float | None = None,
                   n_users: int | None = None) -> pd.DataFrame:
    """Per-user frame: user_id, variant, ``<sim.metric>``, ``<sim.metric>_pre``.

    Variants are drawn at random with the experiment's allocation; ``relative_lift``
    (default ``sim.relative_lift``) multiplies post minutes of every non-control user.
    """
    lift = sim.relative_lift if relative_lift is None else relative_lift
    n = sim.n_users if n_users is None else n_users
    variants = np.array(list(experiment.allocation))
    shares = np.array(list(experiment.allocation.values()))
    variant = variants[rng.choice(len(variants), size=n, p=shares / shares.sum())]
    propensity = np.exp(sim.log_minutes_mean + sim.propensity_sigma * rng.standard_normal(n))
    pre = _period_minutes(propensity, sim, rng)
    post = _period_minutes(propensity, sim, rng) * np.where(variant == experiment.control, 1.0, 1 + lift)
    return pd.DataFrame({
        "user_id": [f"sim{i:07d}" for i in range(n)],
        "variant": variant,
        sim.metric: _whole_ms(post),
        f"{sim.metric}_pre": _whole_ms(pre),
    })


def _split_ms(total_ms: np.ndarray, plays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split each user's total into ``plays`` non-negative integer parts summing exactly to it."""
    owner = np.repeat(np.arange(len(plays)), plays)
    weights = rng.exponential(size=owner.size)
    starts = np.concatenate([[0], np.cumsum(plays)[:-1]])
    cumulative = np.cumsum(weights)
    before = np.concatenate([[0.0], cumulative])[starts][owner]
    user_sum = np.add.reduceat(weights, starts[plays > 0]) if owner.size else np.array([])
    sums = np.zeros(len(plays))
    sums[plays > 0] = user_sum
    cut = np.round((cumulative - before) / sums[owner] * total_ms[owner]).astype(np.int64)
    previous = np.concatenate([[0], cut[:-1]])
    first_of_user = np.zeros(owner.size, dtype=bool)
    first_of_user[starts[plays > 0]] = True
    return np.where(first_of_user, cut, cut - previous)


def _period_events(user_ids: np.ndarray, minutes: np.ndarray, period_start_ms: int, days: int,
                   sim: ExperimentSimulatorConfig, rng: np.random.Generator) -> pd.DataFrame:
    total_ms = np.round(minutes * MS_PER_MINUTE).astype(np.int64)
    plays = np.where(total_ms > 0, 1 + rng.poisson(np.maximum(minutes / sim.mean_play_minutes - 1, 0)), 0)
    ms_played = _split_ms(total_ms, plays, rng)
    n = ms_played.size
    offsets = rng.integers(0, days * MS_PER_DAY, size=n)
    return pd.DataFrame({
        "user_id": np.repeat(user_ids, plays),
        "ts": pd.to_datetime(period_start_ms + offsets, unit="ms", utc=True),
        "ms_played": ms_played,
        "skipped": rng.random(n) < sim.skip_rate,
        "saved": rng.random(n) < sim.save_rate,
        "from_recommendation": rng.random(n) < sim.recommendation_share,
    })


def simulate_events(per_user: pd.DataFrame, experiment: ExperimentConfig,
                    sim: ExperimentSimulatorConfig, seed: int, include_pre: bool = True) -> pd.DataFrame:
    """Listening events whose ``ms_played`` sums, per user and period, to the per-user minutes.

    Post-exposure events fall in ``[start_date, start_date + post_days)``, pre-period ones in
    ``[start_date - pre_days, start_date)``; so ``sum(ms_played) / 60000`` grouped by user and
    period reproduces ``<metric>`` and ``<metric>_pre`` exactly. Sorted by user_id, ts.
    """
    if experiment.start_date is None:
        raise ConfigError(f"experiment '{experiment.name}': simulate_events needs a start_date")
    start = datetime.combine(date.fromisoformat(experiment.start_date), datetime.min.time(), timezone.utc)
    start_ms = int(start.timestamp() * 1000)
    rng = np.random.default_rng([seed, _EVENTS_STREAM])
    user_ids = per_user["user_id"].to_numpy()
    frames = [_period_events(user_ids, per_user[sim.metric].to_numpy(), start_ms, sim.post_days, sim, rng)]
    if include_pre:
        frames.append(_period_events(user_ids, per_user[f"{sim.metric}_pre"].to_numpy(),
                                     start_ms - sim.pre_days * MS_PER_DAY, sim.pre_days, sim, rng))
    events = pd.concat(frames, ignore_index=True)
    return events.sort_values(["user_id", "ts"], kind="stable", ignore_index=True)[EVENT_COLUMNS]


def run_simulations(experiment: ExperimentConfig, cfg: ExperimentsConfig, n_simulations: int,
                    relative_lift: float, seed: int | list[int], n_users: int | None = None) -> pd.DataFrame:
    """Analyse ``n_simulations`` seeded synthetic experiments.

    One row per simulation x treatment variant: the :func:`analyze` columns plus
    ``simulation``, ``true_abs_effect`` and ``true_rel_effect``. Same arguments, same frame.
    """
    sim = cfg.simulator
    true_abs, true_rel = true_effect(sim, relative_lift)
    children = np.random.SeedSequence(seed).spawn(n_simulations)
    frames = []
    for index, child in enumerate(children):
        per_user = simulate_users(experiment, sim, np.random.default_rng(child), relative_lift, n_users)
        result = analyze(per_user, experiment, cfg, metrics=[sim.metric])
        frames.append(result.assign(simulation=index))
    results = pd.concat(frames, ignore_index=True)
    return results.assign(true_abs_effect=true_abs, true_rel_effect=true_rel)


@dataclass(frozen=True)
class CoverageSummary:
    """How the analysis behaves on data with a known effect (and on A/A data)."""
    n_simulations: int
    n_users: int
    relative_lift: float
    alpha: float
    coverage_absolute: float
    coverage_relative: float
    coverage_cuped: float
    coverage_cuped_relative: float
    aa_false_positive_rate: float
    aa_false_positive_rate_cuped: float
    mean_ci_width_plain: float
    mean_ci_width_cuped: float
    width_ratio_cuped_to_plain: float
    mean_variance_reduction: float
    power_plain: float
    power_cuped: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _covers(low: pd.Series, high: pd.Series, truth: pd.Series) -> float:
    return float(((low <= truth) & (truth <= high)).mean())


def coverage_study(experiment: ExperimentConfig, cfg: ExperimentsConfig,
                   n_simulations: int | None = None, n_users: int | None = None,
                   seed: int | None = None) -> CoverageSummary:
    """Interval coverage of the true effect, A/A false-positive rate and CUPED vs plain width.

    Effect runs use ``cfg.simulator.relative_lift``; A/A runs use no lift and an independent
    random stream of the same seed. Defaults come from ``cfg.simulator``.
    """
    sim = cfg.simulator
    n_simulations = sim.n_simulations if n_simulations is None else n_simulations
    n_users = sim.n_users if n_users is None else n_users
    seed = sim.seed if seed is None else seed
    effect = run_simulations(experiment, cfg, n_simulations, sim.relative_lift,
                             seed=[seed, _EFFECT_STREAM], n_users=n_users)
    aa = run_simulations(experiment, cfg, n_simulations, 0.0, seed=[seed, _AA_STREAM], n_users=n_users)
    plain_width = (effect["abs_ci_high"] - effect["abs_ci_low"]).mean()
    cuped_width = (effect["cuped_ci_high"] - effect["cuped_ci_low"]).mean()
    return CoverageSummary(
        n_simulations=n_simulations, n_users=n_users, relative_lift=sim.relative_lift, alpha=cfg.alpha,
        coverage_absolute=_covers(effect["abs_ci_low"], effect["abs_ci_high"], effect["true_abs_effect"]),
        coverage_relative=_covers(effect["rel_ci_low"], effect["rel_ci_high"], effect["true_rel_effect"]),
        coverage_cuped=_covers(effect["cuped_ci_low"], effect["cuped_ci_high"], effect["true_abs_effect"]),
        coverage_cuped_relative=_covers(effect["cuped_rel_ci_low"], effect["cuped_rel_ci_high"],
                                        effect["true_rel_effect"]),
        aa_false_positive_rate=float(aa["significant"].mean()),
        aa_false_positive_rate_cuped=float(aa["cuped_significant"].mean()),
        mean_ci_width_plain=float(plain_width),
        mean_ci_width_cuped=float(cuped_width),
        width_ratio_cuped_to_plain=float(cuped_width / plain_width),
        mean_variance_reduction=float(effect["cuped_variance_reduction"].mean()),
        power_plain=float(effect["significant"].mean()),
        power_cuped=float(effect["cuped_significant"].mean()),
    )
