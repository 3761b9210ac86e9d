"""The Spark session edge: local or cluster master, Delta extensions, Python workers."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from setlist.config import DEFAULT_CONF_DIR, SparkConfig

PROJECT_ROOT = DEFAULT_CONF_DIR.parent


def delta_jars(cfg: SparkConfig) -> list[str]:
    """JARs fetched by scripts/setup.sh; a relative folder is looked up from the cwd, then the project."""
    folder = Path(cfg.jars_dir)
    candidates = [folder] if folder.is_absolute() else [Path.cwd() / folder, PROJECT_ROOT / folder]
    for candidate in candidates:
        jars = sorted(str(p) for p in candidate.glob("*.jar"))
        if jars:
            return jars
    return []


def build_session(cfg: SparkConfig) -> SparkSession:
    """Return the (one) SparkSession, configured for Delta and for this Python.

    Under ``spark-submit`` the master and JARs given on the command line win;
    the settings here only fill in what was not given.
    """
    # Python workers must run the interpreter that has Setlist's dependencies.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    builder = SparkSession.builder.appName(cfg.app_name)
    if not under_submit:
        builder = builder.master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
        jars = delta_jars(cfg)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            builder = builder.config("spark.jars.packages", cfg.delta_packages)
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        # ds partitions must stay strings when read back.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        **cfg.conf,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(cfg.log_level)
    return session


def set_checkpoint_dir(session: SparkSession, folder: str) -> None:
    """Checkpoint folder for iterative jobs (ALS ignores checkpointInterval without one)."""
    path = Path(folder).absolute()
    path.mkdir(parents=True, exist_ok=True)
    session.sparkContext.setCheckpointDir(str(path))
