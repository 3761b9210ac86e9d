"""Publishes a day of ranked_recs slowly (a sleep per batch), so a test can kill it mid-write.

Usage: python slow_publish.py LAKE DS RUN_ID MODEL_VERSION SLEEP_PER_BATCH_S
It prints WRITING just before the Delta write starts.
"""
import sys
import time

from pyspark.sql import functions as F

from setlist.config import load_config
from setlist import lake
from setlist.publish import rank_recommendations
from setlist.spark import build_session


def slowly(seconds):
    def slow(batches):
        for batch in batches:
            time.sleep(seconds)
            yield batch
    return slow


def main():
    lake_dir, ds, run_id, model_version, sleep_s = sys.argv[1:6]
    cfg = load_config(overrides=[f"paths.lake={lake_dir}", "spark.shuffle_partitions=2",
                                 "spark.log_level=ERROR", "spark.master=local[2]"])
    spark = build_session(cfg.spark)
    scored = (spark.range(0, 4000, numPartitions=40)
              .select((F.col("id") % 100).cast("string").alias("user_id"),
                      F.col("id").cast("string").alias("track_id"),
                      F.lit("home").alias("surface"), F.col("id").cast("double").alias("score"),
                      F.array(F.lit("popularity")).alias("sources"))
              .repartition(40)
              .mapInPandas(slowly(float(sleep_s)), "user_id string, track_id string, surface string, score double, "
                                                             "sources array<string>"))
    ranked = rank_recommendations(scored, 50, model_version, ds)
    print("WRITING", flush=True)
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
