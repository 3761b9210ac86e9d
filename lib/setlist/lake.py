"""Every Delta (and raw file) read and write of Setlist goes through here.

Published tables are partitioned by ``ds`` and each step replaces exactly one
day with ``replaceWhere`` in a single Delta commit: a rerun replaces that day,
a crash before the commit leaves the previous version readable. Writes also
carry Delta's idempotent-transaction options (``txnAppId``/``txnVersion``), so
a retry of the same run (same ``run_id``) is not applied twice.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from setlist.config import SetlistConfig
from setlist.errors import IngestError, LakeError

PARTITION = "ds"

# A location with a scheme (s3a://, abfss://, gs://, hdfs://, file://) is a URI for Hadoop's
# FileSystem; anything else is a local path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Where to point a user whose object store cannot be reached, per scheme.
_STORE_SETTINGS = {
    "s3a": "'spark.hadoop.fs.s3a.endpoint' and the credentials ('spark.hadoop.fs.s3a.access.key' / "
           "'spark.hadoop.fs.s3a.secret.key', or 'spark.hadoop.fs.s3a.aws.credentials.provider')",
    "abfss": "'spark.hadoop.fs.azure.account.key.<account>.dfs.core.windows.net' "
             "(or 'spark.hadoop.fs.azure.account.auth.type')",
    "gs": "'spark.hadoop.google.cloud.auth.type' (and the key file or service account it names)",
}

# (Spark application, location) pairs already reached: a step probes its store once, not per table.
_reachable: set[tuple[str, str]] = set()


def has_scheme(location: str) -> bool:
    return bool(_SCHEME.match(location))


def location(configured: str) -> str:
    """A configured storage location as handed to Spark: a URI with a scheme untouched, a plain
    path made absolute (so a step means the same folder whatever the JVM's working directory)."""
    if has_scheme(configured):
        return configured.rstrip("/")
    return os.path.abspath(configured)


def child(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def table_path(cfg: SetlistConfig, table: str) -> str:
    return child(location(cfg.paths.lake), table)


def _hadoop_path(spark: SparkSession, uri: str):
    """(FileSystem, Path) of ``uri`` through the session's Hadoop configuration (s3a, abfss, local...)."""
    jpath = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return jpath.getFileSystem(spark._jsc.hadoopConfiguration()), jpath


def _java_cause(exc: Exception) -> str:
    """The Java exception's class and first message line, short enough for one error line."""
    java = getattr(exc, "java_exception", None)
    text = java.toString() if java is not None else str(exc)
    first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def check_storage(spark: SparkSession, cfg: SetlistConfig, keys: tuple[str, ...] = ("lake",)) -> None:
    """Stop with LakeError naming the config key when a configured object store cannot be reached.

    ``keys`` are fields of ``paths`` (``lake``, ``raw``). Only locations with a scheme are probed
    (one ``exists`` on the root, once per Spark application and location); a bad endpoint or
    missing credentials then fail here, before a step writes anything, instead of midway.
    """
    for key in keys:
        configured = getattr(cfg.paths, key)
        if not has_scheme(configured):
            continue
        root = location(configured)
        probe = (spark.sparkContext.applicationId, root)
        if probe in _reachable:
            continue
        scheme = root.split("://", 1)[0].lower()
        try:
            fs, jpath = _hadoop_path(spark, root)
            fs.exists(jpath)
        except Exception as exc:  # Py4JJavaError: credentials, DNS, connection refused, no bucket...
            settings = _STORE_SETTINGS.get(scheme, f"the 'spark.hadoop.fs.{scheme}.*' settings")
            raise LakeError(f"paths.{key}={configured}: cannot reach the object store "
                            f"({_java_cause(exc)}); check spark.conf {settings}") from exc
        _reachable.add(probe)


def table_exists(spark: SparkSession, cfg: SetlistConfig, table: str) -> bool:
    check_storage(spark, cfg)
    return DeltaTable.isDeltaTable(spark, table_path(cfg, table))


def read_table(spark: SparkSession, cfg: SetlistConfig, table: str,
               ds: str | None = None) -> DataFrame:
    """The Delta table (optionally one ``ds`` partition); LakeError if it does not exist."""
    check_storage(spark, cfg)
    path = table_path(cfg, table)
    if not DeltaTable.isDeltaTable(spark, path):
        raise LakeError(f"Delta table '{table}' does not exist at {path}; run the step that writes it first")
    df = spark.read.format("delta").load(path)
    return df.where(df[PARTITION] == ds) if ds is not None else df


def read_table_or_empty(spark: SparkSession, cfg: SetlistConfig, table: str,
                        schema: T.StructType) -> DataFrame:
    if table_exists(spark, cfg, table):
        return read_table(spark, cfg, table)
    return spark.createDataFrame([], schema)


def _write_partitioned(df: DataFrame, cfg: SetlistConfig, table: str, txn_key: str,
                       run_id: str, replace_where: str | None, add_columns: bool = False) -> None:
    """The one Delta overwrite of a ``ds``-partitioned table: one commit, tagged with the run.

    ``replace_where`` limits the overwrite to matching rows (one day); None replaces the table.
    ``add_columns`` lets a day add columns the table lacks (older days read them as null).
    """
    if PARTITION not in df.columns:
        raise LakeError(f"writing '{table}': the frame has no '{PARTITION}' column")
    check_storage(df.sparkSession, cfg)
    writer = (df.write.format("delta").mode("overwrite")
              .option("txnAppId", f"setlist/{table}/{txn_key}/{run_id}")
              .option("txnVersion", 0)
              .option("userMetadata", f"run_id={run_id} {txn_key}"))
    if replace_where is None:
        writer = writer.option("overwriteSchema", "true")
    else:
        writer = writer.option("replaceWhere", replace_where)
        if add_columns:
            writer = writer.option("mergeSchema", "true")
    writer.partitionBy(PARTITION).save(table_path(cfg, table))


def write_partition(df: DataFrame, cfg: SetlistConfig, table: str, ds: str,
                    run_id: str, *, add_columns: bool = False) -> None:
    """Replace partition ``ds`` of ``table`` with ``df`` in one Delta commit.

    ``df`` must carry a ``ds`` column equal to ``ds`` on every row (Delta checks
    the ``replaceWhere`` predicate and refuses the commit otherwise). Other days
    are untouched. A second call with the same ``run_id`` is a no-op.
    ``add_columns``: columns of ``df`` that the table lacks are added to it (only
    additions; a changed type still fails), for tables whose layout grew.
    """
    _write_partitioned(df, cfg, table, f"ds={ds}", run_id, f"{PARTITION} = '{ds}'", add_columns)


def last_write_rows(spark: SparkSession, cfg: SetlistConfig, table: str) -> int:
    """Rows written by the table's latest commit (Delta's own operation metrics)."""
    last = DeltaTable.forPath(spark, table_path(cfg, table)).history(1).first()
    return int(last["operationMetrics"].get("numOutputRows", 0))


def overwrite_table(df: DataFrame, cfg: SetlistConfig, table: str) -> None:
    """Replace a whole, unpartitioned table in one commit (small reference tables)."""
    check_storage(df.sparkSession, cfg)
    (df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
       .save(table_path(cfg, table)))


def replace_table(df: DataFrame, cfg: SetlistConfig, table: str, run_id: str) -> None:
    """Replace a whole ``ds``-partitioned table in one commit (a one-off import of many days).

    Readers see the previous version until the commit; a retry with the same ``run_id``
    is a no-op, like ``write_partition``.
    """
    _write_partitioned(df, cfg, table, "all", run_id, None)


def history(spark: SparkSession, cfg: SetlistConfig, table: str) -> DataFrame:
    return DeltaTable.forPath(spark, table_path(cfg, table)).history()


def partition_version(spark: SparkSession, cfg: SetlistConfig, table: str, ds: str) -> int | None:
    """The table version of the last commit that wrote partition ``ds`` (every write records
    its partition in ``userMetadata``); None if none did. Tells a derived result whether its
    input day was rewritten since."""
    if not table_exists(spark, cfg, table):
        return None
    key = f" ds={ds}"
    row = (history(spark, cfg, table).where(F.col("userMetadata").endswith(key))
           .agg(F.max("version").alias("v")).first())
    return None if row["v"] is None else int(row["v"])


def raw_day_path(cfg: SetlistConfig, ds: str) -> str:
    return child(location(cfg.paths.raw), f"ds={ds}")


def _data_files(spark: SparkSession, path: str) -> list[str]:
    """Data files under ``path`` (a file or a folder, listed recursively through Hadoop's FileSystem,
    so s3a and friends work), skipping hidden and ``_``-prefixed names as Spark's readers do.
    Raises IngestError naming the path when it does not exist or cannot be listed."""
    try:
        fs, root = _hadoop_path(spark, path)
        if not fs.exists(root):
            raise IngestError(f"raw input {path} does not exist")
        prefix = fs.makeQualified(root).toString().rstrip("/")
        listing = fs.listFiles(root, True)
        files = []
        while listing.hasNext():
            files.append(listing.next().getPath().toString())
    except IngestError:
        raise
    except Exception as exc:  # Py4JJavaError from the filesystem: permissions, endpoint, credentials
        raise IngestError(f"raw input {path} cannot be listed ({_java_cause(exc)})") from exc
    return [file for file in files
            if not any(name.startswith((".", "_")) for name in file[len(prefix):].split("/") if name)]


def read_raw_events(spark: SparkSession, path: str | os.PathLike, fmt: str,
                    string_schema: T.StructType, corrupt_column: str,
                    record_column: str, file_column: str) -> DataFrame:
    """Raw events of one file or folder, nothing dropped, with the file each row came from.

    JSON lines come back as text (``record_column``) to be parsed by the caller, so a
    malformed line keeps its exact text. CSV is read with every field a string and
    malformed rows in ``corrupt_column``; Parquet keeps its own column types.
    Raises IngestError naming the path when it is missing or holds no data files.
    """
    path = source = os.fspath(path)
    if not _data_files(spark, path):
        raise IngestError(f"raw input {path} holds no data files")
    if fmt == "json":
        df = spark.read.text(source).withColumnRenamed("value", record_column)
    elif fmt == "csv":
        schema = T.StructType(string_schema.fields + [T.StructField(corrupt_column, T.StringType())])
        df = (spark.read.schema(schema).option("header", "true").option("mode", "PERMISSIVE")
              .option("columnNameOfCorruptRecord", corrupt_column).csv(source))
    elif fmt == "parquet":
        try:
            df = spark.read.parquet(source)
        except Exception as exc:  # Spark's AnalysisException names the unreadable file
            raise IngestError(f"raw input {path} is not readable as Parquet: {exc}") from exc
    else:
        raise IngestError(f"raw input {path}: unknown format {fmt!r} (expected json, csv or parquet)")
    return df.withColumn(file_column, F.input_file_name())


def write_raw_day(events, folder: str | Path, fmt: str, files: int) -> list[Path]:
    """Replace ``folder`` (a raw day, ``<paths.raw>/ds=<ds>``) with ``part-NNNNN`` files.

    ``events`` is one pandas frame or an iterable of frames (chunks of a big day, so
    memory stays bounded); each frame is split into ``files`` parts, numbered on across
    chunks. ``fmt``: ``json`` (JSON lines), ``csv`` (with header) or ``parquet``. The day
    is written to a hidden sibling folder and swapped in, so readers never see half a
    day and an earlier folder for that day is replaced whole. Returns the files written.
    """
    import shutil
    import uuid

    import numpy as np
    import pandas as pd

    if has_scheme(os.fspath(folder)):
        # The generator's writer renames folders on the local disk; object stores have no renames.
        raise LakeError(f"raw day {folder}: write_raw_day writes local folders only; "
                        f"write there and copy the day to the object store with its own tools")
    suffixes = {"json": "json", "csv": "csv", "parquet": "parquet"}
    if fmt not in suffixes:
        raise LakeError(f"raw day {folder}: unknown format {fmt!r} (expected json, csv or parquet)")
    if files < 1:
        raise LakeError(f"raw day {folder}: files must be >= 1, got {files}")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    written: list[Path] = []
    try:
        for frame in ([events] if isinstance(events, pd.DataFrame) else events):
            for rows in np.array_split(np.arange(len(frame)), files):
                part = frame.iloc[rows] if len(rows) < len(frame) else frame
                path = staging / f"part-{len(written):05d}.{suffixes[fmt]}"
                if fmt == "json":
                    part.to_json(path, orient="records", lines=True)
                elif fmt == "csv":
                    part.to_csv(path, index=False)
                else:
                    part.to_parquet(path, index=False)
                written.append(folder / path.name)
        previous = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex}"
        if folder.exists():
            folder.rename(previous)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    return written
