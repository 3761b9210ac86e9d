"""Co-listening candidates: neighbours of the tracks a user rewards most.

Two tracks are co-listened when both were listened to (past the threshold) in one
session, the second within the next ``window_plays`` plays of the first. A session
ends after a gap of ``session_gap_minutes``. Only the next ``window_plays`` plays
pair with a play, so a heavy user's long session adds pairs linearly, not
quadratically. For each pair of tracks, c = sessions holding the pair, n_t =
sessions holding t, N = sessions:

    cosine = c / (sqrt(n_a * n_b) + shrinkage)        pmi = log(c * N / (n_a * n_b))

Count data without sessions (no per-play log) uses each user as one "session" of
their ``user_max_tracks`` most rewarded tracks.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS, played_pairs, top_n_per_user
from setlist.config import ColistenConfig
from setlist.rewards import listened_past

SOURCE = "colisten"


def sessionize(listens: DataFrame, cfg: ColistenConfig) -> DataFrame:
    """Qualified listens -> (user_id, session_id, pos, track_id); pos is 1.. within a session."""
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    gap_s = F.col("ts").cast("double") - F.lag(F.col("ts").cast("double")).over(by_time)
    new_session = F.when(gap_s.isNull() | (gap_s > cfg.session_gap_minutes * 60.0), 1).otherwise(0)
    in_session = Window.partitionBy("user_id", "session_id").orderBy("ts", "event_id")
    return (listens.where(listened_past(cfg.listen_threshold_s))
            .withColumn("_new", new_session)
            .withColumn("session_id", F.sum("_new").over(by_time.rowsBetween(Window.unboundedPreceding, 0)))
            .withColumn("pos", F.row_number().over(in_session))
            .select("user_id", "session_id", "pos", "track_id"))


def session_pairs(listens: DataFrame, cfg: ColistenConfig) -> DataFrame:
    """(basket, track_a, track_b) with track_a < track_b, once per session that holds the pair."""
    sessions = sessionize(listens, cfg)
    following = (Window.partitionBy("user_id", "session_id").orderBy("pos")
                 .rowsBetween(1, cfg.window_plays))
    basket = F.concat_ws("/", F.col("user_id"), F.col("session_id").cast("string"))
    return (sessions.withColumn("_next", F.collect_list("track_id").over(following))
            .select(basket.alias("basket"), "track_id", F.explode("_next").alias("other"))
            .where(F.col("track_id") != F.col("other"))
            .select("basket", F.least("track_id", "other").alias("track_a"),
                    F.greatest("track_id", "other").alias("track_b"))
            .distinct())


def session_baskets(listens: DataFrame, cfg: ColistenConfig) -> DataFrame:
    """(basket, track_id): which sessions hold which tracks (for the n_t counts)."""
    basket = F.concat_ws("/", F.col("user_id"), F.col("session_id").cast("string"))
    return sessionize(listens, cfg).select(basket.alias("basket"), "track_id").distinct()


def user_baskets(interactions: DataFrame, cfg: ColistenConfig) -> DataFrame:
    """(basket, track_id): each user's ``user_max_tracks`` most rewarded tracks (count data)."""
    by_user = Window.partitionBy("user_id").orderBy(F.desc("reward"), F.asc("track_id"))
    return (interactions.where(F.col("reward") > 0)
            .withColumn("_rank", F.row_number().over(by_user))
            .where(F.col("_rank") <= cfg.user_max_tracks)
            .select(F.col("user_id").alias("basket"), "track_id"))


def basket_pairs(baskets: DataFrame) -> DataFrame:
    """(basket, track_a, track_b), track_a < track_b, for every pair within a (bounded) basket."""
    a, b = baskets.alias("a"), baskets.alias("b")
    return (a.join(b, on=(F.col("a.basket") == F.col("b.basket"))
                   & (F.col("a.track_id") < F.col("b.track_id")), how="inner")
            .select(F.col("a.basket").alias("basket"), F.col("a.track_id").alias("track_a"),
                    F.col("b.track_id").alias("track_b")))


