#!/usr/bin/env bash
# One-shot set-up: virtualenv in .venv, Setlist with its test extra, Delta JARs in .cache/jars.
# Safe to rerun; every step is skipped or refreshed as needed. Extras: SETLIST_EXTRAS="test,bench".
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${SETLIST_EXTRAS:-test}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

if ! command -v uv >/dev/null 2>&1; then
  "$PYTHON" -m pip install --quiet uv
fi
UV="$(command -v uv || echo "$PYTHON -m uv")"
[ -x .venv/bin/python ] || $UV venv --quiet -p "$PYTHON" .venv
$UV pip install --quiet -p .venv/bin/python -e ".[${EXTRAS}]"

# Spark's Ivy cannot always reach Maven Central; Maven can. Fetch Delta and the
# few JARs it needs that Spark does not ship.
if ! ls .cache/jars/delta-spark_*.jar >/dev/null 2>&1; then
  mkdir -p .cache/jars
  mvn -q -U -f scripts/delta-jars.pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/.cache/jars" \
    -DexcludeGroupIds=org.scala-lang,org.apache.hadoop,com.fasterxml.jackson.core,com.fasterxml.jackson.datatype,org.slf4j,org.apache.logging.log4j,org.apache.parquet,org.xerial.snappy,org.roaringbitmap,org.locationtech.jts,commons-logging,com.google.code.findbugs,javax.annotation,io.airlift,com.github.luben,commons-pool
fi
echo "setup: .venv ready ($(.venv/bin/python --version)), Delta JARs: $(ls .cache/jars | wc -l) in .cache/jars"
