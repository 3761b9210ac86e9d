"""Train-ranker step: LambdaRank on past days' candidates, logged, registered and gated.

On run date D (``ranking.train_lag_days`` = L): train on the candidates of D - L, stop early on
those of D - L + 1 and evaluate on those of D - L + 2, each day's labels being what users did in
the ``ranking.label_days`` after that day (all of it ingested by D). Features come from the
listens before each day's cutoff only (the end of that day).

The model is logged with its signature and registered as ``tracking.model_name``; the gate
then compares it with the ``champion`` on the same evaluation frame and moves the alias only
when it is at least as good within ``ranking.gate_tolerance``. A refusal is logged (run tag
``gate_decision=refused``, metric ``gate_promoted=0``) and returned, not raised: the daily
run goes on publishing with the champion; ``jobs/train_ranker.py`` prints it and exits 0
(3 with ``--fail-on-refusal``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import lightgbm as lgb
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist import lake, ranking, tracking
from setlist.config import SetlistConfig
from setlist.errors import GateRefused, SetlistError
from setlist.features import SURFACE_CODE, feature_columns, pair_features, with_context
from setlist.interactions import as_of_end
from setlist.pipeline.candidates import flatten
from setlist.surface_models import fit_per_surface

log = logging.getLogger(__name__)

PROMOTED, REFUSED, SKIPPED = "promoted", "refused", "skipped"
BASELINES = {"als_order": "als_score", "popularity_order": "popularity_score"}
FINGERPRINT = "frame_fingerprint"


@dataclass(frozen=True)
class TrainResult:
    status: str
    message: str
    version: int | None = None
    champion_version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def split_days(ds: str, lag_days: int) -> dict[str, str]:
    """{"train": D - lag, "valid": D - lag + 1, "eval": D - lag + 2}."""
    first = dt.date.fromisoformat(ds) - dt.timedelta(days=lag_days)
    return {name: (first + dt.timedelta(days=i)).isoformat() for i, name in enumerate(["train", "valid", "eval"])}


def listens_around(spark: SparkSession, cfg: SetlistConfig, day: str) -> DataFrame:
    """Listens of the feature history before ``day``'s cutoff and of its label window (pruned by ds)."""
    cutoff = as_of_end(day)
    first = (cutoff - dt.timedelta(days=cfg.features.history_days + 1)).date().isoformat()
    last = (cutoff + dt.timedelta(days=cfg.ranking.label_days)).date().isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    return listens.where((F.col("ds") >= first) & (F.col("ds") <= last))


def labelled_day(candidates: DataFrame, listens: DataFrame, day: str, cfg: SetlistConfig) -> DataFrame:
    """Features + label per (user, surface, candidate) of ``day``, for the (user, surface)
    pairs with an event in the label window, capped at ``ranking.max_group_size`` per group."""
    cutoff = as_of_end(day)
    labels = ranking.surface_labels(ranking.graded_labels(listens, cutoff, cfg.ranking, cfg.rewards), cfg.ranking)
    pairs = pair_features(candidates, listens, cutoff, cfg)
    framed = with_context(pairs, labels, cfg.events.surfaces)
    # What publish leaves out on a discovery surface is not a candidate there in training either.
    excluding = [s for s in cfg.events.surfaces if cfg.publish.excludes_played(s)]
    if excluding:
        framed = framed.where(~(F.col("surface").isin(excluding) & (F.col("ut_plays") > 0)))
    return (ranking.with_labels(framed, labels, cfg.ranking)
            .transform(ranking.cap_groups, cfg.ranking.max_group_size, cfg.candidates.sources))


def frame_fingerprint(cfg: SetlistConfig, candidates_version: int | None) -> str:
    """What a day's labelled frame depends on: the config that shapes features, labels and
    sampling, and the commit that last wrote that day's candidates."""
    shaping = {"features": cfg.features.model_dump(), "ranking": cfg.ranking.model_dump(),
               "rewards": cfg.rewards.model_dump(), "sources": cfg.candidates.sources,
               "surfaces": cfg.events.surfaces, "candidates_version": candidates_version}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:32]


