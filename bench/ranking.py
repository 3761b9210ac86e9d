"""Publish scoring throughput: Setlist's Spark scoring against LightGBM's own ``predict``.

    .venv/bin/python bench/ranking.py [--rows 200000] [--features 24] [--trees 100] [--leaves 63]
        [--repeats 5]

Both sides score the same cached rows with the same model and the same number of threads (the
session's cores for Spark's tasks, ``num_threads`` = that many for ``predict``), warm, in
alternating repetitions; the median is reported. Spark scores with each scorer: LightGBM's
booster and the lleaves-compiled model (what ``publish.scorer=auto`` uses from
``publish.compile_min_rows`` rows up; below that the one-off compile costs more than it saves);
the target applies to the compiled one. Ranking quality lives in bench/quality.py.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

from pyspark.sql import functions as F

from setlist import ranking, scoring
from setlist.config import load_config
from setlist.spark import build_session

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
    work = tempfile.mkdtemp(prefix="setlist-bench-ranking-")
    tick = time.perf_counter()
    compiled = scoring.compile_ranker(spark, text, work, cfg.publish.compiled_target_cpu)
    compile_s = time.perf_counter() - tick
    scorers = {"lightgbm": None, "compiled": compiled}
    timings: dict[str, list[float]] = {"predict": [], **{name: [] for name in scorers}}
    for _ in range(args.repeats + 1):  # the first round warms every side and is dropped
        for name, scorer in scorers.items():
            started = time.perf_counter()
            scoring.score_candidates(sdf, text, features, scorer).agg(F.sum("score")).first()
            timings[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        booster.predict(values, num_threads=cores)
        timings["predict"].append(time.perf_counter() - started)
    rates = {name: args.rows / statistics.median(runs[1:]) for name, runs in timings.items()}
    print(f"{args.rows:,} rows, {args.features} features, {args.trees} trees x {args.leaves} leaves, "
          f"{cores} threads, median of {args.repeats} warm runs; lleaves compile {compile_s:.1f} s (once per model; "
          f"publish.scorer={cfg.publish.scorer} compiles from {cfg.publish.compile_min_rows:,} rows)")
    print(f"LightGBM predict ({cores} threads): {rates['predict']:,.0f} rows/s = "
          f"{rates['predict'] / cores:,.0f} rows/s per core")
    for name in scorers:
        ratio = rates[name] / rates["predict"]
        used = " (publish's scorer at scale)" if name == "compiled" else ""
        verdict = f"target >= {TARGET} x: {'MET' if ratio >= TARGET else 'NOT MET'}" if used else "for comparison"
        print(f"Spark score_candidates, scorer={name}{used}: {rates[name]:,.0f} rows/s = "
              f"{rates[name] / cores:,.0f} per core; ratio {ratio:.2f} x ({verdict})")

if __name__ == "__main__":
    main()
