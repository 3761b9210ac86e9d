"""Strong simple baselines the benches compare Setlist with, computed outside Setlist's code:
the ``implicit`` library's models and a reference EASE in plain numpy (Steck, WWW 2019)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pyspark.sql import DataFrame, SparkSession

SCHEMA = "user_id string, track_id string, source string, source_score double, source_rank int"


def user_item_matrix(train: pd.DataFrame) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(user_id, track_id, reward) -> (positive-reward matrix, user ids, item ids)."""
    users, user_index = np.unique(train["user_id"].to_numpy(), return_inverse=True)
    items, item_index = np.unique(train["track_id"].to_numpy(), return_inverse=True)
    weights = np.maximum(train["reward"].to_numpy(dtype=np.float32), 0.0)
    matrix = sp.csr_matrix((weights, (user_index, item_index)), shape=(len(users), len(items)))
    matrix.eliminate_zeros()
    return matrix, users, items


def _as_candidates(spark: SparkSession, name: str, users: np.ndarray, items: np.ndarray,
                   ids: np.ndarray, scores: np.ndarray) -> DataFrame:
    valid = (ids >= 0) & np.isfinite(scores) & (scores > -1e30)
    ranks = np.broadcast_to(np.arange(1, ids.shape[1] + 1, dtype=np.int32), ids.shape)
    recs = pd.DataFrame({"user_id": np.repeat(users, ids.shape[1])[valid.ravel()],
                         "track_id": items[np.where(valid, ids, 0)][valid], "source": name,
                         "source_score": scores[valid].astype(np.float64), "source_rank": ranks[valid]})
    return spark.createDataFrame(recs, SCHEMA)


def implicit_source(spark: SparkSession, name: str, make_model, top_n: int):
    """A source that fits an ``implicit`` model on the positive train rewards and
    recommends ``top_n`` unseen items per user."""
    def source(train: DataFrame) -> DataFrame:
        matrix, users, items = user_item_matrix(train.select("user_id", "track_id", "reward").toPandas())
        model = make_model()
        model.fit(matrix, show_progress=False)
        ids, scores = model.recommend(np.arange(len(users)), matrix, N=top_n, filter_already_liked_items=True)
        return _as_candidates(spark, name, users, items, ids, scores)
    return source


def reference_ease(spark: SparkSession, name: str, l2: float, top_n: int):
    """EASE on the binary positive matrix, every item, unseen items only: B = I - P / diag(P)."""
    def source(train: DataFrame) -> DataFrame:
        matrix, users, items = user_item_matrix(train.select("user_id", "track_id", "reward").toPandas())
        binary = (matrix > 0).astype(np.float64)
        gram = (binary.T @ binary).toarray()
        gram[np.diag_indices_from(gram)] += l2
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        scores = np.asarray(binary @ weights)
        scores[binary.nonzero()] = -np.inf
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :top_n]
        return _as_candidates(spark, name, users, items, ids, np.take_along_axis(scores, ids, axis=1))
    return source
