"""Recommend step: the day's interactions -> the ``candidates`` partition for it."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.candidates.popularity import popularity_candidates
from setlist.config import SetlistConfig


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    candidates = popularity_candidates(interactions, None, cfg.recommend).withColumn("ds", F.lit(ds))
    lake.write_partition(candidates, cfg, cfg.tables.candidates, ds, run_id)
