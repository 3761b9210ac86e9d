#!/usr/bin/env bash
# One-shot set-up: virtualenv in .venv, Setlist with its test and bench extras, Delta and s3a JARs
# in .cache/jars, a native BLAS for Spark ML. Safe to rerun; every step is skipped or refreshed as
# needed. Extras (default all three): SETLIST_EXTRAS="test,bench,sequential".
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${SETLIST_EXTRAS:-test,bench,sequential}"
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
echo "setup: .venv ready ($(.venv/bin/python --version)), Delta JARs: $(ls .cache/jars/*.jar | wc -l) in .cache/jars"

# s3a (paths on s3a://): hadoop-aws for the Hadoop that pyspark ships, and the AWS SDK bundle.
# In a folder of their own: they go on the class path, not in spark.jars (see setlist/spark.py).
PYSPARK_JARS="$(.venv/bin/python -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
HADOOP_VERSION="$(ls "$PYSPARK_JARS" | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p')"
POM_HADOOP_VERSION="$(sed -n 's:.*<hadoop.version>\(.*\)</hadoop.version>.*:\1:p' scripts/s3a-jars.pom.xml)"
if [ "$HADOOP_VERSION" != "$POM_HADOOP_VERSION" ]; then
  echo "setup: pyspark ships Hadoop $HADOOP_VERSION but scripts/s3a-jars.pom.xml asks for $POM_HADOOP_VERSION;" \
       "set hadoop.version and the SDK versions hadoop-aws $HADOOP_VERSION pins there" >&2
  exit 1
fi
if ! ls .cache/jars/s3a/hadoop-aws-"$HADOOP_VERSION".jar .cache/jars/s3a/bundle-*.jar \
        .cache/jars/s3a/analyticsaccelerator-s3-*.jar >/dev/null 2>&1; then
  mkdir -p .cache/jars/s3a
  mvn -q -U -f scripts/s3a-jars.pom.xml dependency:copy-dependencies \
    -DexcludeTransitive=true -DoutputDirectory="$PWD/.cache/jars/s3a"
fi
echo "setup: s3a JARs: $(ls .cache/jars/s3a | paste -sd' ' -) in .cache/jars/s3a"

# spark-submit does not apply the session builder's JAR settings (the JVM is already up),
# so register Delta and this virtualenv's Python in the installed Spark's defaults.
SPARK_HOME_DIR="$(.venv/bin/python -c 'import pyspark, os; print(os.path.dirname(pyspark.__file__))')"
mkdir -p "$SPARK_HOME_DIR/conf"
{
  echo "# written by setlist scripts/setup.sh"
  echo "spark.jars $(ls "$PWD"/.cache/jars/*.jar | paste -sd, -)"
  echo "spark.sql.extensions io.delta.sql.DeltaSparkSessionExtension"
  echo "spark.sql.catalog.spark_catalog org.apache.spark.sql.delta.catalog.DeltaCatalog"
  echo "spark.driver.extraClassPath $(ls "$PWD"/.cache/jars/s3a/*.jar | paste -sd: -)"
  echo "spark.executor.extraClassPath $(ls "$PWD"/.cache/jars/s3a/*.jar | paste -sd: -)"
  echo "spark.pyspark.python $PWD/.venv/bin/python"
  echo "spark.pyspark.driver.python $PWD/.venv/bin/python"
} > "$SPARK_HOME_DIR/conf/spark-defaults.conf"
# Spark's JVM logging: warnings only from the first line (no INFO flood at start-up).
cp conf/log4j2.properties "$SPARK_HOME_DIR/conf/log4j2.properties"

# Spark ML (ALS) calls BLAS/LAPACK through netlib's JNI loader, which looks for the system's
# libblas.so.3 / liblapack.so.3 and otherwise falls back to Java (measured slower, bench/als.py
# prints which one ran). Debian's OpenBLAS provides both; installed when set-up may (root with
# apt-get), else named. SETLIST_NATIVE_BLAS=0 skips this.
if [ "${SETLIST_NATIVE_BLAS:-1}" != 0 ]; then
  if ldconfig -p 2>/dev/null | grep -q 'libblas\.so\.3 ' && ldconfig -p 2>/dev/null | grep -q 'liblapack\.so\.3 '; then
    echo "setup: native BLAS: $(readlink -f "$(ldconfig -p | sed -n 's/.*libblas\.so\.3 .*=> //p' | head -1)")"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas0-pthread) >/dev/null 2>&1 \
      && echo "setup: installed native BLAS (Debian libopenblas0-pthread)" \
      || echo "setup: could not install libopenblas0-pthread; Spark ML uses its Java BLAS" >&2
  else
    echo "setup: no libblas.so.3/liblapack.so.3 found; Spark ML uses its Java BLAS" \
         "(install OpenBLAS, e.g. 'apt-get install libopenblas0-pthread', for the native one)" >&2
  fi
fi

# Airflow 3 in its own virtualenv: its pins fight ours. uv installs it in seconds, so always
# (SETLIST_AIRFLOW=0 skips it). tests/test_airflow_dags.py runs Airflow from here.
AIRFLOW_VERSION="3.3.2"
if [ "${SETLIST_AIRFLOW:-1}" != 0 ]; then
  [ -x .venv-airflow/bin/python ] || $UV venv --quiet -p "$PYTHON" .venv-airflow
  $UV pip install --quiet -p .venv-airflow/bin/python "apache-airflow==${AIRFLOW_VERSION}" "pydantic>=2.7,<3" pyyaml
  # The DAG imports Setlist's step registry and config, which need only pydantic and PyYAML.
  $UV pip install --quiet -p .venv-airflow/bin/python --no-deps -e .
  echo "setup: .venv-airflow ready (Airflow $(.venv-airflow/bin/python -c 'import airflow; print(airflow.__version__)'))"
fi
