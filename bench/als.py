"""Spark MLlib ALS (Setlist's ALS source) against the `implicit` library's ALS, same matrix.

HetRec Last.fm-2k play counts (or ``--dataset movielens``: MovieLens-1M ratings, first 2,999
users), read in place; a seeded per-user random hold-out of ``--holdout`` of each user's items;
both models see the same training matrix with value log1p(weight) (HetRec counts reach
352,698), the same factors, regularisation, alpha, iterations and 2 cores. Prints which BLAS
Spark ML loaded, every stage's time (fit; blocked scoring's set-up; top-N by Setlist's blocked
scoring and by Spark's recommendForAllUsers, against implicit's batched recommend; best of 2
runs), Recall@N on the hold-out (played items excluded), fit + top-N against the target
(<= 3 x implicit), and the blocked-scoring kernel's time and peak memory at ``--scale-tracks``
(1M) random tracks.

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

from setlist.candidates.als import als_candidates_from_model, fit_als, item_factor_matrix  # noqa: E402
from setlist.candidates.als import _recommend_for_all  # noqa: E402
from setlist.candidates.common import top_n_per_user  # noqa: E402
from setlist.config import AlsConfig, load_config  # noqa: E402
from setlist.spark import build_session, set_checkpoint_dir  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared/data"
DATASETS = {"hetrec": SHARED / "lastfm_hetrec2011_2k/user_artists.dat",
            "movielens": SHARED / "movielens_1m_first2999users/ratings.dat.gz"}
DEFAULT_DATA = DATASETS["hetrec"]
TARGET = 3.0


def load_plays(dataset: str, path: str | None) -> pd.DataFrame:
    """(userID, artistID, weight): HetRec play counts, or MovieLens-1M ratings as the weight."""
    if dataset == "hetrec":
        return pd.read_csv(path or DATASETS["hetrec"], sep="\t")
    ratings = pd.read_csv(path or DATASETS["movielens"], sep="::", engine="python",
                          names=["userID", "artistID", "weight", "ts"])
    return ratings[["userID", "artistID", "weight"]]


def blas_in_use(spark) -> str:
    """Which BLAS/LAPACK Spark ML's netlib loader picked (JNI = native, else Java), and the library."""
    import ctypes.util
    netlib = spark._jvm.dev.ludovic.netlib
    blas = netlib.blas.BLAS.getInstance().getClass().getSimpleName()
    lapack = netlib.lapack.LAPACK.getInstance().getClass().getSimpleName()
    library = ctypes.util.find_library("blas")
    resolved = next((str(Path(d) / library) for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
                     if library and (Path(d) / library).exists()), library)
    return f"{blas} / {lapack} ({Path(resolved).resolve() if resolved else 'no system libblas'})"


