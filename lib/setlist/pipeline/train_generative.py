"""train_generative step: the day's listening -> semantic IDs and a trained, registered, gated decoder.

1. Histories (``setlist.generative.histories``): each user's latest ``history_plays`` listened
   plays of the ``history_days`` up to ``ds``; users with fewer than ``min_sequence_items`` are
   not trained on (counted). The catalogue is every track played in the window, its artist as
   content.
2. Semantic IDs (``setlist.generative.semantic_ids``): each track's artist (TF-IDF + SVD) next
   to a truncated SVD of its plays, quantised by residual k-means into ``levels`` codes plus a
   disambiguation code. Written to the ``semantic_ids`` table (partition ``ds``: the day's version).
3. The last listened play of ``validation_users`` users (seeded) is held out; ``fit`` trains the
   decoder on the rest in-process (histories and the catalogue are collected to the driver: the
   source is experimental and sized for one machine), every epoch's figures go to MLflow.
4. The model and its IDs are registered as ``candidates.generative.model_name``; the gate ranks
   the same held-out plays with the champion (through its own IDs: a track it has no ID for is a
   miss) and moves the ``champion`` alias only to a model at least as good (``gate_tolerance``).
"""
from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.config import GenerativeConfig, SetlistConfig
from setlist.generative.histories import listened_histories, track_content
from setlist.pipeline.model_gate import decide
from setlist.pipeline.train_ranker import SKIPPED, TrainResult

log = logging.getLogger(__name__)
MISSING_TARGET = -2  # a held-out track the champion has no ID for: never in a beam's list


def semantic_ids(catalogue: pd.DataFrame, train: list[np.ndarray], gen: GenerativeConfig):
    """Catalogue (track_id, artist_id; row = item) and training rows -> (SemanticIds, content fallbacks)."""
    from setlist.generative.semantic_ids import item_embeddings, residual_quantise

    rows = np.arange(len(catalogue))
    artists = {row: [artist] for row, artist in enumerate(catalogue["artist_id"]) if isinstance(artist, str)}
    embedding, fallbacks = item_embeddings(artists, train, rows, gen.embedding_dim, seed=gen.seed)
    return residual_quantise(embedding, rows, gen.levels, gen.codebook_size, seed=gen.seed), fallbacks


