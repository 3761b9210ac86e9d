"""The ``setlist`` command: every step of the daily chain as a subcommand, and the commands around it.

    setlist <step> --ds yyyy-MM-dd [--conf f.yaml]... [--set key=value]... [--run-id ID]
    setlist daily --ds yyyy-MM-dd                    the whole chain for one day
    setlist backfill --start D --end D [--rerun-complete]
    setlist generate-events | import-public | summary | run-public | steps

``spark-submit jobs/setlist_job.py <command> ...`` runs the same command under spark-submit.
The step subcommands come from :mod:`setlist.steps`. Each command parses its arguments, loads
the config and calls one pipeline function; a failure ends with one line on stderr and the exit
code of its kind (the ``EXIT_*`` constants); an unexpected error keeps its traceback.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import uuid
from typing import Callable

from tqdm import tqdm

from setlist import steps
from setlist.config import SetlistConfig, load_config
from setlist.errors import ConfigError, SetlistError

EXIT_ERROR = 1              # Setlist's own errors: bad input, a missing table, an unreachable store
EXIT_CONFIG = 2             # a config file, key or value (and argparse's usage errors)
EXIT_GATE_REFUSED = 3       # train_ranker --fail-on-refusal, when the gate refused the new model
EXIT_CONCURRENT_WRITE = 4   # Delta refused the commit: another run wrote the same table meanwhile
EXIT_OUT_OF_MEMORY = 5      # a Spark JVM ran out of memory
EXIT_SPARK_UNAVAILABLE = 6  # Spark could not start, or its JVM stopped answering

# Delta's optimistic-concurrency conflicts (io.delta.exceptions.*): another commit won the race.
DELTA_CONFLICTS = ("ConcurrentAppendException", "ConcurrentWriteException", "ConcurrentDeleteReadException",
                   "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
                   "MetadataChangedException", "ProtocolChangedException", "DeltaConcurrentModificationException")
OUT_OF_MEMORY = ("java.lang.OutOfMemoryError", "Java heap space", "GC overhead limit exceeded")
SPARK_UNAVAILABLE = ("JAVA_GATEWAY_EXITED", "Java gateway process exited", "Py4JNetworkError",
                     "Answer from Java side is empty")
# Libraries that log at INFO by default; the console keeps their warnings only.
QUIET_LOGGERS = ("py4j", "mlflow", "alembic", "urllib3", "matplotlib", "botocore", "lightgbm")


# --------------------------------------------------------------------------- arguments

def valid_ds(value: str) -> str:
    """A run date as yyyy-MM-dd (argparse names the flag in front of the message)."""
    try:
        dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; expected yyyy-MM-dd (e.g. 2026-11-07)") from None
    return value


def _common(parser: argparse.ArgumentParser, conf_help: str = "default conf/default.yaml") -> argparse.ArgumentParser:
    parser.add_argument("--conf", action="append", default=None, metavar="FILE",
                        help=f"config YAML (repeatable, later files win; {conf_help})")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="dotted config override (repeatable), e.g. ranking.num_leaves=63")
    parser.add_argument("--run-id", default=None,
                        help="id of this logical run; a retry with the same id is not applied twice "
                             "(default: a new random id)")
    parser.add_argument("-v", "--verbose", action="store_true", help="Setlist's own INFO logging too")
    return parser


def _with_ds(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--ds", required=True, type=valid_ds, help="run date, yyyy-MM-dd (never the clock)")
    return _common(parser)


def _describe(step: steps.Step) -> str:
    reads = ", ".join(step.reads) or ("the day's raw events" if step.name == "ingest" else "nothing")
    writes = ", ".join(step.writes) or "no table"
    return f"{step.summary[0].upper()}{step.summary[1:]}. Reads {reads}; writes {writes} (day ds)."


def command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="setlist", description="Setlist: daily music recommendations on Spark and Delta Lake.",
        epilog="Run `setlist COMMAND --help` for a command's options. Under spark-submit: "
               "spark-submit jobs/setlist_job.py COMMAND ...")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for step in steps.STEPS:
        sub = _with_ds(commands.add_parser(step.name, help=step.summary, description=_describe(step)))
        if step.name == "train_ranker":
            sub.add_argument("--fail-on-refusal", action="store_true",
                             help=f"exit {EXIT_GATE_REFUSED} when the gate refuses the new model "
                                  "(default: exit 0, the champion keeps serving)")
        sub.set_defaults(handler=_run_step, step=step.name)

    _with_ds(commands.add_parser(
        "daily", help="the whole chain for one day: " + " -> ".join(steps.NAMES),
        description="Run every step of the daily chain for one day, in order (train_ranker only with "
                    "ranking.train_in_daily); mark_complete records the day in pipeline_runs last.")
    ).set_defaults(handler=_daily)

    backfill = _common(commands.add_parser(
        "backfill", help="the daily chain for every day of a range, skipping complete days",
        description="Run the daily chain for each day in [--start, --end], in order, skipping days already "
                    "complete; after a failure, the same command resumes at the failed day."))
    backfill.add_argument("--start", required=True, type=valid_ds, help="first day, yyyy-MM-dd")
    backfill.add_argument("--end", required=True, type=valid_ds, help="last day, yyyy-MM-dd")
    backfill.add_argument("--rerun-complete", action="store_true", help="run complete days again too")
    backfill.set_defaults(handler=_backfill)

    generate = _common(commands.add_parser(
        "generate-events", help="write generated raw listening events to paths.raw, one folder per day",
        description="Write seeded, generated raw events for each day to paths.raw in events.input_format "
                    "and print the realism report of the first day."))
    generate.add_argument("--start-ds", type=valid_ds, default=None,
                          help="first day, yyyy-MM-dd (default generator.start_date)")
    generate.add_argument("--days", type=int, default=None, help="number of days (default generator.days)")
    generate.set_defaults(handler=_generate_events)

    public_import = _common(commands.add_parser(
        "import-public", help="import a public data set (HetRec, S3-Rec, MovieLens) into the lake",
        description="Turn a public data set's files into Setlist's tables "
                    "(see lib/setlist/importers/README.md); e.g. --set paths.lake=data/lake_hetrec."))
    public_import.add_argument("--dataset", required=True, help="hetrec, s3rec, movielens1m or movielens100k")
    public_import.add_argument("--path", required=True, help="folder holding the data set's files")
    public_import.set_defaults(handler=_import_public)

    _with_ds(commands.add_parser(
        "summary", help="print what the daily run wrote for a day",
        description="Row counts of every table for one day, the ingest audit and one user's list.")
    ).set_defaults(handler=_summary)

    public = _common(commands.add_parser(
        "run-public", help="import a public data set and publish ranked_recs for every user in it",
        description="Import DATASET from the folder PATH, train the ranker (with the gate) on a persisted "
                    "split, and publish ranked_recs for every user; prints the table's location last."),
        conf_help="applied after the defaults and the data set's profile")
    public.add_argument("dataset", metavar="DATASET", help="hetrec, movielens1m, movielens100k or s3rec")
    public.add_argument("path", metavar="PATH", help="the data set's folder")
    public.set_defaults(handler=_run_public)

    lab_parser = _with_ds(commands.add_parser(
        "lab", help="measure variants (a reward weight, a feature, a label) against the baseline, per surface",
        description="Run interactions -> candidates -> ranker for the baseline config and each variant on the "
                    "ranker's split of --ds, and print each variant's offline NDCG lift per surface with a "
                    "bootstrap 95%% CI over users; logs a parent MLflow run with a child per variant."))
    lab_parser.add_argument("--variant", action="append", required=True, metavar="NAME:KEY=VALUE[;KEY=VALUE]",
                            help="a variant: a name and config overrides (repeatable), e.g. "
                                 "saves3:rewards.save_weight=3 or truth:lab.signals=[true_affinity]")
    lab_parser.set_defaults(handler=_lab)

    ope_parser = _common(commands.add_parser(
        "ope", help="estimate a candidate ranker's value per surface from the lists logged with exploration",
        description="Off-policy evaluation: IPS, SNIPS, DM and doubly robust estimates (95% CI, effective "
                    "sample size) of serving MODEL, from ranked_recs published with publish.exploration on "
                    "between --start and --end, rewarded by the next days' listens; logged to MLflow."))
    ope_parser.add_argument("--model", required=True, metavar="MODEL",
                            help="models:/<name>/<version>, models:/<name>@<alias>, a version or an alias")
    ope_parser.add_argument("--start", required=True, type=valid_ds, help="first day of logs, yyyy-MM-dd")
    ope_parser.add_argument("--end", required=True, type=valid_ds, help="last day of logs, yyyy-MM-dd")
    ope_parser.add_argument("--gate", action="store_true",
                            help=f"exit {EXIT_GATE_REFUSED} when the model's lower bound (ope.gate_estimator) "
                                 "is below the champion's logged value")
    ope_parser.set_defaults(handler=_ope)

    _common(commands.add_parser(
        "steps", help="list the daily chain under the config: order, upstream steps, tables read and written")
    ).set_defaults(handler=_list_steps)
    return parser


# --------------------------------------------------------------------------- commands

def _config(args: argparse.Namespace) -> SetlistConfig:
    cfg = load_config(args.conf, args.overrides)
    args.cfg = cfg  # for the failure message: the tables a step writes under this config
    return cfg


def _session(cfg: SetlistConfig):
    from setlist.spark import build_session
    return build_session(cfg.spark)


def _run_id(args: argparse.Namespace) -> str:
    return args.run_id or uuid.uuid4().hex


def _run_step(args: argparse.Namespace) -> int:
    from setlist.pipeline import daily
    cfg = _config(args)
    report = daily.run_step(_session(cfg), cfg, args.step, args.ds, _run_id(args))
    if args.step == "train_ranker" and args.fail_on_refusal:
        from setlist.pipeline.train_ranker import REFUSED
        if report.result.status == REFUSED:
            return EXIT_GATE_REFUSED
    return 0


def _daily(args: argparse.Namespace) -> int:
    from setlist.pipeline import daily
    cfg = _config(args)
    reports = daily.run(_session(cfg), cfg, args.ds, _run_id(args))
    print(f"daily {args.ds}: {len(reports)} steps in {sum(r.seconds for r in reports):.1f} s")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from setlist.pipeline import daily
    cfg = _config(args)
    ran = daily.backfill(_session(cfg), cfg, args.start, args.end, _run_id(args), args.rerun_complete)
    print(f"backfill {args.start}..{args.end}: ran {len(ran)} day(s): {', '.join(ran) or 'none'}")
    return 0


def _generate_events(args: argparse.Namespace) -> int:
    from setlist.pipeline import generate_events
    generate_events.run(_config(args), args.start_ds, args.days)
    return 0


def _import_public(args: argparse.Namespace) -> int:
    from setlist.pipeline import import_public
    if args.dataset not in import_public.DATASETS:
        raise SetlistError(f"--dataset {args.dataset!r}: expected one of {', '.join(import_public.DATASETS)}")
    cfg = _config(args)
    import_public.run(_session(cfg), cfg, args.dataset, args.path, _run_id(args))
    return 0


def _summary(args: argparse.Namespace) -> int:
    from setlist.pipeline import summary
    cfg = _config(args)
    print(summary.run(_session(cfg), cfg, args.ds))
    return 0


def _run_public(args: argparse.Namespace) -> int:
    from setlist.pipeline import run_public
    cfg = load_config(run_public.config_files(args.dataset, args.conf), args.overrides)
    args.cfg = cfg
    print(run_public.run(_session(cfg), cfg, args.dataset, args.path, _run_id(args)))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from setlist import lab
    from setlist.pipeline import lab as lab_step
    cfg = _config(args)
    variants = [lab_step.parse_variant(text) for text in args.variant]
    for variant in variants:  # every variant's keys checked before Spark starts
        lab_step.variant_config(args.conf, args.overrides, variant)
    lifts, best = lab_step.run(_session(cfg), cfg, args.conf, args.overrides, variants, args.ds, _run_id(args))
    print(lab.lift_table(lifts, cfg.evaluation.ranking_k))
    print(f"winner: {best}" if best else "winner: none (no variant's CI over all surfaces is above 0)")
    return 0


def _ope(args: argparse.Namespace) -> int:
    from setlist.errors import GateRefused
    from setlist.pipeline import ope
    cfg = _config(args)
    try:
        estimates = ope.run(_session(cfg), cfg, args.model, args.start, args.end, args.gate, _run_id(args))
    except GateRefused as exc:
        print(f"setlist ope: {exc}", file=sys.stderr)
        return EXIT_GATE_REFUSED
    print(ope.format_table(estimates))
    return 0


def _list_steps(args: argparse.Namespace) -> int:
    cfg = _config(args)
    for position, step in enumerate(steps.chain(cfg), 1):
        print(f"{position}. {step.name:<19} after: {', '.join(step.after) or '-'}; "
              f"reads: {', '.join(step.input_tables(cfg)) or '-'}; writes: {', '.join(step.output_tables(cfg)) or '-'}")
    return 0


# --------------------------------------------------------------------------- failures and the console

def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain_failure(exc: BaseException, cfg: SetlistConfig | None = None) -> tuple[int, str] | None:
    """(exit code, one line saying what happened and what to do) for a known Delta or Spark failure.

    Recognised by class name or message anywhere in the exception's chain: pyspark converts
    Java exceptions into Python ones whose text carries the Java class (e.g.
    ``io.delta.exceptions.ConcurrentAppendException``). None for anything else.
    """
    text = "\n".join(f"{type(e).__module__}.{type(e).__name__}: {e}" for e in _causes(exc))
    where = steps.failed_step(exc)
    prefix = f"{where[0]} {where[1]}: " if where else ""
    conflict = next((name for name in DELTA_CONFLICTS if name in text), None)
    if conflict:
        if where:
            step = steps.get(where[0])
            tables = step.output_tables(cfg) if cfg is not None else list(step.writes)
            what = f"this day of {', '.join(tables)}" if tables else "the same table"
        else:
            what = "the same table"
        return EXIT_CONCURRENT_WRITE, (f"{prefix}another run wrote {what} at the same time ({conflict}); "
                                       f"rerun if it was not yours")
    if any(marker in text for marker in OUT_OF_MEMORY):
        return EXIT_OUT_OF_MEMORY, (f"{prefix}Spark ran out of memory; give it more (--set spark.driver_memory=8g, "
                                    f"or spark.conf.spark.executor.memory on a cluster) and rerun")
    if any(marker in text for marker in SPARK_UNAVAILABLE):
        return EXIT_SPARK_UNAVAILABLE, (f"{prefix}Spark could not start or its JVM stopped answering; check Java "
                                        f"(JAVA_HOME, java -version) and the Spark messages above, then rerun")
    return None


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command; a known failure becomes one line on stderr and its exit code."""
    name = f"setlist {args.command}"
    try:
        return command(args) or 0
    except ConfigError as exc:
        print(f"{name}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SetlistError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        known = explain_failure(exc, getattr(args, "cfg", None))
        if known is None:
            raise
        code, message = known
        print(f"{name}: error: {message}", file=sys.stderr)
        return code


class _ConsoleHandler(logging.Handler):
    """Step lines on stdout, written around any progress bar on the terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def configure_logging(verbose: bool = False) -> None:
    """WARNING for libraries, the ``setlist.console`` lines on stdout, Setlist's INFO with ``verbose``."""
    # MLflow sets its own logger's level from this when it is imported.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("setlist").setLevel(logging.INFO if verbose else logging.WARNING)
    console = logging.getLogger("setlist.console")
    console.setLevel(logging.INFO)
    console.propagate = False
    if not any(isinstance(h, _ConsoleHandler) for h in console.handlers):
        console.addHandler(_ConsoleHandler())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``setlist`` console script and of ``jobs/setlist_job.py``."""
    args = command_parser().parse_args(argv)
    configure_logging(args.verbose)
    sys.exit(run_command(args.handler, args))


if __name__ == "__main__":
    main()
