"""Logging policies: which ranking a list is served in, and each (track, position) propensity.

A list is one (user, surface, day): its candidates' scores from the serving model. Every policy
permutes only the ``pool`` best-scored candidates (ties broken by the caller's candidate order,
which publish makes the track id order) and serves the rest greedily after them, so exploration
never serves a track the model ranks low and every list keeps its length:
- ``none``: the greedy ranking; propensity 1 at the model's own position.
- ``epsilon_greedy``: with probability ``epsilon`` the whole list is a uniformly random
  permutation of the pool, else greedy. Exact marginals:
  P(i at k) = (1 - epsilon) [greedy_k = i] + epsilon / |pool| for k <= |pool|.
  Exploring whole lists (not single slots) keeps the marginals closed-form and bounds the cost
  in reward by ``epsilon`` (a shuffled list earns at least 0).
- ``plackett_luce``: rankings sampled from the softmax of score / ``temperature`` over the pool
  without replacement (Gumbel top-k). P(i at 1) is the exact softmax; later positions are
  estimated from ``samples`` seeded draws (no closed form exists).

Randomness is seeded per list from (seed, day, user, surface): a rerun of publish serves and
records exactly the same lists.
"""
from __future__ import annotations

import zlib

import numpy as np

from setlist.config import ExplorationConfig

# Independent streams of one list's seed: the served ranking, the Monte Carlo marginals.
SERVE_STREAM, MARGINALS_STREAM = 0, 1


def list_rng(seed: int, stream: int, *keys: str) -> np.random.Generator:
    """A generator for one list, stable across processes (crc32, not Python's salted hash)."""
    return np.random.default_rng([seed, stream, *(zlib.crc32(k.encode()) for k in keys)])


def greedy_order(scores: np.ndarray) -> np.ndarray:
    """Candidate indices by descending score; ties keep the caller's order (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _gumbel_top(logits: np.ndarray, slate: int, rng: np.random.Generator, draws: int) -> np.ndarray:
    """(draws, slate) positions of Plackett-Luce rankings of ``logits`` (Gumbel top-k)."""
    keys = logits[None, :] + rng.gumbel(size=(draws, logits.size))
    top = np.argpartition(-keys, min(slate, logits.size) - 1, axis=1)[:, :slate]
    order = np.take_along_axis(keys, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def _pl_logits(scores: np.ndarray, pool: np.ndarray, temperature: float) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64)[pool] / temperature


def sample_ranking(scores: np.ndarray, policy: ExplorationConfig, slate: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Candidate indices served at positions 1..min(slate, n) under ``policy``."""
    scores = np.asarray(scores, dtype=np.float64)
    greedy = greedy_order(scores)
    if policy.policy == "none":
        return greedy[:slate]
    pool = greedy[:policy.pool]
    if policy.policy == "epsilon_greedy":
        head = rng.permutation(pool) if rng.random() < policy.epsilon else pool
    else:
        head = pool[_gumbel_top(_pl_logits(scores, pool, policy.temperature), pool.size, rng, 1)[0]]
    return np.concatenate([head, greedy[pool.size:]])[:slate]


def ranking_marginals(scores: np.ndarray, policy: ExplorationConfig, slate: int,
                      rng: np.random.Generator | None = None) -> np.ndarray:
    """(n_candidates, min(slate, n)) matrix: P(candidate i is served at position k) under ``policy``.

    Exact for ``none`` and ``epsilon_greedy``; for ``plackett_luce`` position 1 is exact and the
    rest are ``policy.samples`` Monte Carlo draws from ``rng``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.size
    width = min(slate, n)
    greedy = greedy_order(scores)
    marginals = np.zeros((n, width))
    marginals[greedy[:width], np.arange(width)] = 1.0
    if policy.policy == "none":
        return marginals
    pool = greedy[:policy.pool]
    head = min(width, pool.size)  # positions the policy randomises; the rest stay greedy
    if policy.policy == "epsilon_greedy":
        marginals[:, :head] *= 1.0 - policy.epsilon
        marginals[np.ix_(pool, np.arange(head))] += policy.epsilon / pool.size
        return marginals
    if rng is None:
        raise ValueError("plackett_luce marginals are Monte Carlo estimates: pass a seeded rng")
    logits = _pl_logits(scores, pool, policy.temperature)
    draws = _gumbel_top(logits, head, rng, policy.samples)
    counts = np.zeros((pool.size, head))
    np.add.at(counts, (draws, np.broadcast_to(np.arange(head), draws.shape)), 1.0)
    counts /= policy.samples
    softmax = np.exp(logits - logits.max())
    counts[:, 0] = softmax / softmax.sum()
    marginals[:, :head] = 0.0
    marginals[pool, :head] = counts
    return marginals
