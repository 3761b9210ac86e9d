"""ALS candidates: Spark MLlib implicit ALS on the interactions' reward.

``fit_als`` returns a ``PipelineModel`` of three stages (user indexer, track
indexer, ``ALSModel``), so the string-id mappings travel with the factors when the
model is saved or logged. Ids are indexed alphabetically, so item index order is
track_id order and score ties break by track_id.

Negative rewards (net skips) are kept: Spark's implicit ALS reads a rating r as
preference 1 if r > 0 else 0, with confidence 1 + alpha * |r|, so a skipped track
is confident evidence of no preference.

Scoring (``cfg.scoring``): "blocked" scores users a block at a time against the
broadcast item-factor matrix (numpy matmul + argpartition inside ``mapInPandas``);
"recommend_for_all" uses ``ALSModel.recommendForUserSubset``. bench/als.py measures
both; blocked is the default because it was faster (see its printout).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS, top_n_per_user
from setlist.config import AlsConfig
from setlist.errors import ConfigError

SOURCE = "als"
SCORED_SCHEMA = "user_id string, track_id string, source_score double, source_rank int"


def fit_als(interactions: DataFrame, cfg: AlsConfig) -> PipelineModel:
    """Fit indexers and implicit ALS on (user_id, track_id, reward).

    The caller sets the SparkContext checkpoint dir (``cfg.checkpoint_interval`` is
    ignored without one). Stages: [user StringIndexer, track StringIndexer, ALSModel].
    """
    users = StringIndexer(inputCol="user_id", outputCol="user_idx", stringOrderType="alphabetAsc",
                          handleInvalid="skip")
    tracks = StringIndexer(inputCol="track_id", outputCol="item_idx", stringOrderType="alphabetAsc",
                           handleInvalid="skip")
    als = ALS(userCol="user_idx", itemCol="item_idx", ratingCol="reward", implicitPrefs=True,
              rank=cfg.rank, regParam=cfg.reg_param, alpha=cfg.alpha, maxIter=cfg.max_iter,
              seed=cfg.seed, coldStartStrategy="drop", checkpointInterval=cfg.checkpoint_interval,
              numUserBlocks=cfg.num_blocks, numItemBlocks=cfg.num_blocks)
    return Pipeline(stages=[users, tracks, als]).fit(trainable(interactions))


def trainable(interactions: DataFrame) -> DataFrame:
    """(user_id, track_id, reward) of users and tracks with at least one positive reward.

    Spark scales the regularisation by a row's count of positive ratings, so a user or
    track with only skips gets none and its normal equations can be singular (LAPACK
    "not positive definite"); such users are cold for ALS and served by the other sources.
    """
    by_user, by_track = Window.partitionBy("user_id"), Window.partitionBy("track_id")
    has_positive = (F.max("reward").over(by_user) > 0) & (F.max("reward").over(by_track) > 0)
    return (interactions.select("user_id", "track_id", "reward")
            .withColumn("_trainable", has_positive)
            .where(F.col("_trainable")).select("user_id", "track_id", "reward"))


def item_factor_matrix(model: PipelineModel) -> tuple[np.ndarray, np.ndarray]:
    """(track_ids, factors): the item factors as a float32 matrix, rows in item-index order.

    Collected to the driver: bounded by the catalogue (tracks x rank floats).
    """
    item_indexer, als_model = model.stages[1], model.stages[2]
    factors = als_model.itemFactors.orderBy("id").toPandas()
    matrix = np.stack(factors["features"].to_numpy()).astype(np.float32)
    track_ids = np.asarray(item_indexer.labels, dtype=object)[factors["id"].to_numpy()]
    return track_ids, matrix


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices and scores of the ``k`` best, best first; ties by lower index.

    Columns scored -inf (excluded) are left out, so a row can hold fewer than ``k``.
    """
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def block_top_n(scores: np.ndarray, chunk: pd.DataFrame, ids: np.ndarray, top_n: int,
                exclude: bool) -> pd.DataFrame:
    """A block of users' item scores -> their ``top_n`` as (user_id, track_id, source_score,
    source_rank); with ``exclude`` the items in ``chunk["played"]`` (indices) are left out."""
    if exclude:
        for row, played in enumerate(chunk["played"]):
            if played is not None and len(played):
                scores[row, np.asarray(played, dtype=np.int64)] = -np.inf
    cols, best = top_k_rows(scores, top_n)
    keep = np.isfinite(best)
    ranks = np.broadcast_to(np.arange(1, cols.shape[1] + 1, dtype=np.int32), cols.shape)
    return pd.DataFrame({"user_id": np.repeat(chunk["user_id"].to_numpy(), cols.shape[1])[keep.ravel()],
                         "track_id": ids[cols][keep], "source_score": best[keep].astype(np.float64),
                         "source_rank": ranks[keep]})


