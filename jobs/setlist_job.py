"""spark-submit jobs/setlist_job.py COMMAND [--ds yyyy-MM-dd] [--conf f.yaml] [--set key=value] ...

The ``setlist`` command under spark-submit: the same subcommands (``setlist --help`` lists them),
e.g. ``spark-submit jobs/setlist_job.py daily --ds 2026-11-07``.
"""
from setlist.cli import main

if __name__ == "__main__":
    main()