def day_frame(spark: SparkSession, cfg: SetlistConfig, day: str, run_id: str = "train") -> pd.DataFrame:
    """``labelled_day`` of ``day`` as pandas: at most about ``ranking.max_rows_per_day`` rows
    (whole groups, a seeded hash sample), groups contiguous.

    Each day's frame is kept in ``ranker_frames``: tomorrow's training reuses today's valid and
    eval days as its train and valid days, so a daily retrain builds one new frame, not three.
    A kept frame is used only while its fingerprint (config and candidates commit) still holds.
    """
    fingerprint = frame_fingerprint(cfg, lake.partition_version(spark, cfg, cfg.tables.candidates, day))
    table = cfg.tables.ranker_frames
    if lake.table_exists(spark, cfg, table):
        kept = lake.read_table(spark, cfg, table, day)
        if kept.where(F.col(FINGERPRINT) == fingerprint).limit(1).count():
            return ranking.sort_groups(kept.drop(FINGERPRINT, "ds").toPandas())
    listens = listens_around(spark, cfg, day).persist(StorageLevel.MEMORY_AND_DISK)
    candidates = lake.read_table(spark, cfg, cfg.tables.candidates, day)
    frame = labelled_day(candidates, listens, day, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = frame.count()
        fraction = min(1.0, cfg.ranking.max_rows_per_day / rows) if rows else 1.0
        sampled = frame.transform(ranking.sample_groups, fraction, cfg.ranking.seed)
        lake.write_partition(sampled.withColumn(FINGERPRINT, F.lit(fingerprint)).withColumn("ds", F.lit(day)),
                             cfg, table, day, f"{run_id}-{fingerprint[:8]}", add_columns=True)
    finally:
        frame.unpersist()
        listens.unpersist()
    return ranking.sort_groups(lake.read_table(spark, cfg, table, day).drop(FINGERPRINT, "ds").toPandas())


def day_frames(spark: SparkSession, cfg: SetlistConfig, days: dict[str, str],
               run_id: str = "train") -> dict[str, pd.DataFrame]:
    return {name: day_frame(spark, cfg, day, run_id) for name, day in days.items()}


def missing_inputs(spark: SparkSession, cfg: SetlistConfig, days: dict[str, str]) -> list[str]:
    """``table ds=...`` for each input partition the step needs that is not in the lake."""
    needed = [(cfg.tables.candidates, day) for day in days.values()]
    label_end = (dt.date.fromisoformat(days["eval"]) + dt.timedelta(days=cfg.ranking.label_days)).isoformat()
    needed.append((cfg.tables.listens, label_end))
    missing = []
    for table, day in needed:
        if not lake.table_exists(spark, cfg, table) or lake.read_table(spark, cfg, table, day).limit(1).count() == 0:
            missing.append(f"{table} ds={day}")
    return missing


def evaluate(booster: lgb.Booster, frame: pd.DataFrame, cfg: SetlistConfig) -> dict[str, float]:
    """The ranker's and the baselines' metrics on ``frame``, prefixed ``ranker_``, ``als_order_``..."""
    k = cfg.evaluation.ranking_k
    metrics = {f"ranker_{m}": v for m, v in
               ranking.ranking_metrics(frame, ranking.predict(booster, frame), k, cfg.ranking).items()}
    for name, column in BASELINES.items():
        if column in frame.columns:
            metrics.update({f"{name}_{m}": v for m, v in
                            ranking.ranking_metrics(frame, frame[column], k, cfg.ranking).items()})
    return metrics


def release(cfg: SetlistConfig, booster: lgb.Booster, eval_frame: pd.DataFrame, ds: str, run_id: str,
            extra_metrics: dict[str, float] | None = None, params: dict | None = None,
            artifacts: dict[str, object] | None = None) -> TrainResult:
    """Log and register ``booster``, then gate it against the champion on ``eval_frame``.

    ``artifacts``: file name -> JSON-able value, logged with the run (e.g. the tuning trials)."""
    k = cfg.evaluation.ranking_k
    ndcg = f"ndcg_at_{k}"
    metrics = {**evaluate(booster, eval_frame, cfg), **(extra_metrics or {})}
    tags = {"ds": ds, "run_id": run_id, "step": "train_ranker"}
    with tracking.start_run(cfg, f"train_ranker-{ds}", tags):
        tracking.log_params({**flatten(cfg.ranking.model_dump(), "ranking."),
                             **flatten(cfg.features.model_dump(), "features."), **(params or {})})
        tracking.log_figure(ranking.importance_figure(booster), "feature_importance.png")
        tracking.log_dict(ranking.feature_importance(booster), "feature_importance.json")
        for name, value in (artifacts or {}).items():
            tracking.log_dict(value, name)
        version = tracking.log_ranker(cfg, booster, eval_frame[booster.feature_name()].head(5))
        champion = tracking.champion_version(cfg)
        champion_metric = None
        if champion is not None:
            champion_model = tracking.load_ranker(cfg, champion)
            champion_metric = ranking.ranking_metrics(eval_frame, ranking.predict(champion_model, eval_frame),
                                                      k, cfg.ranking)[ndcg]
            metrics[f"champion_{ndcg}"] = champion_metric
        try:
            decision = ranking.gate(metrics[f"ranker_{ndcg}"], champion_metric, cfg.ranking.gate_tolerance, ndcg)
            tracking.set_champion(cfg, version)
            status, message, new_champion = PROMOTED, f"version {version}: {decision.message}", version
            log.info("train_ranker %s: %s", ds, message)
        except GateRefused as exc:
            status, message, new_champion = REFUSED, f"version {version} vs champion {champion}: {exc}", champion
            log.warning("train_ranker %s: %s", ds, message)
        metrics["gate_promoted"] = 1.0 if status == PROMOTED else 0.0
        tracking.log_metrics(metrics)
        tracking.set_tags({"gate_decision": status, "gate_message": message, "model_version": version,
                           "champion_version": new_champion})
    return TrainResult(status, message, version, new_champion, metrics)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> TrainResult:
    """Train, log, register and gate a ranker for run date ``ds`` (see the module doc).

    Skips (status ``skipped``, nothing logged) when an input day is not in the lake yet,
    e.g. the first days of a fresh lake.
    """
    days = split_days(ds, cfg.ranking.train_lag_days)
    missing = missing_inputs(spark, cfg, days)
    if missing:
        message = f"not enough history for {days}: missing {', '.join(missing)}"
        log.info("train_ranker %s skipped: %s", ds, message)
        return TrainResult(SKIPPED, message)
    frames = day_frames(spark, cfg, days, run_id)
    started = time.perf_counter()
    booster, layout_metrics = fit_layouts(frames, cfg)
    seconds = time.perf_counter() - started
    extra = {"train_seconds": seconds, "best_iteration": float(booster.current_iteration()),
             **{f"{name}_rows": float(len(frame)) for name, frame in frames.items()}, **layout_metrics}
    params = {**{f"{name}_ds": day for name, day in days.items()},
              "ranking.layout_chosen": LAYOUTS[int(layout_metrics["layout_chosen"])]}
    return release(cfg, booster, frames["eval"], ds, run_id, extra, params)


LAYOUTS = ("shared", "per_surface")


def surface_metrics(booster: lgb.Booster, frame: pd.DataFrame, cfg: SetlistConfig, prefix: str) -> dict[str, float]:
    """``{prefix}{surface}_ndcg_at_k`` on each publishing surface's groups of ``frame`` that have one."""
    k = cfg.evaluation.ranking_k
    out = {}
    for surface in cfg.publish.surfaces:
        own = frame[frame["surface"] == surface]
        if len(own) and (ranking.relevance(own[ranking.LABEL], cfg.ranking) > 0).any():
            scores = ranking.predict(booster, own)
            out[f"{prefix}{surface}_ndcg_at_{k}"] = ranking.ranking_metrics(own, scores, k, cfg.ranking)[f"ndcg_at_{k}"]
    return out


def fit_layouts(frames: dict[str, pd.DataFrame], cfg: SetlistConfig,
                features: list[str] | None = None) -> tuple[lgb.Booster, dict[str, float]]:
    """The ranker of ``ranking.layout``: one model with the surface as a feature, one model per
    publishing surface (``setlist.surface_models``), or with ``auto`` both, keeping the one with
    the better mean NDCG@k over the publishing surfaces of the valid day. Both layouts' per-surface
    NDCG on the valid and eval days are returned as metrics (``layout_<layout>_<day>_<surface>_...``)."""
    k, layout = cfg.evaluation.ranking_k, cfg.ranking.layout
    features = features or feature_columns(cfg)
    fitted = {}
    if layout in ("auto", "shared"):
        fitted["shared"] = ranking.fit_ranker(frames["train"], frames["valid"], features, [SURFACE_CODE],
                                              cfg.ranking, k)
    if layout in ("auto", "per_surface"):
        codes = {s: cfg.events.surfaces.index(s) for s in cfg.publish.surfaces}
        try:
            fitted["per_surface"] = fit_per_surface(frames["train"], frames["valid"], features, codes,
                                                    SURFACE_CODE, cfg.ranking, k)
        except SetlistError as exc:
            if layout == "per_surface":
                raise
            log.info("train_ranker: no per-surface layout (%s); the shared model is the only one", exc)
    metrics: dict[str, float] = {}
    for name, booster in fitted.items():
        for day in ("valid", "eval"):
            metrics.update(surface_metrics(booster, frames[day], cfg, f"layout_{name}_{day}_"))

    def valid_mean(name: str) -> float:
        values = [v for key, v in metrics.items() if key.startswith(f"layout_{name}_valid_")]
        return sum(values) / len(values) if values else float("-inf")

    chosen = max(fitted, key=valid_mean)
    metrics["layout_chosen"] = float(LAYOUTS.index(chosen))
    log.info("train_ranker layouts on the valid day: %s; chosen %s",
             {name: round(valid_mean(name), 4) for name in fitted}, chosen)
    return fitted[chosen], metrics
