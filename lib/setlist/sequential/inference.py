"""Batch inference of the sequential model in Spark.

:func:`score_sequences` runs the model over sequence records in Arrow batches
(``mapInPandas``): each Python worker loads the broadcast model once and keeps it for every
later task (``_LOADED``, keyed by ``name/version``), one thread per task so Spark's task slots
are the parallelism. Per user it returns the state after their latest play and the top-N
items by score. :func:`pair_scores` scores any (user, track) rows (the whole candidate union)
from those states and the model's item vectors, as a Spark join: no per-pair Python.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.sequential.artifacts import SequentialModelFiles

SCORED_SCHEMA = "user_id string, state array<float>, top_items array<int>, top_scores array<float>"
_LOADED: dict[str, object] = {}


def _model(key: str, architecture: dict, state: bytes):
    import torch

    from setlist.sequential.training import load_model

    if key not in _LOADED:
        _LOADED.clear()  # one model per worker: a new version replaces the old one
        torch.set_num_threads(1)
        _LOADED[key] = load_model(architecture, state)
    return _LOADED[key]


def _score_batches(batches: Iterator[pd.DataFrame], blob, top_n: int, exclude_played: bool,
                   batch_users: int) -> Iterator[pd.DataFrame]:
    import torch

    from setlist.sequential.data import model_input

    key, architecture, state = blob.value
    model = _model(key, architecture, state)
    top = min(top_n, architecture["num_items"] - 2)
    for frame in batches:
        for start in range(0, len(frame), batch_users):
            part = frame.iloc[start:start + batch_users]
            rows = [model_input(*record, architecture["max_len"]) for record in
                    zip(part["items"], part["surfaces"], part["outcomes"], part["gaps"])]
            batch = {name: torch.as_tensor(np.stack([row[name] for row in rows])) for name in rows[0]}
            with torch.no_grad():
                states = model.last_state(batch)
                scores = model.catalogue_scores(states)
                if exclude_played:
                    for row, items in enumerate(part["items"]):
                        scores[row, torch.as_tensor(np.asarray(items, dtype=np.int64))] = float("-inf")
                best = torch.topk(scores, top, dim=1)
            yield pd.DataFrame({"user_id": part["user_id"].to_numpy(),
                                "state": list(states.numpy().astype(np.float32)),
                                "top_items": list(best.indices.numpy().astype(np.int32)),
                                "top_scores": list(best.values.numpy().astype(np.float32))})


def score_sequences(spark: SparkSession, sequences: DataFrame, model: SequentialModelFiles, top_n: int,
                    exclude_played: bool, batch_users: int) -> DataFrame:
    """Sequence records (user_id, items, surfaces, outcomes, gaps) -> ``SCORED_SCHEMA`` rows."""
    blob = spark.sparkContext.broadcast((model.key, model.architecture, model.state))
    columns = sequences.select("user_id", "items", "surfaces", "outcomes", "gaps")
    return columns.mapInPandas(lambda batches: _score_batches(batches, blob, top_n, exclude_played, batch_users),
                               SCORED_SCHEMA)


def top_items(scored: DataFrame, vocabulary: DataFrame, source: str) -> DataFrame:
    """Scored users -> candidate rows (user_id, track_id, source, source_score, source_rank)."""
    exploded = scored.select("user_id", F.posexplode(F.arrays_zip("top_items", "top_scores")).alias("_pos", "_top"))
    ranked = exploded.select("user_id", F.col("_top.top_items").alias("item_index"),
                             F.col("_top.top_scores").cast("double").alias("source_score"),
                             (F.col("_pos") + 1).cast("int").alias("source_rank"))
    return (ranked.join(F.broadcast(vocabulary), "item_index")
            .where(F.col("source_score") > F.lit(float("-inf")))
            .select("user_id", "track_id", F.lit(source).alias("source"), "source_score", "source_rank"))


def item_vectors(spark: SparkSession, model: SequentialModelFiles) -> DataFrame:
    """(track_id, vector array<float>): the model's output embedding of each vocabulary track."""
    import torch

    from setlist.sequential.training import load_model

    with torch.no_grad():
        weights = load_model(model.architecture, model.state).item_table().numpy().astype(np.float32)
    vocabulary = model.vocabulary
    frame = pd.DataFrame({"track_id": vocabulary["track_id"].to_numpy(),
                          "vector": list(weights[vocabulary["item_index"].to_numpy()])})
    return spark.createDataFrame(frame, "track_id string, vector array<float>")


def pair_scores(pairs: DataFrame, scored: DataFrame, vectors: DataFrame, column: str) -> DataFrame:
    """``pairs`` (user_id, track_id, ...) with ``column`` = the model's score of the track after the
    user's latest play (null where the model knows neither)."""
    dot = F.aggregate(F.zip_with("state", "vector", lambda a, b: a * b), F.lit(0.0).cast("double"),
                      lambda acc, x: acc + x)
    return (pairs.join(scored.select("user_id", "state"), "user_id", "left")
            .join(vectors, "track_id", "left")
            .withColumn(column, F.when(F.col("state").isNotNull() & F.col("vector").isNotNull(), dot))
            .drop("state", "vector"))


def vocabulary_frame(spark: SparkSession, model: SequentialModelFiles) -> DataFrame:
    return spark.createDataFrame(model.vocabulary[["track_id", "item_index"]].astype({"item_index": "int32"}),
                                 "track_id string, item_index int")

