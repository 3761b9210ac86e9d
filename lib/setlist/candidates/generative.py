"""The generative source: the champion decoder's next tracks per user, written as semantic IDs by
trie-constrained beam search, so every proposal is a track of the model's catalogue.

Users are decoded from their latest listened plays (``candidates.generative.history_days`` up to
the day), mapped through the model's own semantic IDs: a track it has no ID for is dropped from
the history and counted, never an error. Decoding runs in ``mapInPandas`` over Arrow batches, the
model broadcast once and loaded once per Python worker. The score is the tuple's log-probability.
Tracks the model has an ID for but saw no training play of (cold start) take up to
``cold_share`` of each list, matched to the beam's tracks by code prefix
(``setlist.generative.cold_start``), each with the score of the beam it matched.
Without a champion (before the first ``train_generative``) or without listens the source proposes
nothing and says why.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_SCHEMA
from setlist.config import GenerativeConfig, RewardsConfig
from setlist.generative.histories import known_rows, listened_histories
from setlist.generative.registry import GenerativeModelFiles

SOURCE = "generative"
DECODED_SCHEMA = "user_id string, top_rows array<int>, top_scores array<double>"
_LOADED: dict[str, tuple] = {}


def _model(key: str, architecture: dict, state: bytes, codes: np.ndarray, untrained: np.ndarray,
           prefix_levels: int):
    import torch

    from setlist.generative.cold_start import UnseenIndex
    from setlist.generative.training import load_model
    from setlist.generative.trie import build_trie

    key = f"{key}@{prefix_levels}"
    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: a new version replaces the old one
        torch.set_num_threads(1)  # Spark's task slots are the parallelism
        _LOADED[key] = (load_model(architecture, state), build_trie(codes, architecture["codebook_sizes"]),
                        UnseenIndex(codes, untrained, min(prefix_levels, codes.shape[1])))
    return _LOADED[key]


def _decode_batches(batches: Iterator[pd.DataFrame], blob, cfg: GenerativeConfig) -> Iterator[pd.DataFrame]:
    from setlist.generative.cold_start import mix_unseen
    from setlist.generative.model import beam_search

    key, architecture, state, codes, untrained = blob.value
    model, trie, unseen = _model(key, architecture, state, codes, untrained, cfg.cold_prefix_levels)
    for frame in batches:
        frame = frame[frame["rows"].map(len) > 0]
        if frame.empty:
            continue
        rows, scores = beam_search(model, [np.asarray(r, dtype=np.int64) for r in frame["rows"]], trie,
                                   cfg.beam_size, cfg.top_n, batch_size=cfg.score_batch_users)
        if cfg.cold_share > 0 and len(unseen.rows):
            rows, scores = mix_unseen(rows, scores, unseen, cfg.top_n, cfg.cold_share)
        yield pd.DataFrame({"user_id": frame["user_id"].to_numpy(), "top_rows": list(rows.astype(np.int32)),
                            "top_scores": list(scores.astype(np.float64))})


def decode_users(spark: SparkSession, rows: DataFrame, model: GenerativeModelFiles, cfg: GenerativeConfig) -> DataFrame:
    """(user_id, rows) -> ``DECODED_SCHEMA``: each user's top_n item rows and log-probabilities."""
    blob = spark.sparkContext.broadcast((model.key, model.architecture, model.state, model.codes(),
                                         model.untrained()))
    return rows.select("user_id", "rows").mapInPandas(lambda batches: _decode_batches(batches, blob, cfg),
                                                      DECODED_SCHEMA)


def decoded_candidates(decoded: DataFrame, semantic_ids: DataFrame) -> DataFrame:
    """Decoded users -> candidate rows (user_id, track_id, source, source_score, source_rank)."""
    exploded = decoded.select("user_id", F.posexplode(F.arrays_zip("top_rows", "top_scores")).alias("_pos", "_top"))
    ranked = exploded.select("user_id", F.col("_top.top_rows").alias("item_index"),
                             F.col("_top.top_scores").alias("source_score"),
                             (F.col("_pos") + 1).cast("int").alias("source_rank"))
    return (ranked.where((F.col("item_index") >= 0) & (F.col("source_score") > F.lit(float("-inf"))))
            .join(F.broadcast(semantic_ids.select("track_id", "item_index")), "item_index")
            .select("user_id", "track_id", F.lit(SOURCE).alias("source"), "source_score", "source_rank"))


class GenerativeSource:
    """Built once per candidates run with the champion's files (None before the first promotion)."""

    def __init__(self, spark: SparkSession, model: GenerativeModelFiles | None, listens: DataFrame | None, ds: str,
                 rewards: RewardsConfig, cfg: GenerativeConfig):
        self.spark, self.model, self.listens, self.ds, self.rewards, self.cfg = spark, model, listens, ds, rewards, cfg

    def candidates(self) -> tuple[DataFrame, dict]:
        if self.model is None or self.listens is None:
            why = "no listens (count data)" if self.listens is None else "no champion generative model yet"
            return self.spark.createDataFrame([], CANDIDATE_SCHEMA), {"generative_model": why}
        first = (dt.date.fromisoformat(self.ds) - dt.timedelta(days=self.cfg.history_days - 1)).isoformat()
        recent = self.listens.where((F.col("ds") >= first) & (F.col("ds") <= self.ds))
        ids = self.spark.createDataFrame(
            self.model.semantic_ids[["track_id", "item_index"]].astype({"item_index": "int32"}),
            "track_id string, item_index int")
        histories = known_rows(listened_histories(recent, self.rewards, self.model.architecture["max_items"]), ids)
        counts = histories.agg(F.count(F.lit(1)).alias("users"), F.sum("unknown").alias("unknown")).first()
        info = {"generative_model": self.model.key, "generative_users_decoded": int(counts["users"] or 0),
                "generative_unknown_items": int(counts["unknown"] or 0)}
        return decoded_candidates(decode_users(self.spark, histories, self.model, self.cfg), ids), info
