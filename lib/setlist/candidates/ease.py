"""EASE candidates (Steck, "Embarrassingly Shallow Autoencoders", WWW 2019), with an
item-KNN fallback above the item cap.

X is the binary user x item matrix of the pairs with reward > 0 (a skips-only pair is no
evidence of liking), restricted to items with at least ``min_item_users`` users: the
model's catalogue. The Gram matrix G = X'X is aggregated in Spark and collected (it is
item x item, bounded by the catalogue); the driver solves the closed form

    P = (G + l2 I)^-1        B = I - P diagMat(1 / diag(P))   (so B_ij = -P_ij / P_jj, B_jj = 0)

in float64 and keeps B as float32. A user's scores are x_u B, computed a block of users
at a time in ``mapInPandas`` against the broadcast B.

Above ``max_items`` (B alone is items^2 floats on the driver and every executor) the
source runs top-k item-KNN in Spark instead: each item keeps its ``knn_neighbours`` most
similar other items, and a user's score for j is the sum of sim(i, j) over the user's
items i whose neighbours include j. Similarities:

- cosine: c_ij / sqrt(n_i n_j) (users in common over the items' user counts);
- bm25: as ``implicit``'s BM25Recommender (``bm25_weight`` on the item x user matrix,
  K1=1.2, B=0.75, then the dot product of the weighted item vectors, not normalised):
  w_iu = (K1 + 1) / (K1 * len_i + 1) * idf_u with len_i = (1 - B) + B * n_i / mean(n),
  idf_u = log(N / (1 + n_u)), N the catalogue size and n_u the user's items in it.
  It damps heavy users (low idf) and popular items (long "documents").

The Gram self-join costs sum over users of (their items in the catalogue)^2 rows.
Track indices are track_id order, so score ties break by track_id in both paths.
"""
from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.als import block_top_n
from setlist.candidates.common import (CANDIDATE_COLUMNS, CANDIDATE_SCHEMA, played_pairs,
                                       top_n_per_user)
from setlist.config import EaseConfig

SOURCE = "ease"
SCORED_SCHEMA = "user_id string, track_id string, source_score double, source_rank int"
# implicit's BM25Recommender defaults; fixed here so "bm25" means one documented weighting.
BM25_K1, BM25_B = 1.2, 0.75
# Per block of users the scorer holds two float32 (users x items) matrices, the densified
# rows and their scores: 64 MiB keeps ~800 users a block at 10,000 items, next to B itself.
SCORE_BLOCK_BYTES = 64 << 20


def liked_pairs(interactions: DataFrame) -> DataFrame:
    """(user_id, track_id) with reward > 0: the ones of X (interactions hold one row per pair)."""
    return interactions.where(F.col("reward") > 0).select("user_id", "track_id")


def model_items(pairs: DataFrame, min_item_users: int) -> DataFrame:
    """(track_id, users) of the items liked by at least ``min_item_users`` users."""
    return (pairs.groupBy("track_id").agg(F.count(F.lit(1)).alias("users"))
            .where(F.col("users") >= min_item_users))


def item_gram(pairs: DataFrame) -> DataFrame:
    """(track_a, track_b, users) of G = X'X from (user_id, track_id) pairs, for track_a <= track_b.

    The diagonal (track_a == track_b) holds each item's user count; pairs with no user in
    common are absent (G is sparse). Only one triangle is kept: G is symmetric.
    """
    a, b = pairs.alias("a"), pairs.alias("b")
    return (a.join(b, on=(F.col("a.user_id") == F.col("b.user_id"))
                   & (F.col("a.track_id") <= F.col("b.track_id")), how="inner")
            .groupBy(F.col("a.track_id").alias("track_a"), F.col("b.track_id").alias("track_b"))
            .agg(F.count(F.lit(1)).alias("users")))


def ease_weights(gram: np.ndarray, l2: float) -> np.ndarray:
    """EASE item weights B (float32, zero diagonal) from the dense Gram matrix X'X."""
    g = np.asarray(gram, dtype=np.float64)
    p = np.linalg.inv(g + l2 * np.eye(g.shape[0]))
    b = -p / np.diag(p)  # broadcasts over rows: column j is divided by P_jj
    np.fill_diagonal(b, 0.0)
    return b.astype(np.float32)


