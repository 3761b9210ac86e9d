"""spark-submit jobs/train_ranker.py --ds yyyy-MM-dd [--conf f.yaml] [--set key=value]

Trains, registers and gates a ranker (setlist.pipeline.train_ranker) and prints its status
(promoted / refused / skipped). A refusal leaves the champion serving and exits 0, so a scheduler
still runs publish after it; with --fail-on-refusal it exits 3. An error exits 1.
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
    parser = cli.job_parser(__doc__)
    parser.add_argument("--fail-on-refusal", action="store_true",
                        help=f"exit {GATE_REFUSED_EXIT} when the gate refuses the new model")
    args, cfg = cli.parse(parser)
    result = train_ranker.run(build_session(cfg.spark), cfg, args.ds, args.run_id)
    print(f"train_ranker {args.ds}: {result.status}: {result.message}")
    if result.status == train_ranker.REFUSED and args.fail_on_refusal:
        sys.exit(GATE_REFUSED_EXIT)


if __name__ == "__main__":
    cli.run_job(main)
