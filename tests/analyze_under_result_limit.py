"""Runs the experiment steps in a Spark session whose driver takes tiny task results.

Usage: python analyze_under_result_limit.py ROOT USERS MAX_RESULT_SIZE
``spark.driver.maxResultSize`` is fixed when a session starts, so this runs apart from the
suite's session. It writes one pre- and one post-exposure listen per user, assigns and
analyses, then tries the per-user collect the analysis used to do, and prints one JSON line:
``{"users_analysed": ..., "per_user_collect_error": <error text, or null if it came back>}``.
"""
import json
import sys
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import TEST_OVERRIDES  # noqa: E402

from setlist import lake  # noqa: E402
from setlist.config import load_config  # noqa: E402
from setlist.experiments.outcomes import user_outcomes  # noqa: E402
from setlist.pipeline import experiments  # noqa: E402
from setlist.spark import build_session  # noqa: E402

START, PRE_DAY, DAY = "2026-11-08", "2026-11-07", "2026-11-09"
EXPERIMENT = {"name": "home_ranker", "salt": "home_ranker_2026", "start_date": START,
              "allocation": {"control": 0.5, "treatment": 0.5}, "models": {"control": "champion", "treatment": 7}}


def main() -> None:
    root, users, max_result_size = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    cfg = load_config(overrides=TEST_OVERRIDES + [
        f"paths.lake={root / 'lake'}", f"paths.reports={root / 'reports'}",
        f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}", f"paths.mlflow_artifacts={root / 'mlart'}",
        "spark.conf={spark.databricks.delta.snapshotPartitions: '1', spark.default.parallelism: '2', "
        f"spark.driver.maxResultSize: '{max_result_size}'}}",
        f"experiments.experiments=[{EXPERIMENT}]".replace("'", '"')])
    spark = build_session(cfg.spark)
    user = F.format_string("user%07d", F.col("id"))
    listens = (spark.range(users, numPartitions=2)
               .crossJoin(spark.createDataFrame([(PRE_DAY,), (DAY,)], "ds string"))
               .select(user.alias("user_id"), F.to_timestamp(F.col("ds")).alias("ts"),
                       (F.lit(10_000) + F.pmod(F.hash("ds", "id"), F.lit(120_000))).alias("ms_played"),
                       F.lit(210_000).cast("long").alias("track_duration_ms"), F.lit("fwdbtn").alias("reason_end"),
                       (F.col("id") % 3 == 0).alias("skipped"), (F.col("id") % 5 == 0).alias("saved"),
                       F.lit("home").alias("surface"), "ds"))
    lake.replace_table(listens, cfg, cfg.tables.listens, "listens")
    experiments.assign(spark, cfg, DAY, "assign")
    written = experiments.analyze(spark, cfg, DAY, "analyze")
    analysed = int((written.n_control + written.n_variant).iloc[0])
    # What the step did before: every exposed user's outcomes to the driver.
    per_user = user_outcomes(lake.read_table(spark, cfg, cfg.tables.listens),
                             lake.read_table(spark, cfg, cfg.tables.experiment_assignments, DAY),
                             cfg.experiments.experiments[0], cfg.experiments, cfg.rewards, DAY)
    try:
        per_user.toPandas()
        error = None
    except Exception as exc:  # noqa: BLE001 - the error text is the result
        lines = str(exc).splitlines()
        error = next((line for line in lines if "maxResultSize" in line), lines[0])
    print(json.dumps({"users_analysed": analysed, "per_user_collect_error": error}))
    spark.stop()


if __name__ == "__main__":
    main()
