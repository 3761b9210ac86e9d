"""The daily run: ingest -> interactions -> candidates -> publish, for one date."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from setlist.config import SetlistConfig
from setlist.pipeline import build_interactions, ingest, publish, recommend

log = logging.getLogger(__name__)

STEPS = {
    "ingest": ingest.run,
    "interactions": build_interactions.run,
    "recommend": recommend.run,
    "publish": publish.run,
}


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    for name, step in STEPS.items():
        log.info("daily %s: %s", ds, name)
        step(spark, cfg, ds, run_id)
