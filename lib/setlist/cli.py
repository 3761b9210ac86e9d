"""Shared command-line handling for jobs: --ds, --conf, --set, --run-id."""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import uuid

from setlist.config import SetlistConfig, load_config
from setlist.errors import SetlistError


def valid_ds(value: str) -> str:
    try:
        dt.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ds {value!r}: expected a date as yyyy-MM-dd") from None
    return value


def job_parser(description: str, with_ds: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    if with_ds:
        parser.add_argument("--ds", required=True, type=valid_ds, help="run date, yyyy-MM-dd")
    parser.add_argument("--conf", action="append", default=None,
                        help="config YAML (repeatable; default conf/default.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="dotted config override, e.g. rewards.skip_weight=-1")
    parser.add_argument("--run-id", default=None,
                        help="id of this logical run; a retry with the same id is not applied twice")
    return parser


def parse(parser: argparse.ArgumentParser, argv=None) -> tuple[argparse.Namespace, SetlistConfig]:
    """Parse arguments and load config; a config error exits with its message (exit 2)."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.conf, args.overrides)
    except SetlistError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    if getattr(args, "run_id", None) is None:
        args.run_id = uuid.uuid4().hex
    return args, cfg


def run_job(main) -> None:
    """Run ``main()``; our own errors end the job with their message and exit code 1."""
    try:
        main()
    except SetlistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


# --------------------------------------------------------------------------- the setlist command

def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--conf", action="append", default=None,
                        help="config YAML (repeatable; applied after the defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="dotted config override, e.g. ranking.num_leaves=63")
    parser.add_argument("--run-id", default=None,
                        help="id of this logical run; a retry with the same id is not applied twice")
    return parser


def command_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="setlist", description="Setlist: daily music recommendations on Spark.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    public = _common(commands.add_parser(
        "run-public", help="import a public data set and publish ranked_recs for every user in it",
        description="Import DATASET from the folder PATH, train the ranker (with the gate) on a persisted "
                    "split, and publish ranked_recs for every user; prints the table's location last."))
    public.add_argument("dataset", metavar="DATASET", help="hetrec, movielens1m, movielens100k or s3rec")
    public.add_argument("path", metavar="PATH", help="the data set's folder")
    return parser


def _run_public(args: argparse.Namespace) -> None:
    from setlist.pipeline import run_public
    from setlist.spark import build_session

    cfg = load_config(run_public.config_files(args.dataset, args.conf), args.overrides)
    spark = build_session(cfg.spark)
    print(run_public.run(spark, cfg, args.dataset, args.path, args.run_id or uuid.uuid4().hex))


COMMANDS = {"run-public": _run_public}


def main(argv=None) -> None:
    """Entry point of the ``setlist`` console script."""
    args = command_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_job(lambda: COMMANDS[args.command](args))


if __name__ == "__main__":
    main()
