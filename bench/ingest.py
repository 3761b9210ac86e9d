"""Ingest throughput against the engine's floor (a plain Spark read-then-write-Delta).

    .venv/bin/python bench/ingest.py [--events 5000000] [--workdir /tmp/setlist-bench-ingest]

Generates N events for one day as JSON lines, then in the same run times
(1) a plain typed `spark.read.json(...).write.format("delta")` copy of the files and
(2) Setlist's ingest step (parse, validate, quarantine, deduplicate, audit) on the same files,
and prints events/s for both and their ratio (target: ingest <= 1.5x the plain copy).
"""
import argparse
import shutil
import sys
import time
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import types as T

from setlist import events, generator, lake
from setlist.config import load_config
from setlist.pipeline import ingest
from setlist.spark import build_session

DS = "2026-11-03"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000)
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
                                 *args.overrides])
    tick = time.perf_counter()
    world = generator.build_world(cfg.generator)
    written = lake.write_raw_day(generator.iter_day_chunks(cfg.generator, DS, world),
                                 lake.raw_day_path(cfg, DS), "json", cfg.generator.files_per_day)
    size_mb = sum(p.stat().st_size for p in written) / 2**20
    print(f"generated {len(written)} JSON files ({size_mb:,.0f} MiB) for {users:,} users "
          f"in {time.perf_counter() - tick:.1f} s")

    spark = build_session(cfg.spark)
    typed = T.StructType([T.StructField(n, t) for n, t in events.EVENT_FIELDS.items()])
    tick = time.perf_counter()
    (spark.read.schema(typed).json(str(lake.raw_day_path(cfg, DS)))
     .write.format("delta").mode("overwrite").save(str(work / "plain_copy")))
    plain_s = time.perf_counter() - tick
    plain_rows = spark.read.format("delta").load(str(work / "plain_copy")).count()

    tick = time.perf_counter()
    result = ingest.run(spark, cfg, DS, "bench")
    ingest_s = time.perf_counter() - tick

    print(f"rows read: {result.rows_read:,} (plain copy {plain_rows:,}); accepted {result.accepted:,}, "
          f"quarantined {result.quarantined:,}, duplicates {result.duplicates:,}")
    print(f"plain read+write Delta : {plain_s:7.1f} s  {plain_rows / plain_s:>12,.0f} events/s")
    print(f"setlist ingest         : {ingest_s:7.1f} s  {result.rows_read / ingest_s:>12,.0f} events/s")
    print(f"ingest / plain time    : {ingest_s / plain_s:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
