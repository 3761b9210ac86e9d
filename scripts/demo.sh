#!/usr/bin/env bash
# Sets up, generates a week of listening events and runs the daily chain for each day
# (ingest -> interactions -> candidates -> next_tracks -> assign_experiments -> train_ranker -> publish ->
# analyze_experiment -> mark_complete; `setlist steps` lists it) on the embedded default: local
# Spark, a Delta lake in data/lake, an MLflow store in data/. Extra args go to every command (--set k=v).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source .venv/bin/activate
START="${SETLIST_START:-2026-11-01}"
DAYS="${SETLIST_DAYS:-7}"
END="$(python -c "import datetime as d; print(d.date.fromisoformat('$START') + d.timedelta(days=$DAYS - 1))")"
setlist generate-events --start-ds "$START" --days "$DAYS" "$@"
setlist backfill --start "$START" --end "$END" "$@"
setlist summary --ds "$END" "$@"
