"""The gate of the candidate models (sequential, generative): a new version takes the ``champion``
alias only when its validation NDCG@10 is at least the champion's on the same held-out plays,
within a tolerance. (The ranker's gate, with its own metrics, is in ``train_ranker``.)"""
from __future__ import annotations

import math

from setlist import tracking
from setlist.config import SetlistConfig
from setlist.pipeline.train_ranker import PROMOTED, REFUSED


def decide(cfg: SetlistConfig, model_name: str, version: int, new_ndcg: float, champion_key: str | None,
           champion_ndcg: float, tolerance: float) -> tuple[str, int, str]:
    """Move the alias if the new version passes; (status, serving version, message), tagged on the run."""
    if champion_key is None or math.isnan(champion_ndcg) or new_ndcg >= champion_ndcg - tolerance:
        tracking.set_champion(cfg, version, model_name)
        status, serving = PROMOTED, version
        message = (f"version {version} promoted: validation NDCG@10 {new_ndcg:.4f}"
                   + ("" if champion_key is None else f" against the champion's {champion_ndcg:.4f}"))
    else:
        status, serving = REFUSED, int(champion_key.rsplit("/", 1)[1])
        message = (f"version {version} refused: validation NDCG@10 {new_ndcg:.4f} below the champion's "
                   f"{champion_ndcg:.4f} - {tolerance}")
    tracking.set_tags({"gate_decision": status, "gate_message": message})
    return status, serving, message
