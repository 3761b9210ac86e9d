"""Listens -> what the generative retriever reads (pure Spark transforms).

A history is a user's listened plays (``rewards.is_listen``), oldest first, ties by event id so
reruns agree, as track ids: the latest ``keep`` of them. Skips are left out: the decoder writes
the next track a user will listen to, and a skipped track is not one.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from setlist.config import RewardsConfig
from setlist.rewards import is_listen


def listened_histories(listens: DataFrame, rewards: RewardsConfig, keep: int) -> DataFrame:
    """Listens -> (user_id, track_ids array<string>, plays int): the latest ``keep`` listened plays."""
    plays = (listens.where(is_listen(rewards))
             .select("user_id", F.struct("ts", "event_id", "track_id").alias("_play"))
             .groupBy("user_id").agg(F.array_sort(F.collect_list("_play")).alias("_plays")))
    latest = F.expr(f"slice(_plays, greatest(1, size(_plays) - {keep} + 1), {keep})")
    return plays.select("user_id", latest.alias("_plays")).select(
        "user_id", F.col("_plays.track_id").alias("track_ids"), F.size("_plays").cast("int").alias("plays"))


def track_content(listens: DataFrame) -> DataFrame:
    """Listens -> (track_id, artist_id): each track's content, what a never-played track's semantic
    ID comes from (the artist of its latest play; a track has one artist in valid events)."""
    latest = F.max_by("artist_id", F.struct("ts", "event_id"))
    return listens.groupBy("track_id").agg(latest.alias("artist_id"))


def known_rows(histories: DataFrame, semantic_ids: DataFrame) -> DataFrame:
    """Histories -> (user_id, rows array<int>, unknown int): each track id mapped to its row in a
    model's semantic IDs (track_id, item_index), order kept; tracks the model has no ID for are
    dropped and counted."""
    exploded = histories.select("user_id", F.posexplode("track_ids").alias("_pos", "track_id"))
    joined = exploded.join(F.broadcast(semantic_ids.select("track_id", "item_index")), "track_id", "left")
    return (joined.groupBy("user_id")
            .agg(F.array_sort(F.collect_list(F.when(F.col("item_index").isNotNull(),
                                                    F.struct("_pos", "item_index")))).alias("_rows"),
                 F.sum(F.col("item_index").isNull().cast("int")).cast("int").alias("unknown"))
            .select("user_id", F.col("_rows.item_index").cast("array<int>").alias("rows"), "unknown"))
