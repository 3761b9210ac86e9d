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

# spark-submit does not apply the session builder's JAR settings (the JVM is already up),
# so register Delta and this virtualenv's Python in the installed Spark's defaults.
SPARK_HOME_DIR="$(.venv/bin/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')"
mkdir -p "$SPARK_HOME_DIR/conf"
{
  echo "# written by setlist scripts/setup.sh"
  echo "spark.jars $(ls "$PWD"/.cache/jars/*.jar | paste -sd, -)"
  echo "spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension"
  echo "spark.sql.catalog.spark_catalog org.apache.spark.sql.delta.catalog.DeltaCatalog"
  echo "spark.pyspark.python $PWD/.venv/bin/python"
  echo "spark.pyspark.driver.python $PWD/.venv/bin/python"
} > "$SPARK_HOME_DIR/conf/spark-defaults.conf"

# Airflow 3 in its own virtualenv: its pins fight ours. uv installs it in seconds, so always
# (SETLIST_AIRFLOW=0 skips it). tests/test_airflow_dags.py runs Airflow from here.
AIRFLOW_VERSION="3.3.2"
if [ "${SETLIST_AIRFLOW:-1}" != 0 ]; then
  [ -x .venv-airflow/bin/python ] || $UV venv --quiet -p "$PYTHON" .venv-airflow
  $UV pip install --quiet -p .venv-airflow/bin/python "apache-airflow==${AIRFLOW_VERSION}" "pydantic>=2.7,<3" pyyaml
  echo "setup: .venv-airflow ready (Airflow $(.venv-airflow/bin/python -c 'import airflow; print(airflow.__version__)'))"
fi
