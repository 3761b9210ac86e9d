"""Next-item metrics from the rank of each held-out target (leave-one-out protocols).

``rank`` is 1-based: 1 + the number of candidates scored strictly above the target (ties go
to the target, as in the S3-Rec and gSASRec evaluation code). One relevant item per user, so
HR@k = share with rank <= k, NDCG@k = mean of 1 / log2(rank + 1) over rank <= k and MRR =
mean of 1 / rank (over all ranks).
"""
from __future__ import annotations

import numpy as np

KS = (1, 5, 10)
NDCG_KS = (5, 10)


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """[users, candidates] scores and each user's target column -> 1-based ranks."""
    target_scores = np.take_along_axis(scores, targets[:, None], axis=1)
    return 1 + (scores > target_scores).sum(axis=1)


def rank_metrics(ranks: np.ndarray, hr_ks=KS, ndcg_ks=NDCG_KS) -> dict[str, float]:
    """1-based target ranks -> {"hr@k", "ndcg@k", "mrr", "users"}."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("rank_metrics: no held-out targets to evaluate")
    metrics = {f"hr@{k}": float((ranks <= k).mean()) for k in hr_ks}
    metrics.update({f"ndcg@{k}": float(np.where(ranks <= k, 1 / np.log2(ranks + 1), 0.0).mean()) for k in ndcg_ks})
    metrics["mrr"] = float((1 / ranks).mean())
    metrics["users"] = int(ranks.size)
    return metrics