def _index(pairs: DataFrame, index: DataFrame) -> DataFrame:
    return pairs.join(F.broadcast(index), on="track_id", how="inner")


def _dense_gram(pairs: DataFrame, index: DataFrame, n_items: int) -> np.ndarray:
    ia = index.select(F.col("track_id").alias("track_a"), F.col("item_idx").alias("i"))
    ib = index.select(F.col("track_id").alias("track_b"), F.col("item_idx").alias("j"))
    # Collected as integer triples: at most n_items^2 / 2 rows, bounded by max_items.
    triples = (item_gram(pairs).join(F.broadcast(ia), on="track_a", how="inner")
               .join(F.broadcast(ib), on="track_b", how="inner").select("i", "j", "users").toPandas())
    gram = np.zeros((n_items, n_items), dtype=np.float64)
    i, j, users = triples["i"].to_numpy(), triples["j"].to_numpy(), triples["users"].to_numpy()
    gram[i, j] = users
    gram[j, i] = users
    return gram


def _ease_scores(interactions: DataFrame, pairs: DataFrame, track_ids: list[str],
                 cfg: EaseConfig) -> DataFrame:
    spark = interactions.sparkSession
    n_items = len(track_ids)
    index = spark.createDataFrame(list(enumerate(track_ids)), "item_idx int, track_id string")
    weights = ease_weights(_dense_gram(pairs, index, n_items), cfg.l2)
    shared = spark.sparkContext.broadcast((np.asarray(track_ids, dtype=object), weights))
    users = _index(pairs, index).groupBy("user_id").agg(F.collect_list("item_idx").alias("liked"))
    if cfg.exclude_played:
        # Every played track in the catalogue is excluded, skipped ones too (as other sources do).
        played = (_index(played_pairs(interactions), index)
                  .groupBy("user_id").agg(F.collect_list("item_idx").alias("played")))
        users = users.join(played, on="user_id", how="left")
    top_n, exclude = cfg.top_n, cfg.exclude_played
    block = max(1, SCORE_BLOCK_BYTES // (8 * n_items))

    def score(batches):
        ids, b = shared.value
        for batch in batches:
            for start in range(0, len(batch), block):
                chunk = batch.iloc[start:start + block]
                x = np.zeros((len(chunk), b.shape[0]), dtype=np.float32)
                for row, liked in enumerate(chunk["liked"]):
                    x[row, np.asarray(liked, dtype=np.int64)] = 1.0
                scores = x @ b
                yield block_top_n(scores, chunk, ids, top_n, exclude)

    return (users.mapInPandas(score, SCORED_SCHEMA)
            .select("user_id", "track_id", F.lit(SOURCE).alias("source"), "source_score", "source_rank"))


def _bm25_similarity(pairs: DataFrame, items: DataFrame, n_items: int) -> DataFrame:
    """(track_a, track_b, similarity), track_a < track_b: dot products of BM25-weighted items."""
    mean_users = items.agg(F.avg("users").alias("_mean_users"))
    length = F.lit(1.0 - BM25_B) + F.lit(BM25_B) * F.col("users") / F.col("_mean_users")
    item_weight = (items.crossJoin(F.broadcast(mean_users))
                   .select("track_id", (F.lit(BM25_K1 + 1.0) / (F.lit(BM25_K1) * length + 1.0)).alias("_iw")))
    idf = F.log(F.lit(float(n_items)) / (1.0 + F.count(F.lit(1)).over(Window.partitionBy("user_id"))))
    weighted = (pairs.join(item_weight, on="track_id", how="inner")
                .select("user_id", "track_id", (F.col("_iw") * idf).alias("w")))
    a, b = weighted.alias("a"), weighted.alias("b")
    return (a.join(b, on=(F.col("a.user_id") == F.col("b.user_id"))
                   & (F.col("a.track_id") < F.col("b.track_id")), how="inner")
            .groupBy(F.col("a.track_id").alias("track_a"), F.col("b.track_id").alias("track_b"))
            .agg(F.sum(F.col("a.w") * F.col("b.w")).alias("similarity")))


def _cosine_similarity(pairs: DataFrame, items: DataFrame) -> DataFrame:
    """(track_a, track_b, similarity), track_a < track_b: c_ab / sqrt(n_a n_b)."""
    n_a = items.select(F.col("track_id").alias("track_a"), F.col("users").alias("n_a"))
    n_b = items.select(F.col("track_id").alias("track_b"), F.col("users").alias("n_b"))
    return (item_gram(pairs).where(F.col("track_a") < F.col("track_b"))
            .join(n_a, on="track_a", how="inner").join(n_b, on="track_b", how="inner")
            .select("track_a", "track_b",
                    (F.col("users") / F.sqrt(F.col("n_a") * F.col("n_b"))).alias("similarity")))


def item_neighbours(pairs: DataFrame, items: DataFrame, n_items: int, cfg: EaseConfig) -> DataFrame:
    """(track_id, neighbour_id, similarity): each item's ``knn_neighbours`` most similar other
    items (ties by neighbour_id), from the catalogue's pairs and ``model_items`` counts."""
    if cfg.knn_similarity == "cosine":
        sims = _cosine_similarity(pairs, items)
    else:
        sims = _bm25_similarity(pairs, items, n_items)
    both_ways = (sims.select(F.col("track_a").alias("track_id"), F.col("track_b").alias("neighbour_id"), "similarity")
                 .unionByName(sims.select(F.col("track_b").alias("track_id"),
                                          F.col("track_a").alias("neighbour_id"), "similarity")))
    by_item = Window.partitionBy("track_id").orderBy(F.desc("similarity"), F.asc("neighbour_id"))
    return (both_ways.withColumn("_rank", F.row_number().over(by_item))
            .where(F.col("_rank") <= cfg.knn_neighbours)
            .select("track_id", "neighbour_id", F.col("similarity").cast("double").alias("similarity")))


def _knn_scores(interactions: DataFrame, pairs: DataFrame, items: DataFrame, n_items: int,
                cfg: EaseConfig) -> DataFrame:
    neighbours = item_neighbours(pairs, items, n_items, cfg).withColumnRenamed("track_id", "seed_id")
    scored = (pairs.withColumnRenamed("track_id", "seed_id")
              .join(neighbours, on="seed_id", how="inner")
              .groupBy("user_id", F.col("neighbour_id").alias("track_id"))
              .agg(F.sum("similarity").alias("score")))
    if cfg.exclude_played:
        scored = scored.join(played_pairs(interactions), on=["user_id", "track_id"], how="left_anti")
    return top_n_per_user(scored, SOURCE, cfg.top_n)


def ease_candidates(interactions: DataFrame, cfg: EaseConfig) -> tuple[DataFrame, dict]:
    """Top ``cfg.top_n`` tracks per user from EASE, or item-KNN above ``cfg.max_items``.

    ``interactions``: user_id, track_id, reward, one row per pair. Returns the
    ``CANDIDATE_COLUMNS`` frame (source "ease"; users with no liked track in the model's
    catalogue get none) and {"ease_algorithm": "ease" | "item_knn" | "none",
    "ease_items": catalogue size}. "none" (and an empty frame) when no item qualifies.

    Fitting runs Spark jobs here, as an ALS fit does: the catalogue's first
    ``max_items + 1`` ids are collected to choose the path, and the EASE path collects G.
    """
    pairs = liked_pairs(interactions)
    items = model_items(pairs, cfg.min_item_users)
    head = [r.track_id for r in items.select("track_id").orderBy("track_id").limit(cfg.max_items + 1).collect()]
    if not head:
        empty = interactions.sparkSession.createDataFrame([], CANDIDATE_SCHEMA)
        return empty, {"ease_algorithm": "none", "ease_items": 0}
    in_model = pairs.join(items.select("track_id"), on="track_id", how="left_semi")
    if len(head) > cfg.max_items:
        n_items = items.count()
        frame = _knn_scores(interactions, in_model, items, n_items, cfg)
        return frame.select(*CANDIDATE_COLUMNS), {"ease_algorithm": "item_knn", "ease_items": n_items}
    frame = _ease_scores(interactions, in_model, head, cfg)
    return frame.select(*CANDIDATE_COLUMNS), {"ease_algorithm": "ease", "ease_items": len(head)}
