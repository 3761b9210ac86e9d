"""Popularity candidates: the most rewarded tracks overall, minus what the user already played."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.config import RecommendConfig

SOURCE = "popularity"


def track_popularity(interactions: DataFrame) -> DataFrame:
    """(track_id, popularity): the decayed positive reward summed over users."""
    return (interactions.groupBy("track_id")
            .agg(F.sum(F.greatest(F.col("reward"), F.lit(0.0))).alias("popularity"))
            .where(F.col("popularity") > 0)
            .select("track_id", "popularity"))


def popularity_candidates(interactions: DataFrame, cfg: RecommendConfig) -> DataFrame:
    """Top ``cfg.top_n`` popular tracks per user with interactions.

    The pool is the ``top_n + pool_margin`` most popular tracks; with
    ``exclude_played`` a heavy user can be left with fewer than ``top_n``.
    """
    pool = (track_popularity(interactions)
            .withColumn("_pool_rank", F.row_number().over(
                Window.orderBy(F.desc("popularity"), F.asc("track_id"))))
            .where(F.col("_pool_rank") <= cfg.top_n + cfg.pool_margin)
            .select("track_id", "popularity"))
    users = interactions.select("user_id").distinct()
    pairs = users.crossJoin(F.broadcast(pool))
    if cfg.exclude_played:
        played = interactions.select("user_id", "track_id")
        pairs = pairs.join(played, on=["user_id", "track_id"], how="left_anti")
    by_user = Window.partitionBy("user_id").orderBy(F.desc("popularity"), F.asc("track_id"))
    return (pairs.withColumn("source_rank", F.row_number().over(by_user))
            .where(F.col("source_rank") <= cfg.top_n)
            .select("user_id", "track_id", F.lit(SOURCE).alias("source"),
                    F.col("popularity").alias("source_score"), "source_rank"))
