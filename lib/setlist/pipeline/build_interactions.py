"""Interactions step: listens of the lookback window ending with the run date -> the
``interactions`` partition for it. Only the window's partitions are read: the step's cost is
bounded by ``rewards.lookback_days``, not by the lake's age."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.config import SetlistConfig
from setlist.interactions import build_interactions, lookback_partitions


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    first, last = lookback_partitions(ds, cfg.rewards)
    listens = lake.read_table(spark, cfg, cfg.tables.listens).where(F.col("ds").between(first, last))
    lake.write_partition(build_interactions(listens, ds, cfg.rewards), cfg,
                         cfg.tables.interactions, ds, run_id)
