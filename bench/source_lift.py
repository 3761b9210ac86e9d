"""A model-based candidate source inside Setlist: does it raise the ranker's NDCG@10 per surface?

    .venv/bin/python bench/source_lift.py [--source sequential|generative] [--users 1500] [--days 8]
        [--workdir /tmp/setlist-bench-source] [--set section.key=value ...]

Generates ``--days`` days for ``--users`` users into a fresh lake under ``--workdir`` and runs the
daily chain on every day, the source's training step included (``train_sequential`` or
``train_generative``; ``--source generative`` adds the source to ``candidates.sources``): each
day's candidates come from the champion of that day (trained on listens up to it, never later
ones). On the ranker's split of the last day (train, valid, eval = the three days before it,
labels from the day after each), the same ranker (``setlist.pipeline.lab.measure``: same frames,
layout and labels) is fit

- **with** the source: every candidate, the source's ``<source>_*`` features included;
- **without** it: the candidates only that source proposed are removed and its features left out,
  i.e. the union the other sources give on their own.

Per surface, NDCG@10 on the eval day's groups and the lift of "with" over "without" with a
bootstrap 95 % CI over users (``setlist.lab.compare``, paired by user). Targets: Now Playing lift
> 0 for the sequential source (issue 14); for the generative source, a lift on some surface is what
would earn it a place in the default sources.
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
SOURCES = ("sequential", "generative")


def without_source(cfg, frames, source: str):
    """(config, frames) of the ranker without ``source``."""
    sources = [s for s in cfg.candidates.sources if s != source]
    cfg = cfg.model_copy(update={"candidates": cfg.candidates.model_copy(update={"sources": sources})})
    kept = {}
    for name, frame in frames.items():
        flag = frame[f"{source}_flag"].fillna(0).astype(int)
        kept[name] = frame[frame["n_sources"] > flag].assign(n_sources=lambda f: f["n_sources"] - flag[f.index])
    return cfg, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=SOURCES, default="sequential")
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--workdir", default="/tmp/setlist-bench-source")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    overrides = ["spark.log_level=ERROR", *workdir_paths(work), f"generator.n_users={args.users}",
                 f"generator.days={args.days}", "experiments.experiments=[]", *args.overrides]
    cfg = load_config(overrides=overrides)
    source = args.source
    if source == "generative" and source not in cfg.candidates.sources:
        cfg = load_config(overrides=overrides + [f"candidates.sources=[{','.join(cfg.candidates.sources)},generative]"])
    if source not in cfg.candidates.sources:
        raise SystemExit(f"candidates.sources {cfg.candidates.sources} lacks '{source}': nothing to measure")
    spark = build_session(cfg.spark)
    split, frames = run_generated_split(spark, cfg, START, args.days)
    only = {n: int(((f[f"{source}_flag"].fillna(0) == 1) & (f["n_sources"] == 1)).sum()) for n, f in frames.items()}
    print(f"rows only the {source} source proposed: {only}")
    with_groups, _ = measure(cfg, frames)
    without_groups, _ = measure(*without_source(cfg, frames, source))
    lifts = lab.compare(without_groups, with_groups, f"with_{source}", cfg.publish.surfaces, cfg.lab)
    print(f"\nranker with the {source} source against the same ranker without it "
          f"(NDCG@{cfg.evaluation.ranking_k}, eval day {split['eval']}):")
    print(lab.lift_table(lifts, cfg.evaluation.ranking_k))
    if source != "sequential":
        best = max(lifts, key=lambda x: x.ci_low)
        verdict = "earns a place" if best.ci_low > 0 else "does not earn a place yet"
        print(f"generative source: best surface {best.surface} {best.lift:+.2%} CI [{best.ci_low:+.2%}, "
              f"{best.ci_high:+.2%}]: {verdict} (a CI above 0 on some surface)")
        return
    now_playing = next((x for x in lifts if x.surface == "now_playing"), None)
    if now_playing is None:
        print("target: Now Playing lift > 0: NOT MEASURED (no labelled Now Playing groups)")
    else:
        verdict = "MET" if now_playing.lift > 0 else "NOT MET"
        print(f"target: Now Playing lift > 0: {now_playing.lift:+.2%} CI [{now_playing.ci_low:+.2%}, "
              f"{now_playing.ci_high:+.2%}]: {verdict}")


if __name__ == "__main__":
    main()
