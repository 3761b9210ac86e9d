"""``setlist run-public``: a public data set through the same steps as the daily run.

import (``pipeline.import_public``) -> interactions (timestamped data; count data is imported
as interactions) -> ranker training on a persisted split of the history with the gate
(``pipeline.train_on_split``) -> candidates from the full history (``pipeline.candidates``) ->
publish (``pipeline.publish``) for every user in the data. Ids stay the data set's own.

The run date is the data's own: ``importers.counts_ds`` for count data, the last day with a
listen otherwise. Config: ``conf/default.yaml``, then ``conf/public/common.yaml`` and the data
set's profile (``conf/public/<profile>.yaml``), then the user's ``--conf`` files and ``--set``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.config import DEFAULT_CONF_DIR, SetlistConfig
from setlist.importers import ImportDataError
from setlist.pipeline import build_interactions, candidates, import_public, publish, train_on_split

log = logging.getLogger(__name__)

# Data set -> its config profile under conf/public/ (besides common.yaml).
PROFILES = {"hetrec": "hetrec", "s3rec": None, "movielens1m": "movielens", "movielens100k": "movielens"}
COUNT_DATA = {"hetrec"}


def config_files(dataset: str, user_files: list[str] | None) -> list[Path]:
    """The config files ``run-public`` loads for ``dataset``, in order."""
    if dataset not in PROFILES:
        raise ImportDataError(f"unknown dataset {dataset!r}; expected one of {sorted(PROFILES)}")
    folder = DEFAULT_CONF_DIR / "public"
    profile = [folder / f"{PROFILES[dataset]}.yaml"] if PROFILES[dataset] else []
    return [DEFAULT_CONF_DIR / "default.yaml", folder / "common.yaml", *profile, *map(Path, user_files or [])]


def run_date(spark: SparkSession, cfg: SetlistConfig, dataset: str) -> str:
    if dataset in COUNT_DATA:
        return cfg.importers.counts_ds
    return lake.read_table(spark, cfg, cfg.tables.listens).agg(F.max("ds")).first()[0]


def run(spark: SparkSession, cfg: SetlistConfig, dataset: str, folder: str, run_id: str) -> str:
    """Import ``folder`` as ``dataset`` and publish ``ranked_recs``; returns that table's location."""
    import_public.run(spark, cfg, dataset, folder, run_id)
    ds = run_date(spark, cfg, dataset)
    if dataset not in COUNT_DATA:
        build_interactions.run(spark, cfg, ds, run_id)
    result = train_on_split.run(spark, cfg, ds, run_id)
    log.info("run-public %s: ranker %s: %s", dataset, result.status, result.message)
    candidates.run(spark, cfg, ds, run_id)
    publish.run(spark, cfg, ds, run_id)
    return lake.table_path(cfg, cfg.tables.ranked_recs)
