"""A bench's own lake, raw data, MLflow store and caches under one folder (config overrides)."""
from __future__ import annotations

from pathlib import Path


def workdir_paths(work: Path) -> list[str]:
    """``paths.*`` overrides that keep every file a bench's daily chain writes under ``work``."""
    return [f"paths.lake={work / 'lake'}", f"paths.raw={work / 'raw'}",
            f"paths.mlflow_tracking_uri=sqlite:///{work / 'mlflow.db'}",
            f"paths.mlflow_artifacts={work / 'mlartifacts'}", f"paths.checkpoints={work / 'checkpoints'}",
            f"paths.compiled_models={work / 'compiled'}"]


def run_generated_split(spark, cfg, start: str, days: int):
    """Generate ``days`` days from ``start``, run the daily chain on each, and return the ranker's
    split of the last day with its frames: (split, frames)."""
    import time
    from datetime import date, timedelta

    from setlist.pipeline import daily, generate_events
    from setlist.pipeline.train_ranker import day_frames, split_days

    tick = time.perf_counter()
    generate_events.run(cfg, start, days)
    all_days = [(date.fromisoformat(start) + timedelta(days=i)).isoformat() for i in range(days)]
    for ds in all_days:
        daily.run(spark, cfg, ds, f"bench-{ds}")
    print(f"{days} days for {cfg.generator.n_users} users generated and run in {time.perf_counter() - tick:.0f} s")
    split = split_days(all_days[-1], cfg.ranking.train_lag_days)
    frames = day_frames(spark, cfg, split, "bench")
    print(f"split {split}: " + ", ".join(f"{n} {len(f):,} rows" for n, f in frames.items()))
    return split, frames
