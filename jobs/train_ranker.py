"""spark-submit jobs/train_ranker.py --ds yyyy-MM-dd [--conf f.yaml] [--set key=value]

Trains, registers and gates a ranker (setlist.pipeline.train_ranker). Exit status: 0 promoted
or skipped (not enough history), 3 refused by the gate (the champion stays), 1 an error.
"""
import sys
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from setlist import cli
from setlist.pipeline import train_ranker
from setlist.spark import build_session

GATE_REFUSED_EXIT = 3


def main() -> None:
    args, cfg = cli.parse(cli.job_parser(__doc__))
    result = train_ranker.run(build_session(cfg.spark), cfg, args.ds, args.run_id)
    print(f"train_ranker {args.ds}: {result.status}: {result.message}")
    if result.status == train_ranker.REFUSED:
        sys.exit(GATE_REFUSED_EXIT)


if __name__ == "__main__":
    cli.run_job(main)
