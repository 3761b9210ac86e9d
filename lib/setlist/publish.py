"""Turning scored candidates into the published ``ranked_recs`` layout (pure transforms)."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

RANKED_RECS_COLUMNS = ["user_id", "rank", "track_id", "score", "source", "model_version", "ds"]


def rank_recommendations(scored: DataFrame, top_n: int, model_version: str, ds: str) -> DataFrame:
    """(user_id, track_id, score, source) -> top ``top_n`` per user with a dense 1..n rank.

    Ties in score are broken by track_id so a rerun gives identical ranks.
    """
    by_user = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("track_id"))
    return (scored.withColumn("rank", F.row_number().over(by_user))
            .where(F.col("rank") <= top_n)
            .select("user_id", F.col("rank").cast("int").alias("rank"), "track_id",
                    F.col("score").cast("double").alias("score"), "source",
                    F.lit(model_version).alias("model_version"), F.lit(ds).alias("ds")))
