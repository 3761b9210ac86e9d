"""spark-submit jobs/import_public.py --dataset {hetrec,s3rec,movielens1m,movielens100k} --path DIR
[--set paths.lake=data/lake_hetrec] [--conf f.yaml] [--set key=value]"""
import sys
from pathlib import Path

try:
    import setlist  # noqa: F401
except ImportError:  # running from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from setlist import cli
from setlist.pipeline import import_public
from setlist.spark import build_session


def main() -> None:
    parser = cli.job_parser(__doc__, with_ds=False)
    parser.add_argument("--dataset", required=True, choices=import_public.DATASETS)
    parser.add_argument("--path", required=True, help="folder holding the data set's files")
    args, cfg = cli.parse(parser)
    import_public.run(build_session(cfg.spark), cfg, args.dataset, args.path, args.run_id)


if __name__ == "__main__":
    cli.run_job(main)
