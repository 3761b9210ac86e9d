"""python jobs/generate_events.py [--start-ds yyyy-MM-dd] [--days N] [--conf f.yaml] [--set key=value]

Writes generated raw listening events, one folder per day, to paths.raw in
events.input_format, and prints the realism report of the first day's first chunk.
"""
import sys
import time
from datetime import date, timedelta
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from setlist import cli, generator, lake


def main() -> None:
    parser = cli.job_parser(__doc__, with_ds=False)
    parser.add_argument("--start-ds", type=cli.valid_ds, default=None,
                        help="first day, yyyy-MM-dd (default generator.start_date)")
    parser.add_argument("--days", type=int, default=None, help="number of days (default generator.days)")
    args, cfg = cli.parse(parser)
    gen = cfg.generator
    first = date.fromisoformat(args.start_ds or gen.start_date)
    days = gen.days if args.days is None else args.days
    if days < 1:
        parser.error(f"--days must be >= 1, got {days}")
    started = time.perf_counter()
    world = generator.build_world(gen)
    print(f"catalogue and {gen.n_users:,} users built in {time.perf_counter() - started:.1f} s")
    total_rows, gen_seconds = 0, 0.0
    for offset in range(days):
        ds = (first + timedelta(days=offset)).isoformat()
        rows = 0

        def chunks():
            nonlocal rows, gen_seconds
            it = generator.iter_day_chunks(gen, ds, world)
            while True:
                tick = time.perf_counter()
                chunk = next(it, None)
                gen_seconds += time.perf_counter() - tick
                if chunk is None:
                    return
                if offset == 0 and rows == 0:
                    print(f"realism report for {ds} (first {len(chunk):,} rows):")
                    print(generator.realism_report(generator.realism_stats(chunk, gen), gen))
                rows += len(chunk)
                yield chunk

        tick = time.perf_counter()
        written = lake.write_raw_day(chunks(), lake.raw_day_path(cfg, ds), cfg.events.input_format,
                                     gen.files_per_day)
        total_rows += rows
        print(f"{ds}: {rows:,} events in {len(written)} {cfg.events.input_format} files "
              f"({time.perf_counter() - tick:.1f} s with writing)")
    elapsed = time.perf_counter() - started
    print(f"{total_rows:,} events: generation {total_rows / max(gen_seconds, 1e-9):,.0f} rows/s, "
          f"end to end {total_rows / elapsed:,.0f} rows/s")


if __name__ == "__main__":
    cli.run_job(main)
