"""S3-Rec "LastFM" sequences (``LastFM.txt``) -> listens-like events with synthetic times.

File format: one line per user, space-separated, ``user item_1 item_2 ...`` in time order
(the distinct artists a HetRec user tagged, 5-core filtered; ids are S3-Rec's own).

Mapping choices:

- One event per (user, position): ``user_id`` = the line's first number,
  ``track_id = artist_id`` = the item (S3-Rec items are artists; there are no tracks),
  ``event_id`` = ``s3rec-<user>-<position>``.
- **Timestamps are synthetic**: the file keeps only the order. Item k (0-based) of every
  user is stamped ``importers.synthetic_start + k * importers.synthetic_step_seconds``.
  Times increase strictly within a user and carry the order only: a global time split on
  them cuts every user at the same position, not at a real moment, and says nothing
  about real recency or time of day.
- Every event is a completed listen: ``ms_played = track_duration_ms =
  importers.track_duration_ms``, ``reason_end = trackdone``, not skipped, not saved,
  ``reason_start``/``surface``/``platform`` from ``importers`` (the file has no context).
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.config import ImportersConfig
from setlist.importers.common import as_listens, check_parsed, existing_file


def read_sequences(spark: SparkSession, path: str) -> DataFrame:
    """``LastFM.txt`` -> (user_id, track_id, position) with positions 0.. per user."""
    source = existing_file(path, "S3-Rec sequence file (LastFM.txt)")
    tokens = (spark.read.text(source)
              .where(F.trim("value") != "")
              .select(F.split(F.trim("value"), r"\s+").alias("_tokens")))
    items = F.slice("_tokens", 2, F.greatest(F.size("_tokens") - 1, F.lit(1)))
    exploded = tokens.select(F.col("_tokens")[0].alias("_user"), F.posexplode(items).alias("position", "_item"))
    parsed = exploded.select(F.col("_user").try_cast("long").cast("string").alias("user_id"),
                             F.col("_item").try_cast("long").cast("string").alias("track_id"),
                             F.col("position").cast("int"))
    return check_parsed(parsed, ["user_id", "track_id"], source)


def sequences_to_listens(sequences: DataFrame, cfg: ImportersConfig) -> DataFrame:
    """(user_id, track_id, position) -> the ``listens`` layout (see module doc)."""
    start = dt.datetime.fromisoformat(cfg.synthetic_start).replace(tzinfo=dt.timezone.utc).timestamp()
    ts = F.timestamp_seconds(F.lit(int(start)) + F.col("position").cast("long") * F.lit(cfg.synthetic_step_seconds))
    events = sequences.select(
        F.concat_ws("-", F.lit("s3rec"), "user_id", F.col("position").cast("string")).alias("event_id"),
        "user_id", "track_id", F.col("track_id").alias("artist_id"), ts.alias("ts"),
        F.lit(cfg.track_duration_ms).alias("ms_played"), F.lit(cfg.track_duration_ms).alias("track_duration_ms"),
        F.lit(cfg.reason_start).alias("reason_start"), F.lit("trackdone").alias("reason_end"),
        F.lit(cfg.surface).alias("surface"), F.lit(cfg.platform).alias("platform"),
        F.lit(False).alias("shuffle"), F.lit(False).alias("skipped"), F.lit(False).alias("saved"))
    return as_listens(events)
