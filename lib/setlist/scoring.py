"""Publish scoring in Spark: the ranker over each candidate's features, in Arrow batches.

An Arrow UDF over the feature columns only (Spark keeps the keys in the JVM); the model, compiled
to native code by lleaves (``compile_ranker``) or LightGBM's own, is loaded once per Python worker.
Scores equal LightGBM's ``predict`` (``tests/test_publish_parity.py``).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.functions import arrow_udf

# Scorers built in this Python worker, by model fingerprint: Spark reuses its Python workers
# across tasks (spark.python.worker.reuse), so each worker loads a model once.
_WORKER_SCORERS: dict[str, object] = {}


def model_key(model_text: str) -> str:
    return hashlib.sha256(model_text.encode()).hexdigest()[:24]


def _worker_scorer(key: str, build):
    if key not in _WORKER_SCORERS:
        _WORKER_SCORERS.clear()  # one model at a time: a worker never holds old versions
        _WORKER_SCORERS[key] = build()
    return _WORKER_SCORERS[key]


@dataclass(frozen=True)
class CompiledRanker:
    """A booster compiled to native code by lleaves (same scores as ``predict``, several times
    faster): the model text and object file, shipped to executors with ``SparkContext.addFile``."""
    model_file: str
    object_file: str


def compile_ranker(spark, model_text: str, folder: str, target_cpu: str | None) -> CompiledRanker:
    """Compile ``model_text`` once into ``folder`` (reused by fingerprint) and ship it to executors.

    ``target_cpu`` None compiles for this machine's CPU; a cluster whose executors run other
    CPUs names a common one (e.g. "x86-64-v3").
    """
    import lleaves

    key = model_key(model_text)
    out = Path(folder).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model_file, object_file = out / f"ranker-{key}.txt", out / f"ranker-{key}-{target_cpu or 'host'}.o"
    if not object_file.exists():
        model_file.write_text(model_text)
        partial = object_file.with_suffix(".o.partial")
        lleaves.Model(model_file=str(model_file)).compile(cache=str(partial), target_cpu=target_cpu)
        partial.rename(object_file)  # a crashed compile never leaves a half-written object
    for path in (model_file, object_file):
        spark.sparkContext.addFile(str(path))
    return CompiledRanker(model_file.name, object_file.name)


def _compiled_predictor(ranker: CompiledRanker):
    import lleaves
    from pyspark import SparkFiles

    model = lleaves.Model(model_file=SparkFiles.get(ranker.model_file))
    model.compile(cache=SparkFiles.get(ranker.object_file))  # loads the shipped object, no compile
    return lambda values: model.predict(values, n_jobs=1)


def feature_matrix(columns, n_rows: int) -> np.ndarray:
    """Arrow feature columns as one C-ordered float64 matrix (nulls -> NaN, LightGBM's missing)."""
    values = np.empty((n_rows, len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        if pa.types.is_boolean(column.type):
            column = column.cast(pa.int8())
        values[:, j] = column.to_numpy(zero_copy_only=False)
    return values


def score_candidates(framed: DataFrame, model_text: str, features: list[str],
                     compiled: CompiledRanker | None = None) -> DataFrame:
    """Features per (user, surface, track) -> (user_id, surface, track_id, sources, score).

    An Arrow UDF over the feature columns only: Spark keeps the key columns in the JVM and sends
    Python just the features, in Arrow batches. The model (``compiled`` by lleaves, else
    LightGBM's ``model_text``) is loaded once per Python worker; each task predicts with one
    thread while Spark runs the tasks in parallel.
    """
    key = f"compiled-{compiled.object_file}" if compiled else model_key(model_text)

    def predictor():
        if compiled is not None:
            return _compiled_predictor(compiled)
        booster = lgb.Booster(model_str=model_text)
        return lambda values: booster.predict(values, num_threads=1)

    @arrow_udf("double")
    def score(*columns: pa.Array) -> pa.Array:
        return pa.array(_worker_scorer(key, predictor)(feature_matrix(columns, len(columns[0]))))

    return framed.select("user_id", "surface", "track_id", "sources", score(*features).alias("score"))


