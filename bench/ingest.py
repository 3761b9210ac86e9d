"""Ingest throughput against the engine's floor (a plain Spark read-then-write-Delta).

    .venv/bin/python bench/ingest.py [--events 2000000] [--repeats 5] [--workdir /tmp/setlist-bench-ingest]

Generates N events for one day as JSON lines, then times, on the same files in one session,
(1) a plain typed ``spark.read.json(...).write.format("delta")`` copy and
(2) Setlist's ingest step (parse, validate, quarantine, deduplicate, audit: ``setlist ingest``).
One warm-up run of each is dropped; then ``--repeats`` alternating runs of each; the medians
are printed with their ratio against the target (ingest <= 1.3 x the plain copy).
"""
import argparse
import shutil
import statistics
import time
from pathlib import Path

from pyspark.sql import types as T

from setlist import events, generator, lake
from setlist.config import load_config
from setlist.pipeline import ingest
from setlist.spark import build_session

DS = "2026-11-03"
TARGET = 1.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", default="/tmp/setlist-bench-ingest")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    base = load_config()
    # Scale users so one day holds about the requested number of events.
    probe = generator.generate_day(base.generator, DS)
    users = max(10, round(base.generator.n_users * args.events / max(len(probe), 1)))
    cfg = load_config(overrides=[f"paths.lake={work / 'lake'}", f"paths.raw={work / 'raw'}",
                                 f"generator.n_users={users}", "generator.files_per_day=8",
                                 "spark.log_level=ERROR", *args.overrides])
    tick = time.perf_counter()
    world = generator.build_world(cfg.generator)
    written = lake.write_raw_day(generator.iter_day_chunks(cfg.generator, DS, world),
                                 lake.raw_day_path(cfg, DS), "json", cfg.generator.files_per_day)
    size_mb = sum(p.stat().st_size for p in written) / 2**20
    print(f"generated {len(written)} JSON files ({size_mb:,.0f} MiB) for {users:,} users "
          f"in {time.perf_counter() - tick:.1f} s")

    spark = build_session(cfg.spark)
    typed = T.StructType([T.StructField(n, t) for n, t in events.EVENT_FIELDS.items()])

    def plain_copy() -> None:
        (spark.read.schema(typed).json(str(lake.raw_day_path(cfg, DS)))
         .write.format("delta").mode("overwrite").save(str(work / "plain_copy")))

    plain_s, ingest_s, result = [], [], None
    for round_ in range(args.repeats + 1):  # round 0 warms the JVM, the workers and the tables
        tick = time.perf_counter()
        plain_copy()
        plain_s.append(time.perf_counter() - tick)
        tick = time.perf_counter()
        result = ingest.run(spark, cfg, DS, f"bench-{round_}")
        ingest_s.append(time.perf_counter() - tick)
    plain_rows = spark.read.format("delta").load(str(work / "plain_copy")).count()
    plain, ours = statistics.median(plain_s[1:]), statistics.median(ingest_s[1:])
    ratio = ours / plain
    print(f"rows read: {result.rows_read:,} (plain copy {plain_rows:,}); accepted {result.accepted:,}, "
          f"quarantined {result.quarantined:,}, duplicates {result.duplicates:,}; "
          f"{cfg.spark.master}, median of {args.repeats} warm alternating runs")
    print(f"plain read+write Delta : {plain:7.2f} s  {plain_rows / plain:>12,.0f} events/s")
    print(f"setlist ingest         : {ours:7.2f} s  {result.rows_read / ours:>12,.0f} events/s")
    print(f"ingest / plain time    : {ratio:.2f} x (target <= {TARGET} x: {'MET' if ratio <= TARGET else 'NOT MET'})")


if __name__ == "__main__":
    main()
