"""The ground truth of bench/ope.py: a position-based response model over true preferences.

A served track at position k is listened to with probability
``k ** -position_power * expit(base_logit + affinity_logit * affinity)``: the user examines
position k with a probability falling with k, and listens to what they examine according to the
generator's true affinity (``setlist.generator.true_affinity``). The model is position-based, so
the independent-item estimators are unbiased under it and a policy's true value is exact from
its marginals.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from setlist.config import OpeSimulatorConfig


def listen_probability(position: np.ndarray, affinity: np.ndarray, sim: OpeSimulatorConfig) -> np.ndarray:
    examined = np.asarray(position, dtype=np.float64) ** -sim.position_power
    return examined * expit(sim.base_logit + sim.affinity_logit * np.asarray(affinity, dtype=np.float64))


def draw_rewards(served: pd.DataFrame, affinity: pd.Series, sim: OpeSimulatorConfig,
                 rng: np.random.Generator) -> np.ndarray:
    """0/1 listens of ``served`` rows (list_id, track_id, position); ``affinity`` is indexed by
    (list_id, track_id)."""
    keys = pd.MultiIndex.from_frame(served[["list_id", "track_id"]])
    p = listen_probability(served["position"].to_numpy(), affinity.reindex(keys).to_numpy(), sim)
    return (rng.random(len(served)) < p).astype(np.float64)


def expected_value(marginals: pd.DataFrame, affinity: pd.Series, sim: OpeSimulatorConfig,
                   slate: int) -> pd.Series:
    """Per list, the exact expected listens in positions 1..slate of a policy with these
    ``marginals`` (list_id, track_id, position, probability)."""
    rows = marginals[marginals["position"] <= slate]
    keys = pd.MultiIndex.from_frame(rows[["list_id", "track_id"]])
    p = listen_probability(rows["position"].to_numpy(), affinity.reindex(keys).to_numpy(), sim)
    return pd.Series(rows["probability"].to_numpy() * p, index=rows["list_id"].to_numpy()).groupby(level=0).sum()
