"""Train the ranker on a persisted split of the history (public data: ``setlist run-public``).

Public data has no days to train on (``pipeline.train_ranker`` labels day D with D + 1), so the
known history is split once (``setlist.label_split``: per user for count data, one global time
cut for timestamped data) and the split is written to ``tables.ranker_split`` and logged. The
candidates and features come from the known part only; the ranker learns to put the label items
first. ``ranking.split.valid_user_share`` of the labelled users are held out of training for early
stopping, the ``ranking.tuning_grid`` search and the gate, which compares the new model with the
champion on them. The published lists are then computed from the full history (``run_public``).
"""
from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist import label_split, lake, ranking, tracking
from setlist.config import SetlistConfig
from setlist.evaluation import cutoff_at_quantile
from setlist.features import SURFACE_CODE, feature_columns, pair_features, with_context
from setlist.interactions import as_of_end, build_interactions
from setlist.pipeline.candidates import build_candidates
from setlist.pipeline.publish import side_frame
from setlist.pipeline.train_ranker import TrainResult, release

log = logging.getLogger(__name__)


def write_split(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> dict:
    """Split the lake's history for ``ds`` and persist it; returns what the split is (for MLflow)."""
    s = cfg.ranking.split
    if lake.table_exists(spark, cfg, cfg.tables.listens):
        listens = lake.read_table(spark, cfg, cfg.tables.listens).where(F.col("ds") <= ds)
        cutoff = cutoff_at_quantile(listens, s.time_quantile)
        split = label_split.time_split(listens, cutoff, cfg.evaluation.horizon_days, cfg.ranking, cfg.rewards, ds)
        info = {"split": "global_time", "cutoff": cutoff.isoformat(), "horizon_days": cfg.evaluation.horizon_days}
    else:
        interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
        split = label_split.count_split(interactions, s, cfg.importers.surface, ds).cache()
        completed, saved = split.where(F.col("part") == label_split.LABELLED).approxQuantile(
            "plays", [s.completed_quantile, s.saved_quantile], 0.0) or [1.0, 1.0]
        split = label_split.grade_counts(split, completed, saved, cfg.ranking)
        cutoff = as_of_end(ds)
        info = {"split": "per_user_holdout", "holdout_fraction": s.holdout_fraction, "seed": s.seed,
                "completed_min_plays": completed, "saved_min_plays": saved}
    lake.write_partition(split, cfg, cfg.tables.ranker_split, ds, run_id)
    return {**info, "cutoff_ts": cutoff}


def known_history(spark: SparkSession, cfg: SetlistConfig, ds: str, split: DataFrame, cutoff: dt.datetime):
    """(known interactions, feature events, listens for the candidates or None) before the labels."""
    if lake.table_exists(spark, cfg, cfg.tables.listens):
        listens = lake.read_table(spark, cfg, cfg.tables.listens).where(F.col("ds") <= ds)
        known = label_split.known_listens(listens, cutoff)
        day_before = (cutoff - dt.timedelta(days=1)).date().isoformat()
        return build_interactions(known, day_before, cfg.rewards), known, known
    interactions = label_split.known_interactions(lake.read_table(spark, cfg, cfg.tables.interactions, ds), split)
    return interactions, label_split.pseudo_listens(interactions, cutoff, cfg.importers), None


def labelled_frame(spark: SparkSession, cfg: SetlistConfig, ds: str, cutoff: dt.datetime) -> pd.DataFrame:
    """Features of the known part's candidates + labels, as pandas (groups contiguous, sampled
    to about ``ranking.max_rows_per_day`` rows)."""
    split = lake.read_table(spark, cfg, cfg.tables.ranker_split, ds)
    labels = label_split.labels_of(split).persist(StorageLevel.MEMORY_AND_DISK)
    interactions, events, listens = known_history(spark, cfg, ds, split, cutoff)
    interactions = interactions.persist(StorageLevel.MEMORY_AND_DISK)
    frames: list[DataFrame] = []
    try:
        union, _ = build_candidates(interactions, listens, cfg.candidates, frames)
        union = union.persist(StorageLevel.MEMORY_AND_DISK)
        frames.append(union)
        side = side_frame(spark, cfg, union, interactions, labels)
        framed = with_context(pair_features(union, events, cutoff, cfg, side), labels, cfg.events.surfaces)
        framed = (ranking.with_labels(framed, labels, cfg.ranking)
                  .transform(ranking.cap_groups, cfg.ranking.max_group_size, cfg.candidates.sources)
                  .persist(StorageLevel.MEMORY_AND_DISK))
        frames.append(framed)
        rows = framed.count()
        fraction = min(1.0, cfg.ranking.max_rows_per_day / rows) if rows else 1.0
        return ranking.sort_groups(framed.transform(ranking.sample_groups, fraction, cfg.ranking.seed).toPandas())
    finally:
        for frame in frames:
            frame.unpersist()
        interactions.unpersist()
        labels.unpersist()


def validation_mask(frame: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """True on the rows of a seeded ``share`` of the users (whole users, every surface)."""
    users = pd.Series(frame["user_id"].unique())
    draws = pd.util.hash_pandas_object(users.astype(str) + f":{seed}", index=False).to_numpy()
    chosen = set(users[(draws % 10_000) < share * 10_000])
    return frame["user_id"].isin(chosen).to_numpy()


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> TrainResult:
    """Split, train (with the tuning search), log, register and gate a ranker for ``ds``."""
    info = write_split(spark, cfg, ds, run_id)
    frame = labelled_frame(spark, cfg, ds, info.pop("cutoff_ts"))
    in_valid = validation_mask(frame, cfg.ranking.split.valid_user_share, cfg.ranking.seed)
    train, valid = frame[~in_valid].reset_index(drop=True), frame[in_valid].reset_index(drop=True)
    k = cfg.evaluation.ranking_k
    booster, trials = ranking.tune_ranker(train, valid, feature_columns(cfg), [SURFACE_CODE], cfg.ranking, k)
    extra = {"train_rows": float(len(train)), "valid_rows": float(len(valid)),
             "best_iteration": float(booster.current_iteration()),
             **{f"trial_{i}_ndcg_at_{k}": t["metrics"][f"ndcg_at_{k}"] for i, t in enumerate(trials)}}
    params = {**{f"split.{key}": value for key, value in info.items()},
              **{f"trial_{i}": str(t["params"]) for i, t in enumerate(trials)}}
    log.info("train_on_split %s: %d trials, best %s", ds, len(trials),
             max(trials, key=lambda t: t["metrics"][f"ndcg_at_{k}"])["params"])
    return release(cfg, booster, valid, ds, run_id, extra, params, artifacts={"tuning_trials.json": trials,
                                                                            "ranker_split.json": info})
