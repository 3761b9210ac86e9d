"""Candidate sources on real data: Recall@100/500, NDCG@10 per source and for their union,
against popularity and the ``implicit`` library's BM25 item-KNN and ALS on the same split.

    .venv/bin/python bench/candidates.py [--data /work/shared/data] [--datasets hetrec,movielens1m]
        [--set candidates.als.rank=32 ...]

- HetRec Last.fm-2k (``lastfm_hetrec2011_2k/user_artists.dat``): play counts, artists as
  items, per-user hold-out (``evaluation.holdout_fraction`` of each user's artists,
  seeded hash). Co-listening has no sessions here: each user's artist set is one basket.
- MovieLens-1M, users 1-2999 (``movielens_1m_first2999users``): ratings as listens
  (importers.movielens), global time split at the ``evaluation.cutoff_quantile`` of
  timestamps, test = the next ``evaluation.horizon_days`` days, warm users only.

Both data sets hold no re-consumption in test (a hold-out item is not in train; a film is
rated once), so every source and baseline excludes the user's train items. The data is
read in place; nothing is copied. Prints one table per data set and ground truth.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# implicit's ALS runs its own threads; OpenBLAS threads on top of them slow it down (set before numpy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import implicit_source  # noqa: E402

from setlist.candidates.als import als_candidates  # noqa: E402
from setlist.candidates.colisten import colisten_candidates  # noqa: E402
from setlist.candidates.own_artists import own_artists_candidates  # noqa: E402
from setlist.candidates.popularity import popularity_candidates  # noqa: E402
from setlist.config import SetlistConfig, load_config  # noqa: E402
from setlist.evaluation import (  # noqa: E402
    cutoff_at_quantile, evaluate_candidates, global_time_split, per_user_holdout, truth_all_listens,
    truth_discovery, truth_from_interactions)
from setlist.importers.hetrec import read_play_counts  # noqa: E402
from setlist.importers.movielens import read_ml1m_genres, read_ml1m_ratings, ratings_to_listens  # noqa: E402
from setlist.importers.play_counts import interactions_from_play_counts  # noqa: E402
from setlist.interactions import build_interactions  # noqa: E402
from setlist.spark import build_session  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
OURS = ["als", "popularity", "colisten", "own_artists"]
# A one-off split over years of history: no lookback cut and (practically) no age decay.
BENCH_OVERRIDES = ["rewards.lookback_days=100000", "rewards.half_life_days=100000",
                   "spark.driver_memory=8g", "spark.log_level=ERROR"]


def with_top_n(cfg: SetlistConfig, top_n: int) -> SetlistConfig:
    """Every source keeps ``top_n`` per user and excludes the user's train items."""
    cand = cfg.candidates
    update = {"top_n": top_n, "exclude_played": True}
    return cfg.model_copy(update={"candidates": cand.model_copy(update={
        "als": cand.als.model_copy(update=update),
        "popularity": cand.popularity.model_copy(update=update),
        "colisten": cand.colisten.model_copy(update=update),
        "own_artists": cand.own_artists.model_copy(update=update)})})


def our_sources(cfg: SetlistConfig, listens: DataFrame | None) -> dict:
    c = cfg.candidates
    return {
        "als": lambda train: als_candidates(train, c.als),
        "popularity": lambda train: popularity_candidates(train, listens, c.popularity),
        "colisten": lambda train: colisten_candidates(train, listens, c.colisten),
        "own_artists": lambda train: own_artists_candidates(train, c.own_artists),
    }


def baselines(spark: SparkSession, cfg: SetlistConfig, top_n: int) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender
    als = cfg.candidates.als
    return {
        "implicit_bm25": implicit_source(spark, "implicit_bm25", lambda: BM25Recommender(K=100), top_n),
        "implicit_als": implicit_source(spark, "implicit_als", lambda: AlternatingLeastSquares(
            factors=als.rank, regularization=als.reg_param, alpha=als.alpha, iterations=als.max_iter,
            random_state=als.seed), top_n),
    }