def held_out_users(lengths: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Positions of up to ``count`` users with at least 3 plays, a seeded choice: the same users
    for every model of a day (the gate compares like with like)."""
    eligible = np.flatnonzero(lengths >= 3)
    order = np.random.default_rng(seed).permutation(len(eligible))
    return np.sort(eligible[order[:count]])


def champion_metrics(champion, histories: list[list[str]], targets: list[str], gen: GenerativeConfig) -> dict:
    from setlist.generative.training import evaluate, load_model
    from setlist.generative.trie import build_trie

    model = load_model(champion.architecture, champion.state)
    row_of = dict(zip(champion.semantic_ids["track_id"], champion.semantic_ids["item_index"].astype(int)))
    rows = [[row_of[t] for t in history if t in row_of] for history in histories]
    wanted = [row_of.get(t, MISSING_TARGET) for t in targets]
    codes = champion.codes()
    trie = build_trie(codes, champion.architecture["codebook_sizes"])
    return evaluate(model, trie, rows, wanted, gen.beam_size)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> TrainResult:
    from setlist.generative.registry import champion_files, register
    from setlist.generative.training import fit
    from setlist.sequential.training import pick_device

    gen = cfg.candidates.generative
    first = (dt.date.fromisoformat(ds) - dt.timedelta(days=gen.history_days - 1)).isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens).where((F.col("ds") >= first) & (F.col("ds") <= ds))
    catalogue = track_content(listens).toPandas().sort_values("track_id", ignore_index=True)
    histories = listened_histories(listens, cfg.rewards, gen.history_plays).toPandas().sort_values(
        "user_id", ignore_index=True)
    lengths = histories["plays"].to_numpy() if len(histories) else np.zeros(0, dtype=int)
    short = int((lengths < gen.min_sequence_items).sum())
    if short:
        log.info("train_generative %s: %d of %d users have fewer than %d listened plays; not trained on",
                 ds, short, len(histories), gen.min_sequence_items)
    held = held_out_users(lengths, gen.validation_users, gen.seed)
    if len(histories) - short == 0 or not len(held):
        message = f"no trainable histories in {first}..{ds} ({len(histories)} users, {short} too short)"
        log.info("train_generative %s skipped: %s", ds, message)
        return TrainResult(SKIPPED, message)
    row_of = {track: row for row, track in enumerate(catalogue["track_id"])}
    sequences = [np.asarray([row_of[t] for t in tracks], dtype=np.int64) for tracks in histories["track_ids"]]
    is_held = np.zeros(len(sequences), dtype=bool)
    is_held[held] = True
    train = [s[:-1] if h else s for s, h in zip(sequences, is_held)]
    train = [s for s in train if len(s) >= gen.min_sequence_items]
    ids, fallbacks = semantic_ids(catalogue, train, gen)
    table = pd.DataFrame({"track_id": catalogue["track_id"], "item_index": np.arange(len(catalogue), dtype=np.int32),
                          "artist_id": catalogue["artist_id"], "codes": [list(map(int, c)) for c in ids.codes]})
    frame = spark.createDataFrame(table, "track_id string, item_index int, artist_id string, codes array<int>")
    lake.write_partition(frame.withColumn("ds", F.lit(ds)), cfg, cfg.tables.semantic_ids, ds, run_id)
    validation = {"histories": [sequences[i][:-1] for i in held], "targets": [int(sequences[i][-1]) for i in held]}
    settings = {**gen.model_dump(), "device": str(pick_device(gen.device))}
    with tracking.start_run(cfg, f"train_generative-{ds}", {"ds": ds, "run_id": run_id, "step": "train_generative"}):
        tracking.log_params({f"generative.{k}": v for k, v in gen.model_dump().items()})
        started = time.perf_counter()
        result = fit(train, ids, settings, validation)
        seconds = time.perf_counter() - started
        for row in result["epochs"]:
            tracking.log_metrics({f"epoch_{k.replace('@', '_at_')}": v for k, v in row.items() if k != "epoch"},
                                 step=row["epoch"])
        best = next(r for r in result["epochs"] if r["epoch"] == result["best_epoch"])
        new_ndcg = best["val_ndcg@10"]
        table["trained"] = np.isin(table["item_index"], np.concatenate(train))
        version = register(cfg, result["architecture"], result["state"],
                           table[["track_id", "item_index", "codes", "trained"]], settings)
        champion = champion_files(cfg)
        held_tracks = [list(histories["track_ids"][i]) for i in held]
        champion_ndcg = (float("nan") if champion is None else
                         champion_metrics(champion, [h[:-1] for h in held_tracks], [h[-1] for h in held_tracks],
                                          gen)["ndcg@10"])
        metrics = {"train_seconds": seconds, "epochs_run": len(result["epochs"]), "best_epoch": result["best_epoch"],
                   "users": len(histories), "users_too_short": short, "validation_users": len(held),
                   "catalogue": len(catalogue), "semantic_id_collisions": ids.collisions,
                   "content_fallbacks": fallbacks, "untrained_tracks": int((~table["trained"]).sum()),
                   "val_ndcg_at_10": new_ndcg, "val_hr_at_10": best["val_hr@10"],
                   "champion_val_ndcg_at_10": champion_ndcg}
        tracking.log_metrics({k: v for k, v in metrics.items() if not np.isnan(v)})
        status, new_champion, message = decide(cfg, gen.model_name, version, new_ndcg,
                                               None if champion is None else champion.key, champion_ndcg,
                                               gen.gate_tolerance)
    log.info("train_generative %s: %s", ds, message)
    return TrainResult(status, message, version, new_champion, metrics)
