"""spark-submit jobs/backfill.py --start yyyy-MM-dd --end yyyy-MM-dd [--rerun-complete]

Runs the daily pipeline for each day in the range, skipping days already complete,
so a failed backfill resumes where it stopped when run again.
"""
import sys
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from setlist import cli
from setlist.pipeline import daily
from setlist.spark import build_session


def main() -> None:
    parser = cli.job_parser(__doc__, with_ds=False)
    parser.add_argument("--start", required=True, type=cli.valid_ds)
    parser.add_argument("--end", required=True, type=cli.valid_ds)
    parser.add_argument("--rerun-complete", action="store_true", help="run complete days again too")
    args, cfg = cli.parse(parser)
    ran = daily.backfill(build_session(cfg.spark), cfg, args.start, args.end, args.run_id, args.rerun_complete)
    print(f"backfill {args.start}..{args.end}: ran {len(ran)} day(s): {', '.join(ran) or 'none'}")


if __name__ == "__main__":
    cli.run_job(main)