def hetrec(spark: SparkSession, cfg: SetlistConfig, data: Path):
    counts = read_play_counts(spark, str(data / "lastfm_hetrec2011_2k" / "user_artists.dat"))
    interactions = interactions_from_play_counts(counts, cfg.importers)
    ev = cfg.evaluation
    train, test = per_user_holdout(interactions, ev.holdout_fraction, ev.seed, ev.holdout_min_items)
    train, test = train.cache(), test.cache()
    everything = truth_from_interactions(test)
    truths = {"all": everything, "discovery": truth_discovery(everything, train)}
    split = f"per-user hold-out {ev.holdout_fraction:.0%} (seed {ev.seed}): {train.count()} train / {test.count()} test pairs"
    return train, truths, None, None, split


def movielens1m(spark: SparkSession, cfg: SetlistConfig, data: Path):
    folder = data / "movielens_1m_first2999users"
    genres = read_ml1m_genres(spark, str(folder / "movies.dat"))
    listens = ratings_to_listens(read_ml1m_ratings(spark, str(folder / "ratings.dat.gz")), cfg.importers,
                                 genres).cache()
    ev = cfg.evaluation
    cutoff = cutoff_at_quantile(listens, ev.cutoff_quantile)
    train_listens, test_listens = global_time_split(listens, cutoff, ev.horizon_days)
    train_listens = train_listens.cache()
    train = build_interactions(train_listens, cutoff.strftime("%Y-%m-%d"), cfg.rewards).cache()
    everything = truth_all_listens(test_listens, cfg.rewards)
    truths = {"all": everything, "discovery": truth_discovery(everything, train_listens)}
    split = (f"global time split at the {ev.cutoff_quantile:.0%} quantile = {cutoff:%Y-%m-%d %H:%M}, "
             f"test {ev.horizon_days} days: {train_listens.count()} train / {test_listens.count()} test events")
    return train, truths, train_listens, cutoff, split


DATASETS = {"hetrec": hetrec, "movielens1m": movielens1m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the public data sets")
    parser.add_argument("--datasets", default="hetrec,movielens1m")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    cfg = load_config(overrides=BENCH_OVERRIDES + args.overrides)
    top_n = max(cfg.evaluation.recall_ks)
    cfg = with_top_n(cfg, top_n)
    spark = build_session(cfg.spark)
    spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="setlist-bench-ckpt-"))
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    k = cfg.evaluation.ranking_k
    columns = ["list", "users", *[f"recall_at_{kk}" for kk in cfg.evaluation.recall_ks], f"ndcg_at_{k}",
               f"hit_rate_at_{k}", f"map_at_{k}", f"coverage_at_{k}", f"popularity_pct_at_{k}",
               "popularity_pct_truth", "seconds"]
    for name in args.datasets.split(","):
        start = time.perf_counter()
        train, truths, listens, cutoff, split = DATASETS[name](spark, cfg, args.data)
        sources = {**our_sources(cfg, listens), **baselines(spark, cfg, top_n)}
        result = evaluate_candidates(spark, train, truths, sources, cfg.evaluation, cutoff, union_of=OURS)
        print(f"\n=== {name}: {split}; ALS rank {cfg.candidates.als.rank}, {cfg.candidates.als.max_iter} "
              f"iterations; top {top_n} per source; spark {cfg.spark.master}")
        for truth, table in result.groupby("truth", sort=False):
            print(f"--- ground truth: {truth}")
            print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        by_list = result[result["truth"] == "all"].set_index("list")
        recall = f"recall_at_{min(cfg.evaluation.recall_ks)}"
        colisten_ok = by_list.loc["colisten", recall] >= by_list.loc["implicit_bm25", recall]
        print(f"target colisten >= implicit BM25 on {recall}: {'met' if colisten_ok else 'NOT met'} "
              f"({by_list.loc['colisten', recall]:.4f} vs {by_list.loc['implicit_bm25', recall]:.4f})")
        for metric in [f"recall_at_{kk}" for kk in cfg.evaluation.recall_ks] + [f"ndcg_at_{k}"]:
            best = by_list.loc[OURS, metric]
            print(f"target union > every single source on {metric}: "
                  f"{'met' if by_list.loc['union', metric] > best.max() else 'NOT met'} "
                  f"(union {by_list.loc['union', metric]:.4f}, best {best.idxmax()} {best.max():.4f})")
        print(f"({name}: {time.perf_counter() - start:.0f} s in all)")
    spark.stop()


if __name__ == "__main__":
    main()
