"""One SparkSession per test process (each xdist worker), small shuffles, and per-test lake folders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from setlist.config import load_config
from setlist.spark import build_session

TEST_OVERRIDES = ["spark.master=local[2]", "spark.shuffle_partitions=1",
                  "spark.conf={spark.databricks.delta.snapshotPartitions: '1', spark.default.parallelism: '2'}",
                  "spark.log_level=ERROR", "spark.driver_memory=2g",
                  # A tiny transformer, trained in the daily chain only where a test asks for it
                  # (each training starts a torchrun process: seconds of start-up).
                  "candidates.sequential.dim=8", "candidates.sequential.heads=1", "candidates.sequential.layers=1",
                  "candidates.sequential.epochs=1", "candidates.sequential.negatives=8",
                  "candidates.sequential.shards=1", "candidates.sequential.validation_users=20",
                  "candidates.sequential.threads=1", "candidates.sequential.train_in_daily=false"]


@pytest.fixture(scope="session")
def spark():
    session = build_session(load_config(overrides=TEST_OVERRIDES).spark)
    yield session
    session.stop()


@pytest.fixture
def make_cfg(tmp_path):
    """Config whose lake, raw data and MLflow store live in this test's temp folder."""
    def _make(*overrides: str):
        base = [f"paths.lake={tmp_path / 'lake'}", f"paths.raw={tmp_path / 'raw'}",
                f"paths.mlflow_tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
                f"paths.mlflow_artifacts={tmp_path / 'mlartifacts'}",
                f"paths.checkpoints={tmp_path / 'checkpoints'}",
                f"paths.compiled_models={tmp_path / 'compiled_models'}",
                f"paths.reports={tmp_path / 'reports'}"]
        return load_config(overrides=TEST_OVERRIDES + base + list(overrides))
    return _make


def event(i: int, **fields) -> dict:
    """A valid raw event on 2026-11-03 (override any field)."""
    record = {"event_id": f"e{i}", "user_id": f"u{i % 5}", "track_id": f"t{i % 7}",
              "artist_id": f"a{i % 3}", "ts": f"2026-11-03T{i % 24:02d}:{i % 60:02d}:00Z",
              "ms_played": 180000, "track_duration_ms": 200000, "reason_start": "clickrow",
              "reason_end": "trackdone", "surface": "home", "platform": "mobile",
              "shuffle": False, "skipped": False, "saved": False}
    record.update(fields)
    return record


def write_lines(folder: str | Path, lines: list[str], name: str = "part-00000.json") -> Path:
    folder = Path(folder)  # lake.raw_day_path gives a location string
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def write_events(folder: str | Path, records: list[dict], name: str = "part-00000.json") -> Path:
    return write_lines(folder, [json.dumps(r) for r in records], name)
