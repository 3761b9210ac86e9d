"""Generated raw listening events, one folder per day, in ``paths.raw`` (``setlist generate-events``).

Runs on the driver without Spark: :mod:`setlist.generator` builds a seeded world and writes each
day in chunks. Reports the realism statistics of the first day's first chunk next to their
targets, one line per day, and the generation throughput, on the ``setlist.console`` logger.
"""
from __future__ import annotations

import logging
import time
from datetime import date, timedelta

from tqdm import tqdm

from setlist import generator, lake
from setlist.config import SetlistConfig
from setlist.errors import SetlistError

console = logging.getLogger("setlist.console")


def run(cfg: SetlistConfig, start_ds: str | None = None, days: int | None = None) -> int:
    """Write ``days`` days (default ``generator.days``) from ``start_ds`` (default
    ``generator.start_date``); returns the number of events written."""
    gen = cfg.generator
    first = date.fromisoformat(start_ds or gen.start_date)
    days = gen.days if days is None else days
    if days < 1:
        raise SetlistError(f"--days must be >= 1, got {days}")
    started = time.perf_counter()
    world = generator.build_world(gen)
    console.info("catalogue and %s users built in %.1f s", f"{gen.n_users:,}", time.perf_counter() - started)
    total_rows, gen_seconds = 0, 0.0
    for offset in tqdm(range(days), desc="generate", unit="day", disable=None, leave=False):
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
                    console.info("realism report for %s (first %s rows):\n%s", ds, f"{len(chunk):,}",
                                 generator.realism_report(generator.realism_stats(chunk, gen), gen))
                rows += len(chunk)
                yield chunk

        tick = time.perf_counter()
        written = lake.write_raw_day(chunks(), lake.raw_day_path(cfg, ds), cfg.events.input_format,
                                     gen.files_per_day)
        total_rows += rows
        console.info("generate-events %s: %s events in %d %s files in %.1f s", ds, f"{rows:,}", len(written),
                     cfg.events.input_format, time.perf_counter() - tick)
    elapsed = time.perf_counter() - started
    console.info("%s events: generation %s rows/s, end to end %s rows/s", f"{total_rows:,}",
                 f"{total_rows / max(gen_seconds, 1e-9):,.0f}", f"{total_rows / elapsed:,.0f}")
    return total_rows
