#!/usr/bin/env bash
# Sets up, generates a week of listening events and runs the daily pipeline for each day
# (ingest -> interactions -> candidates -> publish) on the embedded default: local Spark,
# a Delta lake in data/lake, an MLflow store in data/. Extra args go to every job (--set k=v).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
START="${SETLIST_START:-2026-11-01}"
DAYS="${SETLIST_DAYS:-7}"
END="$(python -c "import datetime as d; print(d.date.fromisoformat('$START') + d.timedelta(days=$DAYS - 1))")"
python jobs/generate_events.py --start-ds "$START" --days "$DAYS" "$@"
spark-submit jobs/backfill.py --start "$START" --end "$END" "$@"
spark-submit jobs/summary.py --ds "$END" "$@"
