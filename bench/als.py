"""Spark MLlib ALS (Setlist's ALS source) against the `implicit` library's ALS, same matrix.

HetRec Last.fm-2k play counts (read in place), a seeded per-user random hold-out of
``--holdout`` of each user's artists; both models see the same training matrix with
value log1p(plays) (raw counts reach 352,698), the same factors, regularisation,
alpha, iterations and 2 cores. Prints fit time, top-N scoring time (best of 2 runs; Setlist's
blocked scoring and Spark's recommendForAllUsers, against implicit's batched
recommend) and Recall@N on the hold-out (played artists excluded), with ratios.

Note: Spark scales regParam by each row's number of ratings (ALS-WR), implicit does not,
so "same regularisation" means the same number, not the same penalty.

    .venv/bin/python bench/als.py --factors 64 --iterations 15 --top-n 100
"""
from __future__ import annotations

import os

# One BLAS thread per process: implicit runs its own threads and Spark runs 2 tasks.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from setlist.candidates.als import als_candidates_from_model, fit_als  # noqa: E402
from setlist.candidates.als import _recommend_for_all  # noqa: E402
from setlist.candidates.common import top_n_per_user  # noqa: E402
from setlist.config import AlsConfig, load_config  # noqa: E402
from setlist.spark import build_session, set_checkpoint_dir  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/lastfm_hetrec2011_2k/user_artists.dat"


