"""train_sequential step: the day's play sequences -> a trained, registered and gated transformer.

1. Sequences (``setlist.sequential.sequences``) of the ``history_days`` up to ``ds``, numbered
   by a vocabulary of the tracks played in them. Users with fewer than ``min_sequence_items``
   plays are left out of training (counted and logged; the other sources still serve them).
2. The last listened play of ``validation_users`` users (a seeded hash) is held out; the rest
   is written as training shards, the ``sequences`` Delta table (partition ``ds``).
3. ``TorchDistributor`` runs ``fit`` on the shards; every epoch's loss, time and validation
   HR/NDCG go to the MLflow run (step = epoch).
4. The model, its architecture and vocabulary are registered as ``candidates.sequential.model_name``.
   The gate evaluates the champion on the same held-out plays (through its own vocabulary:
   a track it never saw ranks last) and moves the ``champion`` alias only to a model at least
   as good, within ``gate_tolerance``.

With ``item_attributes`` each track's artist (its latest play's) is the model's item attribute.
"""
from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.config import SetlistConfig
from setlist.pipeline.model_gate import decide
from setlist.pipeline.train_ranker import SKIPPED, TrainResult
from setlist.sequential.registry import champion_files, register
from setlist.sequential.sequences import holdout_users, item_vocabulary, play_sequences, without_last_play

log = logging.getLogger(__name__)
SHARD_COLUMNS = ["user_id", "items", "surfaces", "outcomes", "gaps", "plays"]


def _validation(rows, index_of, max_len: int) -> dict:
    """Held-out rows (track_ids, surfaces, outcomes, gaps) -> a validation set for a model whose
    vocabulary is ``index_of`` (track_id -> index; unknown tracks -> the reserved index)."""
    from setlist.sequential.codes import UNKNOWN
    from setlist.sequential.training import validation_set

    records = []
    for row in rows:
        items = [index_of.get(t, UNKNOWN) for t in row["track_ids"]]
        records.append((items[:-1], row["surfaces"][:-1], row["outcomes"][:-1], row["gaps"][:-1], items[-1]))
    return validation_set(records, max_len)


