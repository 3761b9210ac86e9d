"""The sequential source inside Setlist: does it raise the ranker's Now Playing NDCG@10?

    .venv/bin/python bench/sequential_chain.py [--users 1500] [--days 8]
        [--workdir /tmp/setlist-bench-sequential] [--set section.key=value ...]

Generates ``--days`` days for ``--users`` users into a fresh lake under ``--workdir`` and runs the
daily chain on every day, ``train_sequential`` included: each day's candidates are scored by the
transformer champion of that day (trained on listens up to it, never later ones). On the ranker's
split of the last day (train, valid, eval = the three days before it, labels from the day after
each), the same ranker (``setlist.pipeline.lab.measure``: same frames, layout and labels) is fit

- **with** the source: every candidate, the ``sequential_*`` features included;
- **without** it: the candidates only the transformer proposed are removed and its features left out,
  i.e. the union the other sources give on their own.

Per surface, NDCG@10 on the eval day's groups and the lift of "with" over "without" with a
bootstrap 95 % CI over users (``setlist.lab.compare``, paired by user). Target: Now Playing lift > 0.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from workdir import run_generated_split, workdir_paths

from setlist import lab
from setlist.config import load_config
from setlist.pipeline.lab import measure
from setlist.spark import build_session

START = "2026-11-01"
SOURCE = "sequential"


def without_source(cfg, frames):
    """(config, frames) of the ranker without the sequential source."""
    sources = [s for s in cfg.candidates.sources if s != SOURCE]
    cfg = cfg.model_copy(update={"candidates": cfg.candidates.model_copy(update={"sources": sources})})
    kept = {}
    for name, frame in frames.items():
        flag = frame[f"{SOURCE}_flag"].fillna(0).astype(int)
        kept[name] = frame[frame["n_sources"] > flag].assign(n_sources=lambda f: f["n_sources"] - flag[f.index])
    return cfg, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--workdir", default="/tmp/setlist-bench-sequential")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    overrides = ["spark.log_level=ERROR", *workdir_paths(work), f"generator.n_users={args.users}",
                 f"generator.days={args.days}", "experiments.experiments=[]", *args.overrides]
    cfg = load_config(overrides=overrides)
    if SOURCE not in cfg.candidates.sources:
        raise SystemExit(f"candidates.sources {cfg.candidates.sources} lacks '{SOURCE}': nothing to measure")
    spark = build_session(cfg.spark)
    split, frames = run_generated_split(spark, cfg, START, args.days)
    only = {n: int(((f[f"{SOURCE}_flag"].fillna(0) == 1) & (f["n_sources"] == 1)).sum()) for n, f in frames.items()}
    print(f"rows only the transformer proposed: {only}")
    with_groups, _ = measure(cfg, frames)
    without_groups, _ = measure(*without_source(cfg, frames))
    lifts = lab.compare(without_groups, with_groups, "with_sequential", cfg.publish.surfaces, cfg.lab)
    print(f"\nranker with the sequential source against the same ranker without it "
          f"(NDCG@{cfg.evaluation.ranking_k}, eval day {split['eval']}):")
    print(lab.lift_table(lifts, cfg.evaluation.ranking_k))
    now_playing = next((x for x in lifts if x.surface == "now_playing"), None)
    if now_playing is None:
        print("target: Now Playing lift > 0: NOT MEASURED (no labelled Now Playing groups)")
    else:
        verdict = "MET" if now_playing.lift > 0 else "NOT MET"
        print(f"target: Now Playing lift > 0: {now_playing.lift:+.2%} CI [{now_playing.ci_low:+.2%}, "
              f"{now_playing.ci_high:+.2%}]: {verdict}")


if __name__ == "__main__":
    main()
