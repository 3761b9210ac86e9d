"""Surfaces that behave differently: per-surface lists, next-track continuations, the signal lab.

    .venv/bin/python bench/surfaces.py [--users 1500] [--days 8] [--seeds 20]
        [--workdir /tmp/setlist-bench-surfaces] [--set section.key=value ...]

Generates ``--days`` days for ``--users`` users (the default generator otherwise) into a fresh
lake under ``--workdir`` and runs the daily chain on every day. On the ranker's split of the last
day (train, valid, eval = the three days before it, labels from the day after each):

1. **Per-surface lists**: the daily ranker (``ranking.layout``, surface and session context as
   features, each surface's own labels) against a single shared list: a ranker trained on the
   same frames without the surface and the user's history on it, which gives a user the same
   order on every surface.
   NDCG@10 on each publishing surface's own eval groups. Target: own >= 1.10 x shared.
2. **Continuations**: for each Now Playing play of the eval day that completed and followed
   another play in its session (the next-track label), the rank of that track in the seed's
   ``next_tracks`` list and in its co-listening neighbours (``colisten.track_neighbours``), both
   from the listens before the eval day. HR@10 and MRR@10. Target: next_tracks HR@10 > co-listening's.
3. **Signal lab** (``setlist.lab``, the same fits and bootstrap as ``setlist lab``): a pure-noise
   signal over ``--seeds`` seeds (noise and bootstrap seeded together): its ``all`` CI must cover 0
   in at least 95 % of them; the generator's true preference (``true_affinity``) must get a CI above 0.
"""
from __future__ import annotations

import argparse
import shutil
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import functions as F
from workdir import run_generated_split, workdir_paths

from setlist import lab, lake, ranking
from setlist.candidates.colisten import track_neighbours
from setlist.candidates.continuation import consecutive_plays, next_tracks
from setlist.config import load_config
from setlist.features import SURFACE_CODE, SURFACE_HISTORY_COLUMNS, feature_columns
from setlist.interactions import as_of_end
from setlist.pipeline.lab import measure
from setlist.rewards import is_completed
from setlist.spark import build_session

START = "2026-11-01"
K = 10
TARGET_SURFACE_LIFT = 0.10
TARGET_NOISE_COVERAGE = 0.95


def surface_lists(cfg, frames) -> None:
    own, _ = measure(cfg, frames)
    # Without the surface and the user's history on it, a model orders a user's candidates the
    # same way on every surface.
    shared_features = [c for c in feature_columns(cfg) if c not in (SURFACE_CODE, *SURFACE_HISTORY_COLUMNS)]
    shared_cfg = cfg.model_copy(update={"ranking": cfg.ranking.model_copy(update={"layout": "shared"})})
    booster = ranking.fit_ranker(frames["train"], frames["valid"], shared_features, [], shared_cfg.ranking, K)
    shared = ranking.group_metrics(frames["eval"], ranking.predict(booster, frames["eval"]), K, cfg.ranking)
    print(f"\n1. per-surface lists against one shared list (NDCG@{K}, eval day groups; ranking.layout="
          f"{cfg.ranking.layout})")
    print(f"{'surface':<13}{'groups':>7}{'own':>9}{'shared':>9}{'lift':>9}   target")
    for surface in cfg.publish.surfaces:
        a = own[own.surface == surface].ndcg
        b = shared[shared.surface == surface].ndcg
        if a.empty:
            print(f"{surface:<13}{0:>7}   no labelled groups")
            continue
        lift = a.mean() / b.mean() - 1
        verdict = "MET" if lift >= TARGET_SURFACE_LIFT else "NOT MET"
        print(f"{surface:<13}{len(a):>7}{a.mean():>9.4f}{b.mean():>9.4f}{lift:>+9.1%}   >= +{TARGET_SURFACE_LIFT:.0%}: {verdict}")


