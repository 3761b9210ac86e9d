"""Candidates step: the day's interactions and recent listens -> the ``candidates`` union for it.

Runs every configured source, writes the union to partition ``ds`` and logs the
step to MLflow: the candidate config as parameters; rows, users and wall seconds
per source, union rows and user coverage as metrics; the fitted ALS model.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.candidates.als import als_candidates_from_model, fit_als
from setlist.candidates.colisten import colisten_candidates
from setlist.candidates.continuation import continuation_candidates
from setlist.candidates.ease import ease_candidates
from setlist.candidates.generative import GenerativeSource
from setlist.candidates.own_artists import own_artists_candidates
from setlist.candidates.common import CANDIDATE_SCHEMA
from setlist.candidates.popularity import popularity_candidates
from setlist.candidates.sequential import SequentialSource
from setlist.candidates.union import union_candidates
from setlist.config import CandidatesConfig, SetlistConfig
from setlist.generative.registry import champion_files as generative_champion
from setlist.sequential.registry import champion_files
from setlist.spark import set_checkpoint_dir

log = logging.getLogger(__name__)
ALS_ARTIFACT = "als_model"


def flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def recent_listens(spark: SparkSession, cfg: SetlistConfig, ds: str) -> DataFrame | None:
    """Listens of the ``listens_lookback_days`` days ending with ``ds`` (nothing later); None
    for a lake of pre-aggregated play counts (HetRec), which has no ``listens`` table."""
    if not lake.table_exists(spark, cfg, cfg.tables.listens):
        return None
    first = dt.date.fromisoformat(ds) - dt.timedelta(days=cfg.candidates.listens_lookback_days - 1)
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    return listens.where((F.col("ds") >= first.isoformat()) & (F.col("ds") <= ds))


def source_frames(interactions: DataFrame, listens: DataFrame | None, cfg: CandidatesConfig,
                  sequential: SequentialSource | None = None, generative: GenerativeSource | None = None):
    """Yield (source, candidates, fitted model or None, info) for each configured source, lazily.
    The sequential and generative sources need their champion models (``sequential``, ``generative``);
    without one they propose nothing."""
    for name in cfg.sources:
        if name == "als":
            model = fit_als(interactions, cfg.als)
            yield name, als_candidates_from_model(model, interactions, cfg.als), model, {}
        elif name == "popularity":
            yield name, popularity_candidates(interactions, listens, cfg.popularity), None, {}
        elif name == "colisten":
            yield name, colisten_candidates(interactions, listens, cfg.colisten), None, {}
        elif name == "own_artists":
            yield name, own_artists_candidates(interactions, cfg.own_artists), None, {}
        elif name == "continuation":
            yield name, continuation_candidates(interactions, listens, cfg.continuation), None, {}
        elif name == "ease":
            frame, info = ease_candidates(interactions, cfg.ease)
            yield name, frame, None, info
        elif name == "sequential":
            if sequential is None:
                spark = interactions.sparkSession
                yield name, spark.createDataFrame([], CANDIDATE_SCHEMA), None, {"sequential_model": "not loaded"}
            else:
                frame, info = sequential.candidates()
                yield name, frame, None, info
        elif name == "generative":
            if generative is None:
                spark = interactions.sparkSession
                yield name, spark.createDataFrame([], CANDIDATE_SCHEMA), None, {"generative_model": "not loaded"}
            else:
                frame, info = generative.candidates()
                yield name, frame, None, info


def build_candidates(interactions: DataFrame, listens: DataFrame | None, cfg: CandidatesConfig,
                     frames: list[DataFrame], on_model=None,
                     sequential: SequentialSource | None = None,
                     generative: GenerativeSource | None = None) -> tuple[DataFrame, dict]:
    """Every configured source on ``interactions`` (and ``listens``) -> (the union, metrics).

    Numbers a source reports (e.g. the EASE item count) join the metrics; its words (which
    algorithm ran) go to ``metrics["tags"]``.

    Each source is persisted and counted in turn (so each one's wall time is its own) and
    appended to ``frames``, which the caller unpersists once the union is written.
    ``on_model(model)`` receives a fitted Spark model (ALS) to log. With ``sequential``, the
    union's ``sequential_score`` is the model's score of every candidate it can score.
    """
    metrics: dict = {"tags": {}}
    started = time.perf_counter()
    for name, frame, model, info in source_frames(interactions, listens, cfg, sequential, generative):
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
        counts = frame.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("user_id").alias("users")).first()
        metrics.update({f"{name}_rows": counts["rows"], f"{name}_users": counts["users"],
                        f"{name}_seconds": time.perf_counter() - started,
                        **{k: v for k, v in info.items() if isinstance(v, (int, float))}})
        if model is not None and on_model is not None:
            on_model(model)
        metrics["tags"].update({k: v for k, v in info.items() if isinstance(v, str)})
        for key, value in info.items():
            log.info("candidates %s: %s = %s", name, key, value)
        frames.append(frame)
        started = time.perf_counter()
    union = union_candidates(frames, cfg.sources)
    return (sequential.with_scores(union) if sequential is not None else union), metrics


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> dict[str, float]:
    """Write the ``candidates`` partition for ``ds``; returns the metrics it logged."""
    set_checkpoint_dir(spark, cfg.paths.checkpoints)
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds).persist(StorageLevel.MEMORY_AND_DISK)
    listens = recent_listens(spark, cfg, ds)
    frames: list[DataFrame] = []
    metrics: dict[str, float] = {}
    sequential = None
    if "sequential" in cfg.candidates.sources:
        sequential = SequentialSource(spark, champion_files(cfg), listens, ds, cfg.events.surfaces, cfg.rewards,
                                      cfg.candidates.sequential)
    generative = None
    if "generative" in cfg.candidates.sources:
        generative = GenerativeSource(spark, generative_champion(cfg), listens, ds, cfg.rewards,
                                      cfg.candidates.generative)
    try:
        with tracking.start_run(cfg, f"candidates-{ds}", {"ds": ds, "run_id": run_id, "step": "candidates"}):
            tracking.log_params(flatten(cfg.candidates.model_dump()))
            union, metrics = build_candidates(interactions, listens, cfg.candidates, frames,
                                              lambda model: tracking.log_spark_model(model, ALS_ARTIFACT), sequential,
                                              generative)
            tracking.set_tags(metrics.pop("tags"))
            # add_columns: a source added to the config adds its columns; older days read them as null.
            lake.write_partition(union.withColumn("ds", F.lit(ds)), cfg, cfg.tables.candidates, ds, run_id,
                                 add_columns=True)
            written = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
            totals = written.agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("user_id").alias("users")).first()
            users = interactions.select("user_id").distinct().count()
            metrics.update({"union_rows": totals["rows"], "union_users": totals["users"],
                            "users_with_interactions": users,
                            "user_coverage": totals["users"] / users if users else 0.0})
            tracking.log_metrics(metrics)
    finally:
        for frame in frames:
            frame.unpersist()
        if sequential is not None:
            sequential.release()
        interactions.unpersist()
    log.info("candidates %s: %s", ds, metrics)
    return metrics