def holdout_split(plays: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, a random ``share`` of their artists (at least one if they have two) is held out."""
    rng = np.random.default_rng(seed)
    plays = plays.sort_values(["userID", "artistID"]).reset_index(drop=True)
    keys = rng.random(len(plays))
    order = pd.Series(keys).groupby(plays["userID"]).rank(method="first")
    sizes = plays.groupby("userID")["artistID"].transform("size")
    n_test = np.where(sizes >= 2, np.maximum(1, np.round(sizes * share)), 0)
    test = order <= n_test
    return plays[~test].reset_index(drop=True), plays[test].reset_index(drop=True)


def recall_at(recs: dict[int, list[int]], test: pd.DataFrame, n: int) -> float:
    """Mean over hold-out users of |top-n ∩ held out| / |held out|."""
    held = test.groupby("userID")["artistID"].apply(set)
    return float(np.mean([len(set(recs.get(u, [])[:n]) & items) / len(items) for u, items in held.items()]))


REPEATS = 2


def timed(func, repeats: int = 1):
    """(result, best wall seconds of ``repeats`` calls): later calls run on warm workers/JIT."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return result, best


def run_spark(train: pd.DataFrame, args, cfg) -> dict:
    spark = build_session(cfg.spark)
    checkpoints = tempfile.mkdtemp(prefix="setlist-bench-ck-")
    set_checkpoint_dir(spark, checkpoints)
    interactions = spark.createDataFrame(
        pd.DataFrame({"user_id": train.userID.astype(str), "track_id": train.artistID.astype(str),
                      "reward": np.log1p(train.weight.astype(float))})).cache()
    interactions.count()
    als_cfg = AlsConfig(rank=args.factors, reg_param=args.regularization, alpha=args.alpha,
                        max_iter=args.iterations, seed=args.seed, num_blocks=args.blocks,
                        top_n=args.top_n, checkpoint_interval=5, score_block_users=args.block_users)
    model, fit_s = timed(lambda: fit_als(interactions, als_cfg))
    model.stages[2].itemFactors.count()
    out = {"fit_s": fit_s}

    def materialise(df):
        df.write.format("noop").mode("overwrite").save()

    blocked = als_candidates_from_model(model, interactions, als_cfg)
    _, out["blocked_s"] = timed(lambda: materialise(blocked), REPEATS)
    rfa_cfg = als_cfg.model_copy(update={"scoring": "recommend_for_all"})
    rfa = top_n_per_user(_recommend_for_all(model, interactions, rfa_cfg), "als", args.top_n)
    _, out["rfa_s"] = timed(lambda: materialise(rfa), REPEATS)
    _, out["rfa_raw_s"] = timed(lambda: model.stages[2].recommendForAllUsers(args.top_n)
                                .write.format("noop").mode("overwrite").save(), REPEATS)
    filtered = als_cfg.model_copy(update={"exclude_played": True})
    rows, out["blocked_excl_s"] = timed(lambda: als_candidates_from_model(model, interactions, filtered)
                                        .select("user_id", "track_id", "source_rank").collect())
    recs: dict[int, list[tuple[int, int]]] = {}
    for r in rows:
        recs.setdefault(int(r.user_id), []).append((r.source_rank, int(r.track_id)))
    out["recs"] = {u: [t for _, t in sorted(v)] for u, v in recs.items()}
    spark.stop()
    return out


def run_implicit(train: pd.DataFrame, args) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares

    users, user_idx = np.unique(train.userID.to_numpy(), return_inverse=True)
    items, item_idx = np.unique(train.artistID.to_numpy(), return_inverse=True)
    matrix = sp.csr_matrix((np.log1p(train.weight.to_numpy(dtype=np.float64)).astype(np.float32),
                            (user_idx, item_idx)), shape=(len(users), len(items)))
    model = AlternatingLeastSquares(factors=args.factors, regularization=args.regularization,
                                    alpha=args.alpha, iterations=args.iterations,
                                    num_threads=2, random_state=args.seed)
    _, fit_s = timed(lambda: model.fit(matrix, show_progress=False))
    every = np.arange(len(users))
    _, score_s = timed(lambda: model.recommend(every, matrix[every], N=args.top_n,
                                               filter_already_liked_items=False), REPEATS)
    (ids, _), score_excl_s = timed(lambda: model.recommend(every, matrix[every], N=args.top_n,
                                                           filter_already_liked_items=True))
    recs = {int(users[u]): [int(items[i]) for i in row if i >= 0] for u, row in enumerate(ids)}
    return {"fit_s": fit_s, "score_s": score_s, "score_excl_s": score_excl_s, "recs": recs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="HetRec user_artists.dat")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--blocks", type=int, default=2, help="Spark ALS user/item blocks")
    parser.add_argument("--block-users", type=int, default=2048, help="users per scoring block")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    args = parser.parse_args()
    cfg = load_config(overrides=["spark.master=local[2]", "spark.log_level=ERROR", *args.overrides])

    plays = pd.read_csv(args.data, sep="\t")
    train, test = holdout_split(plays, args.holdout, args.seed)
    print(f"HetRec Last.fm-2k: {plays.userID.nunique():,} users x {plays.artistID.nunique():,} artists, "
          f"{len(train):,} train / {len(test):,} held-out pairs (seed {args.seed}); "
          f"factors={args.factors} reg={args.regularization} alpha={args.alpha} "
          f"iterations={args.iterations} top_n={args.top_n}, 2 cores")
    spark_res = run_spark(train, args, cfg)
    impl = run_implicit(train, args)
    spark_recall = recall_at(spark_res["recs"], test, args.top_n)
    impl_recall = recall_at(impl["recs"], test, args.top_n)
    rows = [("fit (s)", spark_res["fit_s"], impl["fit_s"]),
            (f"top-{args.top_n} blocked scoring (s)", spark_res["blocked_s"], impl["score_s"]),
            (f"top-{args.top_n} recommendForAllUsers + ids (s)", spark_res["rfa_s"], impl["score_s"]),
            (f"top-{args.top_n} recommendForAllUsers raw (s)", spark_res["rfa_raw_s"], impl["score_s"]),
            (f"top-{args.top_n} blocked, played excluded (s)", spark_res["blocked_excl_s"], impl["score_excl_s"]),
            (f"Recall@{args.top_n} (played excluded)", spark_recall, impl_recall)]
    print(f"{'':48} {'Spark ALS':>10} {'implicit':>10} {'Spark/implicit':>15}")
    for name, ours, theirs in rows:
        print(f"{name:48} {ours:10.4f} {theirs:10.4f} {ours / theirs:15.2f}")
    print(f"blocked scoring vs recommendForAllUsers (+ids): "
          f"{spark_res['rfa_s'] / spark_res['blocked_s']:.2f}x faster")


if __name__ == "__main__":
    main()
