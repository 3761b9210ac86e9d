"""Popularity candidates: recently popular tracks, each listen decayed by its age.

Popularity of a track = sum over qualified listens in the last ``window_days`` of
0.5 ** (age / half_life_days), age measured from the latest listen in the input
(the input is cut at the run date or evaluation cutoff by the caller, so nothing
after it is seen). Count data with no per-play log falls back to the summed
positive reward of the interactions.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS, top_n_per_user
from setlist.config import PopularityConfig
from setlist.interactions import SECONDS_PER_DAY
from setlist.rewards import listened_past

SOURCE = "popularity"


def track_popularity(interactions: DataFrame) -> DataFrame:
    """(track_id, popularity): the decayed positive reward summed over users."""
    return (interactions.groupBy("track_id")
            .agg(F.sum(F.greatest(F.col("reward"), F.lit(0.0))).alias("popularity"))
            .where(F.col("popularity") > 0)
            .select("track_id", "popularity"))


def _decayed_listens(listens: DataFrame, cfg: PopularityConfig) -> DataFrame:
    """Qualified listens in the window with ``weight`` = their decay from the latest listen."""
    latest = listens.agg(F.max("ts").cast("double").alias("_latest"))
    age_days = (F.col("_latest") - F.col("ts").cast("double")) / SECONDS_PER_DAY
    in_window = age_days < F.lit(float(cfg.window_days))
    return (listens.where(listened_past(cfg.listen_threshold_s))
            .crossJoin(F.broadcast(latest))
            .where(in_window)
            .withColumn("weight", F.pow(F.lit(0.5), age_days / F.lit(cfg.half_life_days))))


def recent_popularity(listens: DataFrame, cfg: PopularityConfig) -> DataFrame:
    """(track_id, popularity): decayed count of qualified listens in the window."""
    return (_decayed_listens(listens, cfg).groupBy("track_id")
            .agg(F.sum("weight").alias("popularity"))
            .select("track_id", "popularity"))


def surface_popularity(listens: DataFrame, cfg: PopularityConfig) -> DataFrame:
    """(surface, track_id, score, rank): recent popularity per surface, top ``cfg.top_n`` each."""
    by_surface = Window.partitionBy("surface").orderBy(F.desc("score"), F.asc("track_id"))
    return (_decayed_listens(listens, cfg).groupBy("surface", "track_id")
            .agg(F.sum("weight").alias("score"))
            .withColumn("rank", F.row_number().over(by_surface))
            .where(F.col("rank") <= cfg.top_n)
            .select("surface", "track_id", "score", F.col("rank").cast("int").alias("rank")))


def _popular_for_users(interactions: DataFrame, popularity: DataFrame, top_n: int,
                       pool_margin: int, exclude_played: bool) -> DataFrame:
    # A top-k (each partition's best, then merged), not a window over one global partition.
    pool = (popularity.orderBy(F.desc("popularity"), F.asc("track_id"))
            .limit(top_n + (pool_margin if exclude_played else 0))
            .select("track_id", F.col("popularity").alias("score")))
    pairs = interactions.select("user_id").distinct().crossJoin(F.broadcast(pool))
    if exclude_played:
        played = interactions.select("user_id", "track_id")
        pairs = pairs.join(played, on=["user_id", "track_id"], how="left_anti")
    return top_n_per_user(pairs, SOURCE, top_n)


def popularity_candidates(interactions: DataFrame, listens: DataFrame | None,
                          cfg: PopularityConfig) -> DataFrame:
    """Top ``cfg.top_n`` recently popular tracks for every user with interactions.

    ``listens`` None (count data with no per-play log): popularity is the interactions'
    summed positive reward. With ``exclude_played`` the pool is
    ``top_n + pool_margin`` tracks, so a heavy user can be left with fewer than ``top_n``.
    Output: ``CANDIDATE_COLUMNS``.
    """
    if listens is None:
        popularity = track_popularity(interactions)
    else:
        popularity = recent_popularity(listens, cfg)
    return _popular_for_users(interactions, popularity, cfg.top_n, cfg.pool_margin,
                              cfg.exclude_played).select(*CANDIDATE_COLUMNS)
