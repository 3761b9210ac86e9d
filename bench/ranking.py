"""Publish scoring throughput: Setlist's Spark scoring against LightGBM's own ``predict``.

    .venv/bin/python bench/ranking.py [--rows 200000] [--features 24] [--trees 100] [--leaves 63]
        [--repeats 5]

Both sides score the same cached rows with the same model and the same number of threads (the
session's cores for Spark's tasks, ``num_threads`` = that many for ``predict``), warm, in
alternating repetitions; the median is reported. Ranking quality lives in bench/quality.py.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import functions as F  # noqa: E402

from setlist import ranking  # noqa: E402
from setlist.config import load_config  # noqa: E402
from setlist.spark import build_session  # noqa: E402

TARGET = 0.5


def model_and_rows(rows: int, n_features: int, trees: int, leaves: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    features = [f"f{i}" for i in range(n_features)]
    frame = pd.DataFrame(rng.normal(size=(rows, n_features)), columns=features)
    frame["user_id"] = [f"u{i // 100}" for i in range(rows)]
    frame["surface"] = "home"
    frame["track_id"] = [f"t{i % 100}" for i in range(rows)]
    label = (frame[features[:4]].sum(axis=1) + rng.normal(size=rows) > 0).astype(int) * 2 + 1
    train = ranking.sort_groups(frame.assign(label=label))
    booster = lgb.train({"objective": "lambdarank", "num_leaves": leaves, "min_data_in_leaf": 20,
                         "verbosity": -1, "seed": seed}, lgb.Dataset(train[features], label=train["label"],
                                                                   group=ranking.group_sizes(train)),
                        num_boost_round=trees)
    return booster, frame, features


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=24)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=63)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(overrides=["spark.log_level=ERROR"])
    spark = build_session(cfg.spark)
    cores = spark.sparkContext.defaultParallelism
    booster, frame, features = model_and_rows(args.rows, args.features, args.trees, args.leaves)
    sdf = spark.createDataFrame(frame.assign(sources=[["x"]] * len(frame))).cache()
    sdf.count()
    text, values = booster.model_to_string(), frame[features].to_numpy(dtype=np.float64)
    spark_s, predict_s = [], []
    for _ in range(args.repeats + 1):  # the first round warms both sides and is dropped
        started = time.perf_counter()
        ranking.score_candidates(sdf, text, features).agg(F.sum("score")).first()
        spark_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        booster.predict(values, num_threads=cores)
        predict_s.append(time.perf_counter() - started)
    spark_rate = args.rows / statistics.median(spark_s[1:])
    predict_rate = args.rows / statistics.median(predict_s[1:])
    ratio = spark_rate / predict_rate
    print(f"{args.rows:,} rows, {args.features} features, {args.trees} trees x {args.leaves} leaves, "
          f"{cores} threads, median of {args.repeats} warm runs")
    print(f"Spark score_candidates: {spark_rate:,.0f} rows/s; LightGBM predict: {predict_rate:,.0f} rows/s; "
          f"ratio {ratio:.2f} x (target >= {TARGET} x: {'MET' if ratio >= TARGET else 'NOT MET'})")


if __name__ == "__main__":
    main()
