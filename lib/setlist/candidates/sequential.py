"""The sequential source: the champion transformer's next tracks per user, and its score of
every candidate of the union (``sequential_score``, a ranker feature for tracks other sources
proposed too).

Users are scored from their latest plays (``candidates.sequential.history_days`` up to the day,
mapped through the model's own vocabulary: a track it does not know becomes the reserved
unknown index and is counted, never an error). Without a champion model (before the first
``train_sequential``) or without listens (count data) the source proposes nothing and says why.
"""
from __future__ import annotations

import datetime as dt

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_SCHEMA
from setlist.config import RewardsConfig, SequentialConfig
from setlist.sequential.artifacts import SequentialModelFiles
from setlist.sequential.inference import item_vectors, pair_scores, score_sequences, top_items, vocabulary_frame
from setlist.sequential.sequences import play_sequences

SOURCE = "sequential"


def history_window(listens: DataFrame, ds: str, history_days: int) -> DataFrame:
    first = dt.date.fromisoformat(ds) - dt.timedelta(days=history_days - 1)
    return listens.where((F.col("ds") >= first.isoformat()) & (F.col("ds") <= ds))


class SequentialSource:
    """Built once per candidates run; ``candidates()`` first, then ``with_scores(union)``."""

    def __init__(self, spark: SparkSession, model: SequentialModelFiles | None, listens: DataFrame | None, ds: str,
                 surfaces: list[str], rewards: RewardsConfig, cfg: SequentialConfig):
        self.spark, self.model, self.listens, self.ds = spark, model, listens, ds
        self.surfaces, self.rewards, self.cfg = surfaces, rewards, cfg
        self.scored: DataFrame | None = None

    def candidates(self) -> tuple[DataFrame, dict]:
        if self.model is None or self.listens is None:
            why = "no listens (count data)" if self.listens is None else "no champion sequential model yet"
            return self.spark.createDataFrame([], CANDIDATE_SCHEMA), {"sequential_model": why}
        vocabulary = vocabulary_frame(self.spark, self.model)
        recent = history_window(self.listens, self.ds, self.cfg.history_days)
        sequences = play_sequences(recent, vocabulary, self.surfaces, self.rewards, self.cfg.max_len)
        self.scored = score_sequences(self.spark, sequences, self.model, self.cfg.top_n, self.cfg.exclude_played,
                                      self.cfg.score_batch_users).persist(StorageLevel.MEMORY_AND_DISK)
        counts = sequences.agg(F.count(F.lit(1)).alias("users"), F.sum("unknown_items").alias("unknown"),
                               F.sum("plays").alias("plays")).first()
        info = {"sequential_model": self.model.key, "sequential_users_scored": int(counts["users"] or 0),
                "sequential_unknown_items": int(counts["unknown"] or 0),
                "sequential_plays_scored": int(counts["plays"] or 0)}
        return top_items(self.scored, vocabulary, SOURCE), info

    def with_scores(self, union: DataFrame) -> DataFrame:
        """The union with ``sequential_score`` filled for every row the model can score."""
        if self.scored is None:
            return union
        scored = pair_scores(union, self.scored, item_vectors(self.spark, self.model), "_pair_score")
        return (scored.withColumn(f"{SOURCE}_score", F.coalesce(f"{SOURCE}_score", "_pair_score"))
                .drop("_pair_score").select(*union.columns))

    def release(self) -> None:
        if self.scored is not None:
            self.scored.unpersist()
