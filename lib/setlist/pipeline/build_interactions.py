"""Interactions step: listens up to the run date -> the ``interactions`` partition for it."""
from __future__ import annotations

from pyspark.sql import SparkSession

from setlist import lake
from setlist.config import SetlistConfig
from setlist.interactions import build_interactions


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    listens = lake.read_table(spark, cfg, cfg.tables.listens).where(f"ds <= '{ds}'")
    lake.write_partition(build_interactions(listens, ds, cfg.rewards), cfg,
                         cfg.tables.interactions, ds, run_id)
