"""Lists served under a policy and their position marginals, one pandas frame of lists at a time.

A frame of candidates has one row per (list, track): ``list_id`` (``list_key``: day, user and
surface, which also seeds the list's randomness), ``track_id`` and a score column. Publish serves
with :func:`serve_lists`; OPE asks :func:`position_marginals` what a target policy would serve.
Within a list, candidates are taken in track id order, so ties in score break the same way
everywhere.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from setlist.config import ExplorationConfig
from setlist.ope.policies import MARGINALS_STREAM, SERVE_STREAM, list_rng, ranking_marginals, sample_ranking

SERVED_COLUMNS = ["list_id", "track_id", "position", "propensity"]
MARGINAL_COLUMNS = ["list_id", "track_id", "position", "probability"]


def list_key(ds: str, user_id: str, surface: str) -> str:
    return f"{ds}/{user_id}/{surface}"


def _lists(candidates: pd.DataFrame):
    ordered = candidates.sort_values(["list_id", "track_id"], kind="stable")
    return ordered.groupby("list_id", sort=True)


def serve_list(list_id: str, tracks: np.ndarray, scores: np.ndarray, policy: ExplorationConfig,
               slate: int) -> pd.DataFrame:
    """One list (tracks in track id order): the ranking served and each row's propensity, the
    probability of that track at that position under ``policy`` (``SERVED_COLUMNS``)."""
    ranking = sample_ranking(scores, policy, slate, list_rng(policy.seed, SERVE_STREAM, list_id))
    marginals = ranking_marginals(scores, policy, slate, list_rng(policy.seed, MARGINALS_STREAM, list_id))
    positions = np.arange(ranking.size)
    return pd.DataFrame({"list_id": list_id, "track_id": tracks[ranking], "position": positions + 1,
                         "propensity": marginals[ranking, positions]})


def serve_lists(candidates: pd.DataFrame, score: str, policy: ExplorationConfig, slate: int) -> pd.DataFrame:
    """Every list of ``candidates`` served by ``score`` under ``policy`` (``SERVED_COLUMNS``)."""
    parts = [serve_list(list_id, group["track_id"].to_numpy(), group[score].to_numpy(), policy, slate)
             for list_id, group in _lists(candidates)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SERVED_COLUMNS)


def position_marginals(candidates: pd.DataFrame, score: str, policy: ExplorationConfig,
                       slate: int) -> pd.DataFrame:
    """P(track at position) > 0 of every list ranked by ``score`` under ``policy``, positions
    1..slate (``MARGINAL_COLUMNS``); Monte Carlo ones are seeded per list like publish's."""
    parts = []
    for list_id, group in _lists(candidates):
        marginals = ranking_marginals(group[score].to_numpy(), policy, slate,
                                      list_rng(policy.seed, MARGINALS_STREAM, list_id))
        track, position = np.nonzero(marginals)
        parts.append(pd.DataFrame({"list_id": list_id, "track_id": group["track_id"].to_numpy()[track],
                                   "position": position + 1, "probability": marginals[track, position]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MARGINAL_COLUMNS)


def marginal_rows(candidates: pd.DataFrame, score: str, policy: ExplorationConfig, positions: int,
                  rows: pd.DataFrame) -> np.ndarray:
    """(len(rows), positions) matrix: for each (list_id, track_id) of ``rows``, P(track at k)
    for k = 1..positions under ``policy`` ranking the list's candidates by ``score``; zeros for a
    track the list does not hold."""
    out = np.zeros((len(rows), positions))
    wanted = rows.reset_index(drop=True).groupby("list_id").indices
    for list_id, group in _lists(candidates):
        if list_id not in wanted:
            continue
        marginals = ranking_marginals(group[score].to_numpy(), policy, positions,
                                      list_rng(policy.seed, MARGINALS_STREAM, list_id))
        at = pd.Index(group["track_id"].to_numpy()).get_indexer(rows["track_id"].to_numpy()[wanted[list_id]])
        found = at >= 0
        out[wanted[list_id][found], :marginals.shape[1]] = marginals[at[found]]
    return out
