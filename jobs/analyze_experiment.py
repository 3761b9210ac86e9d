"""spark-submit jobs/analyze_experiment.py --ds yyyy-MM-dd [--conf f.yaml] [--set key=value]"""
import sys
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from setlist import cli
from setlist.pipeline import experiments
from setlist.spark import build_session


def main() -> None:
    args, cfg = cli.parse(cli.job_parser(__doc__))
    experiments.analyze(build_session(cfg.spark), cfg, args.ds, args.run_id)


if __name__ == "__main__":
    cli.run_job(main)
