"""Publish step: the day's candidates -> ``ranked_recs`` for that day, atomically."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.config import SetlistConfig
from setlist.publish import rank_recommendations


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    candidates = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    scored = candidates.select("user_id", "track_id", F.col("source_score").alias("score"), "source")
    ranked = rank_recommendations(scored, cfg.publish.top_n, cfg.publish.model_version, ds)
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id)