def normalise_pairs(pairs: DataFrame, baskets: DataFrame, cfg: ColistenConfig) -> DataFrame:
    """Pairs and basket membership -> (track_id, neighbour_id, similarity, neighbour_rank).

    Both directions of a pair are kept; each track keeps its ``neighbours_per_track``
    most similar neighbours (ties by neighbour_id).
    """
    counts = (pairs.groupBy("track_a", "track_b").agg(F.count(F.lit(1)).alias("c"))
              .where(F.col("c") >= cfg.min_pair_count))
    n_track = baskets.groupBy("track_id").agg(F.count(F.lit(1)).alias("n"))
    n_a = n_track.select(F.col("track_id").alias("track_a"), F.col("n").alias("n_a"))
    n_b = n_track.select(F.col("track_id").alias("track_b"), F.col("n").alias("n_b"))
    joined = counts.join(n_a, on="track_a", how="inner").join(n_b, on="track_b", how="inner")
    if cfg.similarity == "cosine":
        similarity = F.col("c") / (F.sqrt(F.col("n_a") * F.col("n_b")) + F.lit(cfg.shrinkage))
    else:
        n_baskets = baskets.agg(F.countDistinct("basket").cast("double").alias("_n_baskets"))
        joined = joined.crossJoin(F.broadcast(n_baskets))
        similarity = F.log(F.col("c") * F.col("_n_baskets") / (F.col("n_a") * F.col("n_b")))
    scored = joined.withColumn("similarity", similarity.cast("double"))
    both_ways = (scored.select(F.col("track_a").alias("track_id"), F.col("track_b").alias("neighbour_id"), "similarity")
                 .unionByName(scored.select(F.col("track_b").alias("track_id"),
                                            F.col("track_a").alias("neighbour_id"), "similarity")))
    by_track = Window.partitionBy("track_id").orderBy(F.desc("similarity"), F.asc("neighbour_id"))
    return (both_ways.withColumn("neighbour_rank", F.row_number().over(by_track))
            .where(F.col("neighbour_rank") <= cfg.neighbours_per_track)
            .select("track_id", "neighbour_id", "similarity",
                    F.col("neighbour_rank").cast("int").alias("neighbour_rank")))


def track_neighbours(interactions: DataFrame, listens: DataFrame | None, cfg: ColistenConfig) -> DataFrame:
    """(track_id, neighbour_id, similarity, neighbour_rank) from sessions, or users if no listens."""
    if listens is None:
        baskets = user_baskets(interactions, cfg)
        return normalise_pairs(basket_pairs(baskets), baskets, cfg)
    return normalise_pairs(session_pairs(listens, cfg), session_baskets(listens, cfg), cfg)


def candidates_from_neighbours(interactions: DataFrame, neighbours: DataFrame,
                               cfg: ColistenConfig) -> DataFrame:
    """Each user's ``seed_tracks`` most rewarded tracks -> their neighbours, scored by
    sum(seed reward x similarity). Output: ``CANDIDATE_COLUMNS``."""
    by_user = Window.partitionBy("user_id").orderBy(F.desc("reward"), F.asc("track_id"))
    seeds = (interactions.where(F.col("reward") > 0)
             .withColumn("_seed_rank", F.row_number().over(by_user))
             .where(F.col("_seed_rank") <= cfg.seed_tracks)
             .select("user_id", F.col("track_id").alias("seed_id"), F.col("reward").alias("seed_weight")))
    scored = (seeds.join(neighbours.withColumnRenamed("track_id", "seed_id"), on="seed_id", how="inner")
              .groupBy("user_id", F.col("neighbour_id").alias("track_id"))
              .agg(F.sum(F.col("seed_weight") * F.col("similarity")).alias("score")))
    if cfg.exclude_played:
        scored = scored.join(played_pairs(interactions), on=["user_id", "track_id"], how="left_anti")
    return top_n_per_user(scored, SOURCE, cfg.top_n).select(*CANDIDATE_COLUMNS)


def colisten_candidates(interactions: DataFrame, listens: DataFrame | None,
                        cfg: ColistenConfig) -> DataFrame:
    """Top ``cfg.top_n`` co-listened tracks per user (``listens`` None: count data)."""
    neighbours = track_neighbours(interactions, listens, cfg)
    return candidates_from_neighbours(interactions, neighbours, cfg)
