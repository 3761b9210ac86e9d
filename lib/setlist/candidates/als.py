"""ALS candidates: Spark MLlib implicit ALS on the interactions' reward.

``fit_als`` returns a ``PipelineModel`` of three stages (user indexer, track
indexer, ``ALSModel``), so the string-id mappings travel with the factors when the
model is saved or logged. Ids are indexed alphabetically, so item index order is
track_id order and score ties break by track_id.

Negative rewards (net skips) are kept: Spark's implicit ALS reads a rating r as
preference 1 if r > 0 else 0, with confidence 1 + alpha * |r|, so a skipped track
is confident evidence of no preference.

Scoring (``cfg.scoring``): "blocked" scores ``score_block_users`` users against
``score_block_items`` items of the broadcast item-factor matrix at a time (numpy matmul +
argpartition inside ``mapInPandas``, a running top-N merged across item blocks), so a task's
memory is bounded by config whatever the catalogue (``check_scoring_memory``);
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
    The scoring memory budget is checked against the catalogue before ALS is trained.
    """
    users = StringIndexer(inputCol="user_id", outputCol="user_idx", stringOrderType="alphabetAsc",
                          handleInvalid="skip")
    tracks = StringIndexer(inputCol="track_id", outputCol="item_idx", stringOrderType="alphabetAsc",
                           handleInvalid="skip")
    rows = trainable(interactions)
    indexers = Pipeline(stages=[users, tracks]).fit(rows)
    check_scoring_memory(cfg, len(indexers.stages[1].labels))
    als = ALS(userCol="user_idx", itemCol="item_idx", ratingCol="reward", implicitPrefs=True,
              rank=cfg.rank, regParam=cfg.reg_param, alpha=cfg.alpha, maxIter=cfg.max_iter,
              seed=cfg.seed, coldStartStrategy="drop", checkpointInterval=cfg.checkpoint_interval,
              numUserBlocks=cfg.num_blocks, numItemBlocks=cfg.num_blocks,
              intermediateStorageLevel=cfg.storage_level, finalStorageLevel=cfg.storage_level)
    return PipelineModel(stages=[*indexers.stages, als.fit(indexers.transform(rows))])


def scoring_bytes(cfg: AlsConfig, n_tracks: int) -> tuple[int, int]:
    """(score block, item factors) bytes one scoring task holds for a catalogue of ``n_tracks``."""
    return (4 * cfg.score_block_users * min(cfg.score_block_items, n_tracks), 4 * n_tracks * cfg.rank)


def check_scoring_memory(cfg: AlsConfig, n_tracks: int) -> None:
    """Refuse, before training, a scoring set-up over ``cfg.score_memory_mb`` for this catalogue."""
    block, factors = scoring_bytes(cfg, n_tracks)
    if cfg.scoring == "blocked" and block + factors > cfg.score_memory_mb * 2**20:
        raise ConfigError(
            f"candidates.als: scoring {n_tracks:,} tracks needs {(block + factors) / 2**20:,.0f} MiB per task "
            f"(score block {cfg.score_block_users:,} users x {min(cfg.score_block_items, n_tracks):,} tracks "
            f"x 4 B = {block / 2**20:,.0f} MiB, item factors {n_tracks:,} x rank {cfg.rank} x 4 B = "
            f"{factors / 2**20:,.0f} MiB), over candidates.als.score_memory_mb={cfg.score_memory_mb}; "
            f"lower score_block_users or score_block_items, or raise the budget")


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


# Elements of a score block that top_k_rows works on at once: its temporaries (an int64 index
# per element, masks, a cumulative count) stay near 20 bytes x this, whatever the block's size.
TOP_K_SLICE_ELEMENTS = 1 << 22