def continuations(spark, cfg, eval_day: str) -> None:
    cutoff = as_of_end(eval_day) - timedelta(days=1)
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    first = (cutoff - timedelta(days=cfg.candidates.listens_lookback_days)).date().isoformat()
    history = listens.where((F.col("ds") >= first) & (F.col("ts") < F.lit(cutoff)))
    day = listens.where(F.col("ds") == eval_day)
    pairs = (consecutive_plays(day, cfg.candidates.continuation, ("surface", "ms_played", "track_duration_ms"))
             .where((F.col("surface") == "now_playing") & is_completed(cfg.rewards)))
    lists = {"next_tracks": next_tracks(history, cfg.candidates.continuation)
             .select("seed_track_id", "track_id", F.col("rank").alias("_rank")),
             "colisten": track_neighbours(None, history, cfg.candidates.colisten)
             .select(F.col("track_id").alias("seed_track_id"), F.col("neighbour_id").alias("track_id"),
                     F.col("neighbour_rank").alias("_rank"))}
    print(f"\n2. Now Playing next-track labels of {eval_day} (completed plays after a play of the same session)")
    results = {}
    for name, table in lists.items():
        ranked = pairs.join(table.where(F.col("_rank") <= K), on=["seed_track_id", "track_id"], how="left")
        row = ranked.agg(F.count(F.lit(1)).alias("n"), F.avg(F.when(F.col("_rank").isNotNull(), 1.0).otherwise(0.0))
                         .alias("hr"), F.avg(F.coalesce(1.0 / F.col("_rank"), F.lit(0.0))).alias("mrr")).first()
        results[name] = row
        print(f"{name:<13} pairs {row['n']:>6}  HR@{K} {row['hr']:.4f}  MRR@{K} {row['mrr']:.4f}")
    verdict = "MET" if results["next_tracks"]["hr"] > results["colisten"]["hr"] else "NOT MET"
    print(f"target: next_tracks HR@{K} > co-listening HR@{K}: {verdict}")


def signal_lab(cfg, frames, seeds: int) -> None:
    shared = cfg.ranking.model_copy(update={"layout": "shared"})  # one fit per measure: seeds are many
    base_cfg = cfg.model_copy(update={"ranking": shared})
    baseline, _ = measure(base_cfg, frames)

    def lift_of(signal: str, seed: int):
        lab_cfg = base_cfg.lab.model_copy(update={"signals": [signal], "seed": seed})
        variant, _ = measure(base_cfg.model_copy(update={"lab": lab_cfg}), frames)
        return next(x for x in lab.compare(baseline, variant, signal, cfg.publish.surfaces, lab_cfg)
                    if x.surface == lab.ALL_SURFACES)

    print(f"\n3. signal lab: relative NDCG@{K} lift over all publishing surfaces, bootstrap 95% CI over users")
    covered = 0
    for seed in range(seeds):
        x = lift_of("noise", seed)
        covered += x.ci_low <= 0 <= x.ci_high
        print(f"noise seed {seed:>2}: lift {x.lift:+.2%}  CI [{x.ci_low:+.2%}, {x.ci_high:+.2%}]")
    share = covered / seeds
    print(f"noise CIs covering 0: {covered}/{seeds} = {share:.0%} (target >= {TARGET_NOISE_COVERAGE:.0%}: "
          f"{'MET' if share >= TARGET_NOISE_COVERAGE else 'NOT MET'})")
    truth = lift_of("true_affinity", 0)
    print(f"true_affinity: lift {truth.lift:+.2%}  CI [{truth.ci_low:+.2%}, {truth.ci_high:+.2%}] (target: CI above 0: "
          f"{'MET' if truth.ci_low > 0 else 'NOT MET'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workdir", default="/tmp/setlist-bench-surfaces")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    overrides = ["spark.log_level=ERROR", *workdir_paths(work),
                 f"generator.n_users={args.users}", f"generator.days={args.days}", "experiments.experiments=[]",
                 *args.overrides]
    cfg = load_config(overrides=overrides)
    spark = build_session(cfg.spark)
    split, frames = run_generated_split(spark, cfg, START, args.days)
    surface_lists(cfg, frames)
    last_day = (date.fromisoformat(START) + timedelta(days=args.days - 1)).isoformat()
    continuations(spark, cfg, last_day)  # the eval day's label day: history before it
    signal_lab(cfg, frames, args.seeds)


if __name__ == "__main__":
    main()
