"""Publish step: the day's candidate union -> ``ranked_recs`` for that day, atomically.

Until the ranker exists the order is ``blend_order``: ALS first, the other sources
filling in by ``candidates.source_priority``.
"""
from __future__ import annotations

from pyspark.sql import SparkSession

from setlist import lake
from setlist.candidates.union import blend_order
from setlist.config import SetlistConfig
from setlist.publish import rank_recommendations


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    scored = blend_order(union, cfg.candidates.source_priority)
    ranked = rank_recommendations(scored, cfg.publish.top_n, cfg.publish.model_version, ds)
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id)
