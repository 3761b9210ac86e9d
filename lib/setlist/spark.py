"""The Spark session edge: local or cluster master, Delta extensions, Python workers."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from setlist.config import DEFAULT_CONF_DIR, SparkConfig
from setlist.lake import location

PROJECT_ROOT = DEFAULT_CONF_DIR.parent
# Beside the Delta JARs: hadoop-aws and the AWS SDK bundle it needs (scripts/setup.sh).
OBJECT_STORE_JARS = "s3a"


def _jars_in(cfg: SparkConfig, subfolder: str = "") -> list[str]:
    """JARs fetched by scripts/setup.sh; a relative folder is looked up from the cwd, then the project."""
    folder = Path(cfg.jars_dir) / subfolder
    candidates = [folder] if folder.is_absolute() else [Path.cwd() / folder, PROJECT_ROOT / folder]
    for candidate in candidates:
        jars = sorted(str(p) for p in candidate.glob("*.jar"))
        if jars:
            return jars
    return []


def delta_jars(cfg: SparkConfig) -> list[str]:
    return _jars_in(cfg)


def object_store_jars(cfg: SparkConfig) -> list[str]:
    return _jars_in(cfg, OBJECT_STORE_JARS)


def build_session(cfg: SparkConfig) -> SparkSession:
    """Return the (one) SparkSession, configured for Delta and for this Python.

    Under ``spark-submit`` the master and JARs given on the command line win;
    the settings here only fill in what was not given.
    """
    # Python workers must run the interpreter that has Setlist's dependencies.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if cfg.master.startswith("local"):
        # A local session needs no routable address (and Spark warns when it guesses one).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.appName(cfg.app_name)
    if not under_submit:
        builder = builder.master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
        jars = delta_jars(cfg)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            builder = builder.config("spark.jars.packages", cfg.delta_packages)
    # The s3a JARs go on the class path, not in spark.jars: Spark copies every spark.jars file into
    # each application's work folder, and the AWS SDK bundle alone is ~700 MB (measured +4 s per
    # session). Executors on other machines need them installed at the same path (as cluster
    # images with hadoop-aws have them).
    class_path = {}
    store_jars = object_store_jars(cfg)
    if store_jars and not under_submit:
        for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath"):
            class_path[key] = os.pathsep.join(store_jars + ([cfg.conf[key]] if key in cfg.conf else []))
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.databricks.delta.snapshotPartitions": str(cfg.delta_snapshot_partitions),
        "spark.sql.session.timeZone": "UTC",
        # ds partitions must stay strings when read back.
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        **cfg.conf,
        **class_path,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(cfg.log_level)
    return session


def set_checkpoint_dir(session: SparkSession, folder: str) -> None:
    """Checkpoint folder for iterative jobs (ALS ignores checkpointInterval without one).

    ``folder`` is a URI (``s3a://...``, handed to Spark untouched) or a local path (made absolute);
    Spark creates it through Hadoop's FileSystem.
    """
    session.sparkContext.setCheckpointDir(location(folder))