def kernel_at_scale(n_tracks: int, users: int, rank: int, top_n: int, block_items: int) -> tuple[float, float]:
    """(seconds, peak MiB allocated) of the item-blocked top-N kernel for ``users`` random user
    vectors against ``n_tracks`` random items: memory stays users x block_items floats."""
    import tracemalloc
    from setlist.candidates.als import item_blocked_top_k
    rng = np.random.default_rng(0)
    items = rng.standard_normal((n_tracks, rank), dtype=np.float32)
    vectors = rng.standard_normal((users, rank), dtype=np.float32)
    tracemalloc.start()
    started = time.perf_counter()
    item_blocked_top_k(vectors, items, top_n, block_items)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak


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
                        top_n=args.top_n, checkpoint_interval=args.checkpoint_interval,
                        score_block_users=args.block_users)
    out = {"blas": blas_in_use(spark)}
    model, out["fit_s"] = timed(lambda: fit_als(interactions, als_cfg))
    model.stages[2].itemFactors.count()
    # Blocked scoring's set-up: the item factors to the driver and into a broadcast.
    _, out["setup_s"] = timed(lambda: spark.sparkContext.broadcast(item_factor_matrix(model)).value, REPEATS)

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
    excluded = als_candidates_from_model(model, interactions, filtered)
    _, out["blocked_excl_s"] = timed(lambda: materialise(excluded), REPEATS)
    rows = excluded.select("user_id", "track_id", "source_rank").collect()  # for Recall, not timed
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
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="hetrec")
    parser.add_argument("--data", default=None, help="the dataset's file (default: ../shared/data)")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--blocks", type=int, default=2, help="Spark ALS user/item blocks")
    parser.add_argument("--checkpoint-interval", type=int, default=5)
    parser.add_argument("--block-users", type=int, default=2048, help="users per scoring block")
    parser.add_argument("--scale-tracks", type=int, default=1_000_000,
                        help="catalogue size of the blocked-scoring memory check (0 skips it)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    args = parser.parse_args()
    cfg = load_config(overrides=["spark.master=local[2]", "spark.log_level=ERROR", *args.overrides])

    plays = load_plays(args.dataset, args.data)
    train, test = holdout_split(plays, args.holdout, args.seed)
    print(f"{args.dataset}: {plays.userID.nunique():,} users x {plays.artistID.nunique():,} items, "
          f"{len(train):,} train / {len(test):,} held-out pairs (seed {args.seed}); "
          f"factors={args.factors} reg={args.regularization} alpha={args.alpha} "
          f"iterations={args.iterations} top_n={args.top_n}, 2 cores")
    spark_res = run_spark(train, args, cfg)
    impl = run_implicit(train, args)
    spark_recall = recall_at(spark_res["recs"], test, args.top_n)
    impl_recall = recall_at(impl["recs"], test, args.top_n)
    print(f"Spark ML BLAS: {spark_res['blas']}")
    rows = [("fit (s)", spark_res["fit_s"], impl["fit_s"]),
            ("blocked scoring set-up: factors + broadcast (s)", spark_res["setup_s"], float("nan")),
            (f"top-{args.top_n} blocked scoring (s)", spark_res["blocked_s"], impl["score_s"]),
            (f"top-{args.top_n} recommendForAllUsers + ids (s)", spark_res["rfa_s"], impl["score_s"]),
            (f"top-{args.top_n} recommendForAllUsers raw (s)", spark_res["rfa_raw_s"], impl["score_s"]),
            (f"top-{args.top_n} blocked, played excluded (s)", spark_res["blocked_excl_s"], impl["score_excl_s"]),
            (f"Recall@{args.top_n} (played excluded)", spark_recall, impl_recall)]
    print(f"{'':48} {'Spark ALS':>10} {'implicit':>10} {'Spark/implicit':>15}")
    for name, ours, theirs in rows:
        print(f"{name:48} {ours:10.4f} {theirs:10.4f} {ours / theirs:15.2f}")
    ours = spark_res["fit_s"] + spark_res["blocked_excl_s"]
    theirs = impl["fit_s"] + impl["score_excl_s"]
    ratio = ours / theirs
    print(f"fit + top-{args.top_n} (played excluded): Spark {ours:.2f} s, implicit {theirs:.2f} s: "
          f"{ratio:.1f} x (target <= {TARGET} x: {'MET' if ratio <= TARGET else 'NOT MET'}), "
          f"Recall@{args.top_n} {spark_recall:.4f} vs {impl_recall:.4f}")
    if args.scale_tracks:
        als_cfg = cfg.candidates.als
        seconds, peak = kernel_at_scale(args.scale_tracks, als_cfg.score_block_users, args.factors,
                                        args.top_n, als_cfg.score_block_items)
        bound = 4 * als_cfg.score_block_users * als_cfg.score_block_items / 2**20
        print(f"blocked top-{args.top_n} at {args.scale_tracks:,} tracks: one block of "
              f"{als_cfg.score_block_users:,} users in {seconds:.1f} s, peak {peak:,.0f} MiB allocated "
              f"(score block bound {bound:,.0f} MiB; candidates.als.score_memory_mb={als_cfg.score_memory_mb})")


if __name__ == "__main__":
    main()
