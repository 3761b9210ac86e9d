"""The LambdaRank ranker against its best single candidate source, on real data, and its scoring speed.

    .venv/bin/python bench/ranking.py [--data /work/shared/data] [--datasets hetrec,movielens1m]
        [--set ranking.num_boost_round=300 ...]

For each data set: NDCG@10 (scikit-learn's ``ndcg_score`` definition, via
``setlist.ranking.ranking_metrics``), MAP@10 and HitRate@10 of the same candidates (ALS top-N
union popularity top-N, the user's train items excluded) ordered by ALS score, by popularity
and by the ranker, with the ranker's training time; then the publishing step's Spark scoring
(``ranking.score_candidates``, ``mapInPandas``) against LightGBM's own ``predict`` on the same
rows in one process.

- MovieLens-1M, users 1-2999: ratings as listens (importers.movielens). Three global time cuts at
  the ``--quantiles`` of timestamps: train, validation (early stopping), evaluation. At each cut
  the candidates and features come from the events before it, the labels from the next
  ``ranking.label_days`` (set to ``evaluation.horizon_days``): rating 4-5 completed, 3 a
  listen, 1-2 a skip.
- HetRec Last.fm-2k: play counts (no time). Evaluation: the per-user hold-out of
  ``evaluation.holdout_fraction`` of each user's artists (as bench/candidates.py); training: the
  same hold-out applied again inside the train part (another seed), with a share of users kept
  for early stopping. Held-out artists are graded by the user's play count: below the median
  of the held-out counts a listen, from the median a completed listen, from the 90th
  percentile a save. Features come from the train counts as one weighted event per pair.

The data is read in place; nothing is copied.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from setlist import ranking  # noqa: E402
from setlist.candidates.als import als_candidates  # noqa: E402
from setlist.candidates.popularity import popularity_candidates  # noqa: E402
from setlist.candidates.union import union_candidates  # noqa: E402
from setlist.config import SetlistConfig, load_config  # noqa: E402
from setlist.evaluation import cutoff_at_quantile, per_user_holdout  # noqa: E402
from setlist.features import SURFACE_CODE, feature_columns, pair_features, with_context  # noqa: E402
from setlist.importers.hetrec import read_play_counts  # noqa: E402
from setlist.importers.movielens import ratings_to_listens, read_ml1m_genres, read_ml1m_ratings  # noqa: E402
from setlist.importers.play_counts import interactions_from_play_counts  # noqa: E402
from setlist.interactions import build_interactions  # noqa: E402
from setlist.spark import build_session  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data")
SOURCES = ["als", "popularity"]
BENCH_OVERRIDES = ["rewards.lookback_days=100000", "rewards.half_life_days=100000",
                   "spark.driver_memory=8g", "spark.log_level=ERROR", "candidates.sources=[als,popularity]",
                   "candidates.source_priority=[als,popularity]", "candidates.top_n_per_source=100",
                   "candidates.als.rank=32", "candidates.als.exclude_played=true",
                   "candidates.popularity.exclude_played=true", "candidates.popularity.window_days=100000",
                   "features.history_days=100000", "features.windows_days=[7,30,365]",
                   "features.trend_long_days=30", "features.trend_short_days=7",
                   "ranking.label_days=30", "ranking.num_threads=2"]
HETREC_INNER_SEED_OFFSET = 1
HETREC_VALID_USER_SHARE = 0.2


def candidates_for(train: DataFrame, listens: DataFrame | None, cfg: SetlistConfig) -> DataFrame:
    c = cfg.candidates
    return union_candidates([als_candidates(train, c.als), popularity_candidates(train, listens, c.popularity)],
                            SOURCES)


def to_pandas(frame: DataFrame, cfg: SetlistConfig) -> pd.DataFrame:
    framed = frame.transform(ranking.cap_groups, cfg.ranking.max_group_size, SOURCES).cache()
    rows = framed.count()
    fraction = min(1.0, cfg.ranking.max_rows_per_day / rows) if rows else 1.0
    pdf = ranking.sort_groups(framed.transform(ranking.sample_groups, fraction, cfg.ranking.seed).toPandas())
    framed.unpersist()
    return pdf


# --------------------------------------------------------------------------- MovieLens-1M

def movielens_cut(listens: DataFrame, cutoff: dt.datetime, cfg: SetlistConfig) -> DataFrame:
    """Features + labels of the candidates made from the events before ``cutoff``."""
    before = listens.where(F.col("ts") < F.lit(cutoff))
    train = build_interactions(before, (cutoff - dt.timedelta(days=1)).strftime("%Y-%m-%d"), cfg.rewards).cache()
    union = candidates_for(train, before, cfg).cache()
    labels = ranking.graded_labels(listens, cutoff, cfg.ranking, cfg.rewards)
    framed = with_context(pair_features(union, listens, cutoff, cfg), labels, cfg.events.surfaces)
    return ranking.with_labels(framed, labels, cfg.ranking)


def movielens1m(spark: SparkSession, cfg: SetlistConfig, data: Path, quantiles: list[float]):
    folder = data / "movielens_1m_first2999users"
    genres = read_ml1m_genres(spark, str(folder / "movies.dat"))
    listens = ratings_to_listens(read_ml1m_ratings(spark, str(folder / "ratings.dat.gz")), cfg.importers,
                                 genres).cache()
    cuts = [cutoff_at_quantile(listens, q) for q in quantiles]
    frames = {name: movielens_cut(listens, cut, cfg) for name, cut in zip(["train", "valid", "eval"], cuts)}
    split = "global time cuts " + ", ".join(f"{q:.0%}={c:%Y-%m-%d}" for q, c in zip(quantiles, cuts))
    return frames, split


# --------------------------------------------------------------------------- HetRec

def pseudo_listens(interactions: DataFrame, cutoff: dt.datetime, cfg: SetlistConfig) -> DataFrame:
    """One completed, weighted 'event' per (user, artist) just before the cutoff: counts carry no time."""
    duration = cfg.importers.track_duration_ms
    return interactions.select(
        "user_id", "track_id", "artist_id", F.lit(cutoff - dt.timedelta(hours=1)).alias("ts"),
        F.lit(duration).cast("long").alias("ms_played"), F.lit(duration).cast("long").alias("track_duration_ms"),
        F.lit("trackdone").alias("reason_end"), F.lit(cfg.importers.surface).alias("surface"),
        F.lit(False).alias("skipped"), F.lit(False).alias("saved"), F.col("plays").cast("double").alias("weight"))


def count_labels(held_out: DataFrame, cfg: SetlistConfig) -> DataFrame:
    """Held-out (user, artist) -> label graded by the play count (see the module doc)."""
    median, top = held_out.approxQuantile("plays", [0.5, 0.9], 0.0)
    r = cfg.ranking
    grade = (F.when(F.col("plays") >= top, F.lit(r.grade_saved)).when(F.col("plays") >= median, F.lit(r.grade_completed))
             .otherwise(F.lit(r.grade_listen)))
    return held_out.select("user_id", F.lit(cfg.importers.surface).alias("surface"), "track_id",
                           grade.cast("int").alias("label"))


def hetrec_frame(train: DataFrame, held_out: DataFrame, cutoff: dt.datetime, cfg: SetlistConfig) -> DataFrame:
    union = candidates_for(train, None, cfg).cache()
    labels = count_labels(held_out, cfg)
    framed = with_context(pair_features(union, pseudo_listens(train, cutoff, cfg), cutoff, cfg), labels,
                          cfg.events.surfaces)
    return ranking.with_labels(framed, labels, cfg.ranking)


def hetrec(spark: SparkSession, cfg: SetlistConfig, data: Path):
    counts = read_play_counts(spark, str(data / "lastfm_hetrec2011_2k" / "user_artists.dat"))
    interactions = interactions_from_play_counts(counts, cfg.importers).cache()
    ev = cfg.evaluation
    cutoff = dt.datetime.fromisoformat(cfg.importers.counts_ds) + dt.timedelta(days=1)
    train, test = per_user_holdout(interactions, ev.holdout_fraction, ev.seed, ev.holdout_min_items)
    inner, inner_held = per_user_holdout(train.cache(), ev.holdout_fraction, ev.seed + HETREC_INNER_SEED_OFFSET,
                                         ev.holdout_min_items)
    fit = hetrec_frame(inner.cache(), inner_held, cutoff, cfg)
    in_valid = ranking.group_draw(cfg.ranking.seed) < F.lit(HETREC_VALID_USER_SHARE)
    frames = {"train": fit.where(~in_valid), "valid": fit.where(in_valid),
              "eval": hetrec_frame(train, test, cutoff, cfg)}
    split = (f"per-user hold-out {ev.holdout_fraction:.0%} (seed {ev.seed}) for evaluation; the same inside "
             f"train (seed {ev.seed + HETREC_INNER_SEED_OFFSET}) for training, {HETREC_VALID_USER_SHARE:.0%} "
             f"of its users for early stopping")
    return frames, split


# --------------------------------------------------------------------------- runner

def compare(name: str, frames: dict[str, DataFrame], cfg: SetlistConfig, spark: SparkSession) -> list[str]:
    k = cfg.evaluation.ranking_k
    started = time.perf_counter()
    pdfs = {part: to_pandas(frame, cfg) for part, frame in frames.items()}
    prepare = time.perf_counter() - started
    features = feature_columns(cfg)
    started = time.perf_counter()
    booster = ranking.fit_ranker(pdfs["train"], pdfs["valid"], features, [SURFACE_CODE], cfg.ranking, k)
    train_seconds = time.perf_counter() - started
    ev = pdfs["eval"]
    rows = {"popularity order": ranking.ranking_metrics(ev, ev["popularity_score"], k, cfg.ranking),
            "ALS order": ranking.ranking_metrics(ev, ev["als_score"], k, cfg.ranking),
            "ranker": ranking.ranking_metrics(ev, ranking.predict(booster, ev), k, cfg.ranking)}
    best_name = max(["popularity order", "ALS order"], key=lambda n: rows[n][f"ndcg_at_{k}"])
    best = rows[best_name][f"ndcg_at_{k}"]
    lift = rows["ranker"][f"ndcg_at_{k}"] / best - 1 if best else float("nan")
    lines = [f"== {name}: train {len(pdfs['train']):,} / valid {len(pdfs['valid']):,} / eval {len(ev):,} rows, "
             f"{int(rows['ranker']['groups']):,} evaluated groups; frames built in {prepare:.0f} s",
             f"{'list':<18}{'NDCG@10':>10}{'MAP@10':>10}{'HitRate@10':>12}"]
    for list_name, m in rows.items():
        lines.append(f"{list_name:<18}{m[f'ndcg_at_{k}']:>10.4f}{m[f'map_at_{k}']:>10.4f}"
                     f"{m[f'hit_rate_at_{k}']:>12.4f}")
    target = "MET" if lift >= 0.10 else "NOT MET"
    lines.append(f"ranker vs best single source ({best_name}): {lift:+.1%} NDCG@10 (target +10 %: {target}); "
                 f"training {train_seconds:.1f} s, {booster.current_iteration()} trees")
    top = list(ranking.feature_importance(booster).items())[:8]
    lines.append("top features (gain): " + ", ".join(f"{f} {g:.0f}" for f, g in top))
    lines += throughput(spark, ev, booster, features)
    return lines


def throughput(spark: SparkSession, frame: pd.DataFrame, booster, features: list[str]) -> list[str]:
    """Rows scored per second: the publishing step's Spark scoring vs ``Booster.predict`` in one process."""
    sdf = spark.createDataFrame(frame[["user_id", "surface", "track_id", *features]]
                                .assign(sources=[["x"]] * len(frame))).cache()
    sdf.count()
    text = booster.model_to_string()
    started = time.perf_counter()
    spark_rows = ranking.score_candidates(sdf, text, features).agg(F.count("score")).first()[0]
    spark_seconds = time.perf_counter() - started
    values = frame[features].to_numpy(dtype=np.float64)
    started = time.perf_counter()
    booster.predict(values)
    local_seconds = time.perf_counter() - started
    sdf.unpersist()
    return [f"scoring {len(frame):,} rows: Spark mapInPandas {spark_rows / spark_seconds:,.0f} rows/s "
            f"({spark_seconds:.2f} s, {spark.sparkContext.defaultParallelism} cores) vs LightGBM predict "
            f"{len(frame) / local_seconds:,.0f} rows/s ({local_seconds:.2f} s, one process)"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--datasets", default="hetrec,movielens1m")
    parser.add_argument("--quantiles", default="0.8,0.85,0.9",
                        help="MovieLens train, validation and evaluation cut quantiles")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cfg = load_config(overrides=BENCH_OVERRIDES + args.overrides)
    spark = build_session(cfg.spark)
    readers = {"hetrec": lambda: hetrec(spark, cfg, args.data),
               "movielens1m": lambda: movielens1m(spark, cfg, args.data,
                                                  [float(q) for q in args.quantiles.split(",")])}
    for name in args.datasets.split(","):
        started = time.perf_counter()
        frames, split = readers[name]()
        lines = compare(name, frames, cfg, spark)
        print("\n".join([lines[0], f"split: {split}", *lines[1:],
                         f"total {time.perf_counter() - started:.0f} s"]), flush=True)


if __name__ == "__main__":
    main()