def artist_pairs(listens, vocabulary, num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """(item index, artist number) of every vocabulary track with an artist: the model's item attributes."""
    from setlist.generative.histories import track_content
    from setlist.sequential.public import attribute_pairs

    artists = (track_content(listens).join(vocabulary, "track_id").where(F.col("artist_id").isNotNull())
               .select("item_index", "artist_id").toPandas())
    by_item = {int(item): [artist] for item, artist in zip(artists["item_index"], artists["artist_id"])}
    return attribute_pairs(by_item, num_items)


def _evaluate(files, rows) -> dict[str, float]:
    from setlist.sequential.training import evaluate, load_model

    model = load_model(files.architecture, files.state)
    index_of = dict(zip(files.vocabulary["track_id"], files.vocabulary["item_index"].astype(int)))
    return evaluate(model, _validation(rows, index_of, files.architecture["max_len"]), exclude_seen=False)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> TrainResult:
    from setlist.sequential.distributed import launch_fit

    seq = cfg.candidates.sequential
    first = (dt.date.fromisoformat(ds) - dt.timedelta(days=seq.history_days - 1)).isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens).where((F.col("ds") >= first) & (F.col("ds") <= ds))
    vocabulary = item_vocabulary(listens).persist(StorageLevel.MEMORY_AND_DISK)
    sequences = play_sequences(listens, vocabulary, cfg.events.surfaces, cfg.rewards, seq.max_len + 1)
    sequences = sequences.persist(StorageLevel.MEMORY_AND_DISK)
    held = None
    try:
        counts = sequences.agg(F.count(F.lit(1)).alias("users"),
                               F.sum((F.col("plays") < seq.min_sequence_items).cast("int")).alias("short")).first()
        users, short = int(counts["users"]), int(counts["short"] or 0)
        if short:
            log.info("train_sequential %s: %d of %d users have fewer than %d plays; not trained on",
                     ds, short, users, seq.min_sequence_items)
        trainable = sequences.where(F.col("plays") >= seq.min_sequence_items)
        held = holdout_users(trainable, seq.validation_users, seq.seed).persist(StorageLevel.MEMORY_AND_DISK)
        rows = trainable.join(held, "user_id").select("track_ids", "surfaces", "outcomes", "gaps").collect()
        if users - short == 0 or not rows:
            message = f"no trainable sequences in {first}..{ds} ({users} users, {short} too short)"
            log.info("train_sequential %s skipped: %s", ds, message)
            return TrainResult(SKIPPED, message)
        # Users hashed to shards and sorted in them, shards ordered by their first user: a rerun of
        # the day trains on the same stream, so the same seed gives the same model.
        shards = (without_last_play(trainable, held).select(*SHARD_COLUMNS).withColumn("ds", F.lit(ds))
                  .repartition(seq.shards, "user_id").sortWithinPartitions("user_id"))
        lake.write_partition(shards, cfg, cfg.tables.sequences, ds, run_id)
        written = lake.read_table(spark, cfg, cfg.tables.sequences, ds)
        first_users = (written.groupBy(F.input_file_name().alias("file")).agg(F.min("user_id").alias("first"))
                       .orderBy("first").collect())
        files = [row["file"] for row in first_users]
        vocabulary_pdf = vocabulary.toPandas()
        num_items = int(vocabulary_pdf["item_index"].max()) + 1
        index_of = dict(zip(vocabulary_pdf["track_id"], vocabulary_pdf["item_index"].astype(int)))
        validation = _validation(rows, index_of, seq.max_len)
        attributes = artist_pairs(listens, vocabulary, num_items) if seq.item_attributes else None
        settings = seq.model_dump()
        with tracking.start_run(cfg, f"train_sequential-{ds}", {"ds": ds, "run_id": run_id,
                                                                "step": "train_sequential"}):
            tracking.log_params({f"sequential.{k}": v for k, v in settings.items()})
            started = time.perf_counter()
            result = launch_fit(spark, files, settings, num_items, len(cfg.events.surfaces), validation,
                                item_attributes=attributes)
            seconds = time.perf_counter() - started
            for row in result["epochs"]:
                tracking.log_metrics({f"epoch_{k.replace('@', '_at_')}": v for k, v in row.items() if k != "epoch"},
                                     step=row["epoch"])
            best = next(r for r in result["epochs"] if r["epoch"] == result["best_epoch"])
            new_ndcg = best["val_ndcg@10"]
            version = register(cfg, result["architecture"], result["state"], vocabulary_pdf, settings)
            champion = champion_files(cfg)
            champion_ndcg = float("nan") if champion is None else _evaluate(champion, rows)["ndcg@10"]
            metrics = {"train_seconds": seconds, "epochs_run": len(result["epochs"]),
                       "seconds_per_epoch": float(np.mean([r["seconds"] for r in result["epochs"]])),
                       "best_epoch": result["best_epoch"], "users": users, "users_too_short": short,
                       "validation_users": len(rows), "catalogue": num_items - 2,
                       "val_ndcg_at_10": new_ndcg, "val_hr_at_10": best["val_hr@10"],
                       "champion_val_ndcg_at_10": champion_ndcg}
            tracking.log_metrics({k: v for k, v in metrics.items() if not np.isnan(v)})
            status, new_champion, message = decide(cfg, seq.model_name, version, new_ndcg,
                                               None if champion is None else champion.key, champion_ndcg,
                                               seq.gate_tolerance)
        log.info("train_sequential %s: %s", ds, message)
        return TrainResult(status, message, version, new_champion, metrics)
    finally:
        if held is not None:
            held.unpersist()
        sequences.unpersist()
        vocabulary.unpersist()
