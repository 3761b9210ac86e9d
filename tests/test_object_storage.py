"""The lake on object storage: the daily run against a real S3 API (a local moto server).

The suite shares one SparkSession, so the s3a settings a deployment gives in ``spark.conf``
(``spark.hadoop.fs.s3a.*``, read when a session starts) are applied here to the running
session's Hadoop configuration instead, as per-bucket keys (``fs.s3a.bucket.<bucket>.*``):
each test has a bucket of its own, and Hadoop's cached FileSystem of one bucket never
serves another.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid

import boto3
import pytest
from deltalake import DeltaTable
from moto.server import ThreadedMotoServer

from setlist import generator, lake
from setlist.errors import LakeError
from setlist.pipeline import daily, ingest
from setlist.publish import RANKED_RECS_COLUMNS

from conftest import event, write_events

DS = "2026-11-01"
KEY, SECRET, REGION = "testing", "testing", "us-east-1"
TABLES = ["listens", "quarantined_events", "ingest_audit", "interactions", "candidates", "ranked_recs",
          "pipeline_runs"]
TINY = ["generator.n_users=30", "generator.n_artists=20", "generator.n_genres=3", "generator.files_per_day=2",
        "publish.top_n=5", "candidates.als.num_blocks=1", "candidates.als.rank=4", "candidates.als.max_iter=2"]
# Fail fast where nothing answers: one attempt, no retry back-off, short connection timeouts.
FAIL_FAST = {"attempts.maximum": "1", "retry.limit": "1", "retry.interval": "10ms",
             "retry.throttle.limit": "1", "connection.establish.timeout": "500ms",
             "connection.timeout": "1s", "connection.request.timeout": "1s"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3a_settings(bucket: str, endpoint_url: str, credentials: bool = True, **extra: str) -> dict[str, str]:
    """``spark.conf`` for one bucket, as a deployment would set it."""
    settings = {"endpoint": endpoint_url, "endpoint.region": REGION, "path.style.access": "true",
                "connection.ssl.enabled": "false",
                # Only the keys below, never the default chain's instance-metadata lookup.
                "aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
                **({"access.key": KEY, "secret.key": SECRET} if credentials else {}), **extra}
    return {f"spark.hadoop.fs.s3a.bucket.{bucket}.{key}": value for key, value in settings.items()}


@pytest.fixture
def apply_spark_conf(spark):
    """Apply a config's ``spark.hadoop.*`` settings to the running session (what a session start
    does); undone afterwards, with the FileSystems they opened closed."""
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    applied, uris = [], []

    def _apply(cfg, *uris_used: str):
        for key, value in cfg.spark.conf.items():
            if key.startswith("spark.hadoop."):
                hadoop.set(key.removeprefix("spark.hadoop."), value)
                applied.append(key.removeprefix("spark.hadoop."))
        uris.extend(uris_used)

    yield _apply
    for uri in uris:
        jpath = spark._jvm.org.apache.hadoop.fs.Path(uri)
        jpath.getFileSystem(hadoop).close()
    for key in applied:
        hadoop.unset(key)


def conf_override(settings: dict[str, str]) -> str:
    """``--set spark.conf={...}`` (with the suite's own settings kept)."""
    suite = {"spark.databricks.delta.snapshotPartitions": "1", "spark.default.parallelism": "2"}
    return "spark.conf={" + ", ".join(f"'{k}': '{v}'" for k, v in {**suite, **settings}.items()) + "}"


def new_bucket(endpoint_url: str):
    bucket = f"setlist-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=endpoint_url, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    return bucket, client


def storage_options(endpoint_url: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint_url, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION}


def keys(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


@pytest.mark.slow  # the whole chain through S3 requests: about 100 s alone, less in the suite
def test_daily_run_on_s3a_writes_tables_every_delta_reader_reads(spark, make_cfg, endpoint, apply_spark_conf,
                                                                   tmp_path, monkeypatch):
    bucket, client = new_bucket(endpoint)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a location mistaken for a local path would land here
    cfg = make_cfg(*TINY, f"paths.lake=s3a://{bucket}/lake", f"paths.raw=s3a://{bucket}/raw",
                   f"paths.checkpoints=s3a://{bucket}/checkpoints", conf_override(s3a_settings(bucket, endpoint)))
    apply_spark_conf(cfg, f"s3a://{bucket}/")
    assert lake.table_path(cfg, "listens") == f"s3a://{bucket}/lake/listens"
    assert lake.raw_day_path(cfg, DS) == f"s3a://{bucket}/raw/ds={DS}"
    # write_raw_day writes local folders; the day is uploaded as an upstream system would.
    local_day = tmp_path / "generated" / f"ds={DS}"
    events = generator.generate_day(cfg.generator, DS, generator.build_world(cfg.generator))
    for path in lake.write_raw_day(events, local_day, "json", cfg.generator.files_per_day):
        client.upload_file(str(path), bucket, f"raw/ds={DS}/{path.name}")

    try:
        daily.run(spark, cfg, DS, "s3-run")
        assert spark.sparkContext.getCheckpointDir().startswith(f"s3a://{bucket}/checkpoints/")
    finally:  # later tests must not checkpoint to a server that is gone
        spark.sparkContext.setCheckpointDir(str(tmp_path / "checkpoints"))

    assert os.listdir(cwd) == []
    audit = lake.read_table(spark, cfg, "ingest_audit", DS).first()
    assert audit["rows_read"] == len(events)
    assert audit["accepted"] + audit["quarantined"] + audit["duplicates"] == len(events)
    for table in TABLES:
        assert keys(client, bucket, f"lake/{table}/_delta_log/"), table
        from_spark = lake.read_table(spark, cfg, table).count()
        from_deltalake = DeltaTable(f"s3://{bucket}/lake/{table}", storage_options=storage_options(endpoint)).to_pandas()
        assert len(from_deltalake) == from_spark, table
    assert lake.read_table(spark, cfg, "listens").count() == audit["accepted"] > 0
    recs = DeltaTable(f"s3://{bucket}/lake/ranked_recs", storage_options=storage_options(endpoint)).to_pandas()
    assert list(recs.columns) == RANKED_RECS_COLUMNS
    assert set(recs.ds) == {DS} and recs.user_id.nunique() > 0
    assert daily.completed_days(spark, cfg) == {DS}


def test_unreachable_endpoint_names_the_key_before_anything_is_written(spark, make_cfg, apply_spark_conf, tmp_path):
    bucket = f"setlist-{uuid.uuid4().hex[:12]}"
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = make_cfg(f"paths.lake=s3a://{bucket}/lake", conf_override(s3a_settings(bucket, dead, **FAIL_FAST)))
    apply_spark_conf(cfg, f"s3a://{bucket}/")
    write_events(lake.raw_day_path(cfg, DS), [event(i, ts=f"{DS}T10:00:00Z") for i in range(3)])
    with pytest.raises(LakeError, match=rf"paths\.lake=s3a://{bucket}/lake: cannot reach the object store") as err:
        ingest.run(spark, cfg, DS, "run-1")
    assert "spark.hadoop.fs.s3a.endpoint" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_credentials_name_the_key_and_leave_the_lake_unwritten(spark, make_cfg, endpoint,
                                                                     apply_spark_conf):
    bucket, client = new_bucket(endpoint)
    client.put_object(Bucket=bucket, Key=f"raw/ds={DS}/part-00000.json",
                      Body=json.dumps(event(1, ts=f"{DS}T10:00:00Z")).encode() + b"\n")
    cfg = make_cfg(f"paths.lake=s3a://{bucket}/lake", f"paths.raw=s3a://{bucket}/raw",
                   conf_override(s3a_settings(bucket, endpoint, credentials=False, **FAIL_FAST)))
    apply_spark_conf(cfg, f"s3a://{bucket}/")
    with pytest.raises(LakeError, match=rf"paths\.lake=s3a://{bucket}/lake: cannot reach") as err:
        ingest.run(spark, cfg, DS, "run-1")
    assert "spark.hadoop.fs.s3a.access.key" in str(err.value)
    assert keys(client, bucket, "lake/") == []


@pytest.mark.parametrize("uri", ["s3a://bucket/lake", "abfss://c@account.dfs.core.windows.net/lake",
                                 "gs://bucket/lake/", "hdfs://namenode:8020/lake", "file:///srv/lake"])
def test_locations_with_a_scheme_pass_through_untouched(make_cfg, uri):
    cfg = make_cfg(f"paths.lake={uri}", f"paths.raw={uri.rstrip('/')}/raw/")
    assert lake.table_path(cfg, "listens") == uri.rstrip("/") + "/listens"
    assert lake.raw_day_path(cfg, DS) == uri.rstrip("/") + f"/raw/ds={DS}"


def test_plain_relative_paths_are_made_absolute(make_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg("paths.lake=data/lake", "paths.raw=./data/raw")
    assert lake.table_path(cfg, "listens") == f"{os.getcwd()}/data/lake/listens"
    assert lake.raw_day_path(cfg, DS) == f"{os.getcwd()}/data/raw/ds={DS}"


@pytest.mark.slow  # a second JVM: about 30 s on a quiet machine
def test_a_new_session_takes_the_s3a_settings_from_spark_conf(endpoint, tmp_path):
    """The deployment route: settings in config (``--set spark.conf={...}``), read at session start."""
    bucket, client = new_bucket(endpoint)
    client.put_object(Bucket=bucket, Key=f"raw/ds={DS}/part-00000.json",
                      Body=json.dumps(event(1, ts=f"{DS}T10:00:00Z")).encode() + b"\n")
    settings = {key.replace(f"bucket.{bucket}.", ""): value for key, value in s3a_settings(bucket, endpoint).items()}
    overrides = ["spark.master=local[1]", "spark.shuffle_partitions=1", "spark.log_level=ERROR",
                 f"paths.lake=s3a://{bucket}/lake", f"paths.raw=s3a://{bucket}/raw",
                 f"paths.mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}", conf_override(settings)]
    script = f"""
from setlist import events, lake
from setlist.config import load_config
from setlist.pipeline import ingest
from setlist.spark import build_session
cfg = load_config(overrides={overrides!r})
spark = build_session(cfg.spark)
result = ingest.run(spark, cfg, {DS!r}, "fresh-session")
print("RESULT", result.rows_read, result.accepted, lake.read_table(spark, cfg, "listens").count())
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT 1 1 1" in run.stdout
    assert keys(client, bucket, "lake/listens/_delta_log/")
