"""The step runner, the daily run of one date and the backfill of a date range.

Every step comes from :func:`setlist.steps.chain`: ingest -> interactions -> candidates ->
assign_experiments -> train_ranker -> publish -> analyze_experiment -> mark_complete
(``train_ranker`` only with ``ranking.train_in_daily``; a refused gate is reported and
publishing goes on with the current champion). The Airflow DAG runs the same chain.

A day is complete once its row is in ``pipeline_runs`` (written last, by ``mark_complete``),
which is what backfill checks; a crash before that leaves the day to be run again, and
every step replaces its own partition, so rerunning is safe.

A step run on its own reports one line on the ``setlist.console`` logger (what the ``setlist``
command prints): its name, the day, the rows it wrote to each table and its duration. The daily
run prints one summary line per day instead (the step lines with ``--verbose``), and a backfill
closes with a table of seconds per step and day: where the minutes went.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from tqdm import tqdm

from setlist import lake, steps
from setlist.config import SetlistConfig
from setlist.errors import SetlistError

log = logging.getLogger(__name__)
console = logging.getLogger("setlist.console")


@dataclass(frozen=True)
class StepReport:
    """What one step did: rows written per table (Delta's commit metrics) and its duration."""
    step: str
    ds: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    outcome: str | None = None
    result: Any = None

    def line(self) -> str:
        written = [f"{n:,} {'row' if n == 1 else 'rows'} to {table}" if i == 0 else f"{n:,} to {table}"
                   for i, (table, n) in enumerate(self.rows.items())]
        what = ", ".join(written + ([self.outcome] if self.outcome else [])) or "done"
        return f"{self.step} {self.ds}: {what} in {self.seconds:.1f} s"


def run_step(spark: SparkSession, cfg: SetlistConfig, step: steps.Step | str, ds: str,
             run_id: str, announce: bool = True) -> StepReport:
    """Run one registry step for ``ds`` and report it on the console logger.

    An exception escaping the step is re-raised unchanged, tagged with the step and day
    (:func:`setlist.steps.failed_step`) so the command layer can say which tables were being written.
    """
    step = steps.get(step) if isinstance(step, str) else step
    started = time.perf_counter()
    try:
        result = step.function()(spark, cfg, ds, run_id)
    except Exception as exc:
        steps.tag_failure(exc, step, ds)
        raise
    # A step may skip before creating a table it writes (train_ranker without enough history).
    rows = {table: lake.last_write_rows(spark, cfg, table) for table in step.output_tables(cfg)
            if lake.table_exists(spark, cfg, table)}
    report = StepReport(step.name, ds, time.perf_counter() - started, rows,
                        step.outcome(result) if step.outcome and result is not None else None, result)
    (console if announce else log).info(report.line())
    return report


def day_line(ds: str, reports: list[StepReport]) -> str:
    """One line for a day: the rows of the tables a reader cares about, the model, the time."""
    written = {table: n for r in reports for table, n in r.rows.items()}
    shown = [f"{written[t]:,} {t}" for t in ("listens", "quarantined_events", "candidates", "ranked_recs")
             if t in written]
    # The ranker's status word only (its reasons are in the step line, with --verbose).
    outcomes = [f"ranker {r.outcome.split(':')[0]}" if r.step == "train_ranker" else r.outcome
                for r in reports if r.outcome and r.step in ("train_ranker", "publish")]
    slowest = sorted(reports, key=lambda r: -r.seconds)[:3]
    return (f"{ds}: {', '.join(shown)}; {'; '.join(outcomes)} in {sum(r.seconds for r in reports):.0f} s "
            f"(slowest: {', '.join(f'{r.step} {r.seconds:.0f} s' for r in slowest)})")


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> list[StepReport]:
    """Run the whole chain for ``ds``, in order; ``mark_complete`` (the last step) marks it done."""
    reports = [run_step(spark, cfg, step, ds, run_id, announce=False) for step in steps.chain(cfg)]
    console.info(day_line(ds, reports))
    return reports


def time_table(by_day: dict[str, list[StepReport]]) -> str:
    """Seconds per step (rows) and day (columns), with totals."""
    days = list(by_day)
    names = list(dict.fromkeys(r.step for reports in by_day.values() for r in reports))
    seconds = {(d, r.step): r.seconds for d, reports in by_day.items() for r in reports}
    lines = [f"{'seconds':20}" + "".join(f"{d[5:]:>7}" for d in days) + f"{'total':>8}"]
    for name in names + ["total"]:
        row = [sum(v for (d2, n), v in seconds.items() if d2 == d and (n == name or name == "total"))
               for d in days]
        lines.append(f"{name:20}" + "".join(f"{v:7.1f}" for v in row) + f"{sum(row):8.1f}")
    return "\n".join(lines)


def mark_complete(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str,
                  step_names: list[str] | None = None) -> None:
    """Record ``ds`` as complete in ``pipeline_runs``: what backfill checks before rerunning a day.

    The last step of the chain, whether the daily run or the scheduler runs it. ``step_names``
    (recorded with the marker) defaults to the chain's steps before this one.
    """
    if step_names is None:
        step_names = [step.name for step in steps.chain(cfg) if step.name != "mark_complete"]
    marker = spark.createDataFrame([(ds, run_id, ",".join(step_names))], "ds string, run_id string, steps string")
    lake.write_partition(marker, cfg, cfg.tables.pipeline_runs, ds, run_id)


def completed_days(spark: SparkSession, cfg: SetlistConfig) -> set[str]:
    if not lake.table_exists(spark, cfg, cfg.tables.pipeline_runs):
        return set()
    runs = lake.read_table(spark, cfg, cfg.tables.pipeline_runs)
    return {row["ds"] for row in runs.select("ds").distinct().collect()}


def days_between(start: str, end: str) -> list[str]:
    first, last = (dt.date.fromisoformat(d) for d in (start, end))
    if last < first:
        raise SetlistError(f"backfill: end {end} is before start {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def backfill(spark: SparkSession, cfg: SetlistConfig, start: str, end: str, run_id: str,
             rerun_complete: bool = False) -> list[str]:
    """Run every day in [start, end] in order, skipping complete ones; returns the days run.

    A failure stops the backfill at that day (later days depend on it); running
    the same command again resumes there. A progress bar counts the days on a terminal.
    """
    done = set() if rerun_complete else completed_days(spark, cfg)
    days = days_between(start, end)
    todo = [ds for ds in days if ds not in done]
    if len(todo) < len(days):
        console.info("backfill %s..%s: %d complete day(s) skipped", start, end, len(days) - len(todo))
    by_day = {}
    for ds in tqdm(todo, desc="backfill", unit="day", disable=None, leave=False):
        by_day[ds] = run(spark, cfg, ds, f"{run_id}-{ds}")
    if by_day:
        console.info(time_table(by_day))
    return todo
