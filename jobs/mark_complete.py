"""spark-submit jobs/mark_complete.py --ds yyyy-MM-dd: records the day as complete in pipeline_runs.

The last task of a scheduled daily run, so that jobs/backfill.py skips days Airflow already ran.
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
    args, cfg = cli.parse(cli.job_parser(__doc__))
    daily.mark_complete(build_session(cfg.spark), cfg, args.ds, args.run_id, [s.name for s in cfg.airflow.steps])


if __name__ == "__main__":
    cli.run_job(main)
