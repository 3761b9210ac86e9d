"""Vectorised draws and the log-odds calibration shared by the generator's modules."""
from __future__ import annotations

import numpy as np


def logit(p):
    return np.log(p) - np.log1p(-p)


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def solve_base(offsets: np.ndarray, target: float, steps: int) -> float:
    """Base log-odds b with mean(expit(b + offsets)) == target (Newton from logit(target))."""
    base = float(logit(target))
    for _ in range(steps):
        p = expit(base + offsets)
        slope = float(np.mean(p * (1.0 - p)))
        if slope <= 0.0:
            break
        base -= (float(np.mean(p)) - target) / slope
    return base


def centred_within(values: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    """``values`` minus their mean within each cell (so a cell's mean offset is 0)."""
    counts = np.bincount(cells, minlength=n_cells)
    sums = np.bincount(cells, weights=values, minlength=n_cells)
    return values - (sums / np.maximum(counts, 1))[cells]


def mix(shares: dict[str, float]) -> tuple[list[str], np.ndarray]:
    """Labels and their cumulative normalised weights."""
    labels = list(shares)
    weights = np.array([shares[k] for k in labels], dtype=float)
    return labels, np.cumsum(weights / weights.sum())


def draw(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index into the cumulative weights ``cum`` for uniforms ``u``."""
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def draw_rows(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column per row of the row-wise cumulative weights ``cum`` (n, k) for uniforms ``u``.

    ``u`` of shape (n,) gives one column per row, of shape (n, m) m columns per row.
    """
    if u.ndim == 1:
        return np.minimum((cum < u[:, None]).sum(axis=1), cum.shape[1] - 1)
    return np.minimum((cum[:, None, :] < u[:, :, None]).sum(axis=2), cum.shape[1] - 1)


def pick_matching(mask: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A uniformly chosen True column per row of ``mask`` (n, k), and whether the row had one."""
    count = mask.sum(axis=1)
    nth = np.minimum((u * count).astype(np.int64), np.maximum(count - 1, 0))
    column = (np.cumsum(mask, axis=1) <= nth[:, None]).sum(axis=1)
    return np.minimum(column, mask.shape[1] - 1), count > 0


class GroupSampler:
    """Draw an item of a given group with probability proportional to its weight.

    Items are laid out by group with one cumulative weight array, so a whole vector of
    (group, uniform) pairs is served by one ``searchsorted``.
    """

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int):
        self.order = np.argsort(groups, kind="stable")
        self.cum = np.cumsum(weights[self.order])
        counts = np.bincount(groups, minlength=n_groups)
        self.end = np.cumsum(counts)
        self.start = self.end - counts
        cum0 = np.concatenate([[0.0], self.cum])
        self.base = cum0[self.start]
        self.total = cum0[self.end] - self.base

    def sample(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.cum, self.base[groups] + u * self.total[groups], side="right")
        return self.order[np.clip(pos, self.start[groups], self.end[groups] - 1)]
