"""The daily run: ingest -> interactions -> candidates -> train_ranker -> publish, for one date.

``train_ranker`` (when ``ranking.train_in_daily``) trains on days a few days back and may move
the champion; a refused gate is logged and publishing goes on with the current champion.

A day is complete once its row is in ``pipeline_runs`` (written last), which is
what backfill checks; a crash before that leaves the day to be run again, and
every step replaces its own partition, so rerunning is safe.
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import SparkSession

from setlist import lake
from setlist.config import SetlistConfig
from setlist.errors import SetlistError
from setlist.pipeline import build_interactions, candidates, ingest, publish, train_ranker

log = logging.getLogger(__name__)

STEPS = {
    "ingest": ingest.run,
    "interactions": build_interactions.run,
    "candidates": candidates.run,
    "train_ranker": train_ranker.run,
    "publish": publish.run,
}


def steps(cfg: SetlistConfig) -> dict:
    """The configured steps in order (``train_ranker`` only with ``ranking.train_in_daily``)."""
    return {name: step for name, step in STEPS.items() if name != "train_ranker" or cfg.ranking.train_in_daily}


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    configured = steps(cfg)
    for name, step in configured.items():
        log.info("daily %s: %s", ds, name)
        step(spark, cfg, ds, run_id)
    mark_complete(spark, cfg, ds, run_id, list(configured))


def mark_complete(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str,
                  step_names: list[str]) -> None:
    """Record ``ds`` as complete in ``pipeline_runs``: what backfill checks before rerunning a day.

    Written last by the daily run, and by the scheduler's final task when it runs the steps.
    """
    marker = spark.createDataFrame([(ds, run_id, ",".join(step_names))], "ds string, run_id string, steps string")
    lake.write_partition(marker, cfg, cfg.tables.pipeline_runs, ds, run_id)


def completed_days(spark: SparkSession, cfg: SetlistConfig) -> set[str]:
    if not lake.table_exists(spark, cfg, cfg.tables.pipeline_runs):
        return set()
    runs = lake.read_table(spark, cfg, cfg.tables.pipeline_runs)
    return {row["ds"] for row in runs.select("ds").distinct().collect()}


def days_between(start: str, end: str) -> list[str]:
    first, last = (dt.date.fromisoformat(d) for d in (start, end))
    if last < first:
        raise SetlistError(f"backfill: end {end} is before start {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def backfill(spark: SparkSession, cfg: SetlistConfig, start: str, end: str, run_id: str,
             rerun_complete: bool = False) -> list[str]:
    """Run every day in [start, end] in order, skipping complete ones; returns the days run.

    A failure stops the backfill at that day (later days depend on it); running
    the same command again resumes there.
    """
    done = set() if rerun_complete else completed_days(spark, cfg)
    ran = []
    for ds in days_between(start, end):
        if ds in done:
            log.info("backfill: %s already complete, skipped", ds)
            continue
        run(spark, cfg, ds, f"{run_id}-{ds}")
        ran.append(ds)
    return ran