def top_k_rows(scores: np.ndarray, k: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the column indices (+ ``offset``) and scores of the ``k`` best, best first; ties
    by lower index, at the cut too. Columns scored -inf (excluded) sort last and are dropped by
    the caller. Rows are taken in slices so the temporaries stay bounded.
    """
    k = min(k, scores.shape[1])
    step = max(1, TOP_K_SLICE_ELEMENTS // max(1, scores.shape[1]))
    parts = [_top_k_slice(scores[start:start + step], k) for start in range(0, scores.shape[0], step)]
    if not parts:
        return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=scores.dtype)
    return np.concatenate([p[0] for p in parts]) + offset, np.concatenate([p[1] for p in parts])


def _top_k_slice(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    # argpartition finds the k-th best score, but picks any of the items tied with it; the
    # selection below takes every better item and then the lowest-index tied ones.
    n = scores.shape[1]
    kth = np.take_along_axis(scores, np.argpartition(scores, n - k, axis=1)[:, n - k:n - k + 1], axis=1)
    better = scores > kth
    tied = scores == kth
    selected = better | (tied & (np.cumsum(tied, axis=1) <= k - better.sum(axis=1, keepdims=True)))
    part = np.nonzero(selected)[1].reshape(scores.shape[0], k)
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def merge_above(best: tuple[np.ndarray, np.ndarray], scores: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge into ``best`` (per-row top lists of width k, best first) the entries of a later item
    block (columns ``start`` + j) that beat each row's current k-th score. Later columns have
    higher indices, so an entry that only ties the k-th loses; after the first blocks few
    entries pass, and only those are sorted."""
    cols, top = best
    n_rows, k = cols.shape
    rows, hits = np.nonzero(scores > top[:, -1:])
    if len(rows) == 0:
        return best
    all_rows = np.concatenate([np.repeat(np.arange(n_rows), k), rows])
    all_cols = np.concatenate([cols.ravel(), hits + start])
    all_scores = np.concatenate([top.ravel(), scores[rows, hits]])
    order = np.lexsort((all_cols, -all_scores, all_rows))
    sorted_rows = all_rows[order]
    first = np.searchsorted(sorted_rows, np.arange(n_rows))
    keep = order[(np.arange(len(order)) - first[sorted_rows]) < k]  # every row keeps exactly k
    return all_cols[keep].reshape(n_rows, k), all_scores[keep].reshape(n_rows, k)


def exclude_played(scores: np.ndarray, played_rows, start: int = 0) -> None:
    """Set -inf, in place, the played item indices of each row that fall in columns
    [start, start + width) of ``scores``."""
    width = scores.shape[1]
    for row, played in enumerate(played_rows):
        if played is not None and len(played):
            cols = np.asarray(played, dtype=np.int64) - start
            scores[row, cols[(cols >= 0) & (cols < width)]] = -np.inf


def top_n_frame(user_ids: np.ndarray, ids: np.ndarray, cols: np.ndarray, best: np.ndarray) -> pd.DataFrame:
    """Per-row top lists -> (user_id, track_id, source_score, source_rank), excluded (-inf) left out."""
    keep = np.isfinite(best)
    ranks = np.broadcast_to(np.arange(1, cols.shape[1] + 1, dtype=np.int32), cols.shape)
    return pd.DataFrame({"user_id": np.repeat(user_ids, cols.shape[1])[keep.ravel()],
                         "track_id": ids[cols[keep]], "source_score": best[keep].astype(np.float64),
                         "source_rank": ranks[keep]})


def block_top_n(scores: np.ndarray, chunk: pd.DataFrame, ids: np.ndarray, top_n: int,
                exclude: bool) -> pd.DataFrame:
    """A block of users' item scores -> their ``top_n`` as (user_id, track_id, source_score,
    source_rank); with ``exclude`` the items in ``chunk["played"]`` (indices) are left out."""
    if exclude:
        exclude_played(scores, chunk["played"])
    cols, best = top_k_rows(scores, top_n)
    return top_n_frame(chunk["user_id"].to_numpy(), ids, cols, best)


def item_blocked_top_k(user_vectors: np.ndarray, items: np.ndarray, k: int, block_items: int,
                       played_rows=None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items per user vector, scoring ``block_items`` items at a time: memory is
    users x block_items scores whatever the catalogue's size. The first block gives a running
    top ``k`` (padded with -inf where the block is narrower); later blocks only add what beats it."""
    k = min(k, items.shape[0])
    best = None
    for start in range(0, items.shape[0], block_items):
        scores = user_vectors @ items[start:start + block_items].T
        if played_rows is not None:
            exclude_played(scores, played_rows, start)
        if best is None:
            cols, top = top_k_rows(scores, k, start)
            pad = k - cols.shape[1]  # -inf entries sort last and are never published
            best = (np.pad(cols, ((0, 0), (0, pad)), constant_values=np.iinfo(np.int64).max),
                    np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf))
        else:
            best = merge_above(best, scores, start)
        del scores  # else the next block's product is allocated while this one is alive
    return best


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
    check_scoring_memory(cfg, len(track_ids))
    spark = users.sparkSession
    shared = spark.sparkContext.broadcast((track_ids, matrix))
    top_n, block_users, block_items, exclude = cfg.top_n, cfg.score_block_users, cfg.score_block_items, cfg.exclude_played

    def score(batches):
        ids, items = shared.value
        for batch in batches:
            for start in range(0, len(batch), block_users):
                chunk = batch.iloc[start:start + block_users]
                vectors = np.stack(chunk["features"].to_numpy()).astype(np.float32)
                cols, best = item_blocked_top_k(vectors, items, top_n, block_items,
                                                chunk["played"] if exclude else None)
                yield top_n_frame(chunk["user_id"].to_numpy(), ids, cols, best)

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
