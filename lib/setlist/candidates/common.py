"""What every candidate source shares: the output columns and the per-user top-N cut."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

CANDIDATE_COLUMNS = ["user_id", "track_id", "source", "source_score", "source_rank"]
CANDIDATE_SCHEMA = ("user_id string, track_id string, source string, "
                    "source_score double, source_rank int")


def top_n_per_user(scored: DataFrame, source: str, top_n: int) -> DataFrame:
    """(user_id, track_id, score) -> the ``top_n`` best per user as candidate columns.

    Ranks are 1..n by score descending, ties broken by track_id so reruns agree.
    """
    by_user = Window.partitionBy("user_id").orderBy(F.desc("score"), F.asc("track_id"))
    return (scored.withColumn("source_rank", F.row_number().over(by_user))
            .where(F.col("source_rank") <= top_n)
            .select("user_id", "track_id", F.lit(source).alias("source"),
                    F.col("score").cast("double").alias("source_score"),
                    F.col("source_rank").cast("int").alias("source_rank")))


def played_pairs(interactions: DataFrame) -> DataFrame:
    """(user_id, track_id) the user already played: what ``exclude_played`` removes."""
    return interactions.select("user_id", "track_id").distinct()
