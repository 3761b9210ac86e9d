"""Linear growth: the whole daily chain on 1M, 3M and 10M generated events.

    .venv/bin/python bench/scale.py [--events 1000000 3000000 10000000] [--days 4]
        [--workdir /tmp/setlist-bench-scale] [--set section.key=value ...]

For each size, a fresh lake: ``--days`` days of events (``setlist generate-events``) with users
scaled to the size (the default config's events per user and day held) and the catalogue
growing as the square root of the users (a bigger service has more tracks, but not in
proportion to its listeners). Then ``setlist daily`` for every day, in one warm Spark session
shared by all sizes (a warm-up run at a hundredth of the smallest size comes first, dropped). Prints each step's seconds summed over the days, per size; the growth exponent
log(t_last / t_first) / log(events_last / events_first) per step and overall; and the target:
time ratio from the smallest to the largest size at most 1.1 x the event ratio.
"""
from __future__ import annotations

import argparse
import math
import shutil
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from workdir import workdir_paths

from setlist import generator
from setlist.config import load_config
from setlist.pipeline import daily, generate_events
from setlist.spark import build_session

TARGET = 1.1
START = "2026-11-01"


def sized_overrides(base, events: int, days: int, workdir: Path) -> list[str]:
    probe = generator.generate_day(base.generator, START)  # events of one day at the default size
    users = max(50, round(base.generator.n_users * events / (days * max(len(probe), 1))))
    artists = max(50, round(base.generator.n_artists * math.sqrt(users / base.generator.n_users)))
    return [*workdir_paths(workdir), f"generator.n_users={users}", f"generator.n_artists={artists}", f"generator.days={days}"]


def run_size(spark, events: int, days: int, workdir: Path, overrides: list[str]) -> tuple[int, dict[str, float]]:
    shutil.rmtree(workdir, ignore_errors=True)
    base = load_config(overrides=overrides)
    cfg = load_config(overrides=[*sized_overrides(base, events, days, workdir), *overrides])
    written = generate_events.run(cfg, START, days)
    seconds: dict[str, float] = defaultdict(float)
    for offset in range(days):
        ds = (date.fromisoformat(START) + timedelta(days=offset)).isoformat()
        for report in daily.run(spark, cfg, ds, f"scale-{events}-{ds}"):
            seconds[report.step] += report.seconds
    return written, dict(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--workdir", default="/tmp/setlist-bench-scale")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    overrides = ["spark.log_level=ERROR", *args.overrides]
    spark = build_session(load_config(overrides=overrides).spark)
    sizes = sorted(args.events)
    results = []
    for i, events in enumerate([max(10_000, sizes[0] // 100), *sizes]):
        tick = time.perf_counter()
        written, seconds = run_size(spark, events, args.days, Path(args.workdir) / f"e{events}", overrides)
        print(f"{written:,} events over {args.days} days: chain {sum(seconds.values()):.1f} s "
              f"(wall {time.perf_counter() - tick:.1f} s with generation){' [warm-up, dropped]' if i == 0 else ''}",
              flush=True)
        if i:
            results.append((written, seconds))
    steps = list(results[0][1])
    print(f"\n{'step':20}" + "".join(f"{w:>14,}" for w, _ in results) + f"{'exponent':>10}")
    (first_events, first), (last_events, last) = results[0], results[-1]
    log_ratio = math.log(last_events / first_events)
    for step in steps:
        exponent = math.log(max(last[step], 1e-3) / max(first[step], 1e-3)) / log_ratio
        print(f"{step:20}" + "".join(f"{s[step]:14.1f}" for _, s in results) + f"{exponent:10.2f}")
    totals = [sum(s.values()) for _, s in results]
    exponent = math.log(totals[-1] / totals[0]) / log_ratio
    print(f"{'total (s)':20}" + "".join(f"{t:14.1f}" for t in totals) + f"{exponent:10.2f}")
    time_ratio, event_ratio = totals[-1] / totals[0], last_events / first_events
    print(f"time ratio {time_ratio:.2f} x for {event_ratio:.2f} x the events: {time_ratio / event_ratio:.2f} x the "
          f"event ratio (target <= {TARGET} x: {'MET' if time_ratio <= TARGET * event_ratio else 'NOT MET'})")


if __name__ == "__main__":
    main()
