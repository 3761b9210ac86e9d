#!/usr/bin/env bash
# Sets up (idempotent) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers (pytest-xdist), a file each at a time: most tests wait on a JVM, a subprocess or
# Delta's log, so two overlap well on 2 cores (README, Benchmarks). Each worker has its own
# SparkSession. Pass -n 0 to run in one process, -m 'not slow' to leave the whole-pipeline ones out.
exec .venv/bin/python -m pytest -q -n "${SETLIST_TEST_WORKERS:-2}" --dist loadfile "$@"