def _user_factors(model: PipelineModel, users: DataFrame, exclude_played: bool) -> DataFrame:
    """(user_id, features[, played]) for the users the model knows (cold users dropped)."""
    user_indexer, item_indexer, als_model = model.stages
    known = (user_indexer.transform(users.select("user_id").distinct())
             .select("user_id", F.col("user_idx").cast("int").alias("id")))
    factors = known.join(als_model.userFactors, on="id", how="inner").select("user_id", "features")
    if exclude_played:
        played = (item_indexer.transform(users.select("user_id", "track_id"))
                  .groupBy("user_id")
                  .agg(F.collect_list(F.col("item_idx").cast("int")).alias("played")))
        factors = factors.join(played, on="user_id", how="left")
    return factors


def _blocked_scores(model: PipelineModel, users: DataFrame, cfg: AlsConfig) -> DataFrame:
    track_ids, matrix = item_factor_matrix(model)
    spark = users.sparkSession
    shared = spark.sparkContext.broadcast((track_ids, matrix))
    top_n, block, exclude = cfg.top_n, cfg.score_block_users, cfg.exclude_played

    def score(batches):
        ids, items = shared.value
        for batch in batches:
            for start in range(0, len(batch), block):
                chunk = batch.iloc[start:start + block]
                scores = np.stack(chunk["features"].to_numpy()).astype(np.float32) @ items.T
                yield block_top_n(scores, chunk, ids, top_n, exclude)

    return _user_factors(model, users, exclude).mapInPandas(score, SCORED_SCHEMA)


def _recommend_for_all(model: PipelineModel, users: DataFrame, cfg: AlsConfig) -> DataFrame:
    if cfg.exclude_played:
        raise ConfigError("candidates.als.exclude_played needs candidates.als.scoring=blocked")
    user_indexer, item_indexer, als_model = model.stages
    known = user_indexer.transform(users.select("user_id").distinct())
    subset = known.select(F.col("user_idx").cast("int").alias("user_idx"))
    # The recommendation structs are named after the ALS item column: (item_idx, rating).
    recs = (als_model.recommendForUserSubset(subset, cfg.top_n)
            .select("user_idx", F.explode("recommendations").alias("rec"))
            .select("user_idx", F.col("rec.item_idx").alias("item_idx"), F.col("rec.rating").alias("rating")))
    spark = users.sparkSession
    labels = spark.createDataFrame(list(enumerate(item_indexer.labels)), "item_idx int, track_id string")
    # recommendForUserSubset orders by score only; top_n_per_user re-ranks so ties break by track_id.
    return (recs.join(known.select(F.col("user_idx").cast("int").alias("user_idx"), "user_id"),
                      on="user_idx", how="inner")
            .join(F.broadcast(labels), on="item_idx", how="inner")
            .select("user_id", "track_id", F.col("rating").cast("double").alias("score")))


def als_candidates_from_model(model: PipelineModel, users: DataFrame, cfg: AlsConfig) -> DataFrame:
    """Top ``cfg.top_n`` tracks per user of ``users`` (needs user_id; and track_id of the
    played tracks when ``cfg.exclude_played``). Users unknown to the model get none.
    Output: ``CANDIDATE_COLUMNS``."""
    if cfg.scoring == "recommend_for_all":
        return top_n_per_user(_recommend_for_all(model, users, cfg), SOURCE, cfg.top_n)
    return (_blocked_scores(model, users, cfg)
            .select("user_id", "track_id", F.lit(SOURCE).alias("source"), "source_score", "source_rank")
            .select(*CANDIDATE_COLUMNS))


def als_candidates(interactions: DataFrame, cfg: AlsConfig) -> DataFrame:
    """Fit ALS on ``interactions`` and score every user in it (see ``fit_als``)."""
    return als_candidates_from_model(fit_als(interactions, cfg), interactions, cfg)
