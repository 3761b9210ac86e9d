"""Never-played items into a decoded list by semantic-ID prefix (TIGER, Rajput et al. 2023, section 4.3).

The decoder learns to write the tuples of items it was trained on; an item nobody played has a
tuple from its content, but its last codes are ones the decoder never wrote after that prefix,
so beam search almost never returns it. TIGER's remedy: for each generated tuple, take the
unseen items sharing its first codes, and let them fill at most a set share (epsilon) of the
top-k. Here an unseen item inherits the log-probability of the best beam it matched (it sits
right after that beam's item), and among the unseen items of one beam those sharing more of its
codes come first. No model change: it is a rewrite of beam search's output, so the daily source
and the bench apply the same function.
"""
from __future__ import annotations

import numpy as np

from setlist.generative.semantic_ids import GenerativeError


class UnseenIndex:
    """Unseen item rows grouped by their first ``prefix_levels`` codes."""

    def __init__(self, codes: np.ndarray, unseen: np.ndarray, prefix_levels: int):
        codes = np.asarray(codes, dtype=np.int64)
        unseen = np.asarray(unseen, dtype=bool)
        if codes.ndim != 2 or len(unseen) != len(codes):
            raise GenerativeError(f"cold start: {len(unseen)} unseen flags for codes of shape {codes.shape}")
        if not 1 <= prefix_levels <= codes.shape[1]:
            raise GenerativeError(f"cold start: prefix_levels must be 1..{codes.shape[1]}, got {prefix_levels}")
        self.codes, self.prefix_levels = codes, prefix_levels
        self.rows = np.flatnonzero(unseen)
        self.buckets: dict[tuple, np.ndarray] = {}
        for row in self.rows:
            key = tuple(codes[row, :prefix_levels])
            self.buckets.setdefault(key, []).append(row)
        self.buckets = {key: np.asarray(rows) for key, rows in self.buckets.items()}

    def matches(self, row: int) -> np.ndarray:
        """Unseen rows sharing item ``row``'s prefix, those agreeing on more later codes first (then by row)."""
        found = self.buckets.get(tuple(self.codes[row, :self.prefix_levels]))
        if found is None:
            return np.zeros(0, dtype=np.int64)
        agree = np.cumprod(self.codes[found] == self.codes[row], axis=1).sum(1)
        return found[np.lexsort((found, -agree))]


def mix_unseen(rows: np.ndarray, scores: np.ndarray, index: UnseenIndex, top_k: int,
               share: float) -> tuple[np.ndarray, np.ndarray]:
    """Beam output ([users, beam] item rows, -1 padded, and log-probabilities, best first) ->
    ([users, top_k] rows, scores) with up to ``floor(share * top_k)`` unseen items matched by
    prefix to the beam's items; the rest of the list is the beam's own top items, in order."""
    if not 0 <= share <= 1:
        raise GenerativeError(f"cold start: share must be within [0, 1], got {share}")
    quota = int(np.floor(share * top_k))
    out_rows = np.full((len(rows), top_k), -1, dtype=np.int64)
    out_scores = np.full((len(rows), top_k), -np.inf)
    for user, (beam_rows, beam_scores) in enumerate(zip(rows, scores)):
        valid = beam_rows >= 0
        beam_rows, beam_scores = beam_rows[valid], beam_scores[valid]
        taken = set(beam_rows.tolist())
        extra_rows, extra_scores = [], []
        for row, score in zip(beam_rows, beam_scores):
            if len(extra_rows) >= quota:
                break
            for match in index.matches(row):
                if len(extra_rows) >= quota:
                    break
                if match not in taken:
                    taken.add(match)
                    extra_rows.append(match)
                    extra_scores.append(score)
        keep = top_k - len(extra_rows)
        merged_rows = np.r_[beam_rows[:keep], np.asarray(extra_rows, dtype=np.int64)]
        merged_scores = np.r_[beam_scores[:keep], np.asarray(extra_scores, dtype=np.float64)]
        # Stable sort on score: an unseen item lands right after the beam item it matched.
        order = np.argsort(-merged_scores, kind="stable")
        out_rows[user, :len(order)] = merged_rows[order]
        out_scores[user, :len(order)] = merged_scores[order]
    return out_rows, out_scores
