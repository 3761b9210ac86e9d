"""Listens -> per-user play sequences, the sequential model's input (pure Spark transforms).

A sequence record (one row per user) holds the user's latest plays, oldest first, as parallel
arrays: ``track_ids``, ``items`` (vocabulary indices: model.FIRST_ITEM.. for known tracks,
model.UNKNOWN for a track the vocabulary lacks), ``surfaces`` (1-based index in
``events.surfaces``, 0 = not listed), ``outcomes`` (2 a listen past ``rewards.listen_threshold_s``,
1 otherwise), ``rewards`` (``rewards.event_reward``) and ``gaps`` (seconds since the user's
previous play, 0 for the first), plus ``plays`` and ``unknown_items`` counts. Plays are ordered by
time, then event_id, so reruns agree.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.config import RewardsConfig
from setlist.rewards import event_reward, is_listen
from setlist.sequential.codes import FIRST_ITEM, LISTENED, SKIPPED, UNKNOWN

SEQUENCE_ARRAYS = ["track_ids", "items", "surfaces", "outcomes", "rewards", "gaps"]


def item_vocabulary(listens: DataFrame) -> DataFrame:
    """Distinct tracks -> (track_id, item_index), indices FIRST_ITEM.. in track_id order."""
    # zipWithIndex numbers a sorted RDD across its partitions; a row_number over an unpartitioned
    # window would move the whole catalogue into one task.
    tracks = listens.select("track_id").distinct().orderBy("track_id")
    numbered = tracks.rdd.zipWithIndex().map(lambda pair: (pair[0][0], pair[1] + FIRST_ITEM))
    return listens.sparkSession.createDataFrame(numbered, "track_id string, item_index int")


def play_sequences(listens: DataFrame, vocabulary: DataFrame, surfaces: list[str], rewards: RewardsConfig,
                   keep_plays: int) -> DataFrame:
    """Listens -> one sequence record per user with their latest ``keep_plays`` plays."""
    order = Window.partitionBy("user_id").orderBy("ts", "event_id")
    known = F.broadcast(vocabulary.select("track_id", "item_index"))
    plays = (listens.join(known, "track_id", "left")
             .withColumn("_gap", F.coalesce(F.col("ts").cast("double") - F.lag(F.col("ts").cast("double")).over(order),
                                            F.lit(0.0)))
             .select("user_id", F.struct(
                 F.col("ts").alias("ts"), F.col("event_id").alias("event_id"),
                 F.col("track_id").alias("track_id"),
                 F.coalesce("item_index", F.lit(UNKNOWN)).cast("int").alias("item"),
                 F.array_position(F.array(*[F.lit(s) for s in surfaces]), F.col("surface")).cast("byte").alias("surface"),
                 F.when(is_listen(rewards), F.lit(LISTENED)).otherwise(F.lit(SKIPPED)).cast("byte").alias("outcome"),
                 event_reward(rewards).cast("float").alias("reward"),
                 F.col("_gap").cast("float").alias("gap")).alias("_play")))
    collected = plays.groupBy("user_id").agg(F.array_sort(F.collect_list("_play")).alias("_plays"))
    latest = F.expr(f"slice(_plays, greatest(1, size(_plays) - {keep_plays} + 1), {keep_plays})")
    kept = collected.select("user_id", latest.alias("_plays"))
    return kept.select(
        "user_id",
        *[F.col(f"_plays.{field}").alias(name) for field, name in
          (("track_id", "track_ids"), ("item", "items"), ("surface", "surfaces"), ("outcome", "outcomes"),
           ("reward", "rewards"), ("gap", "gaps"))],
        F.size("_plays").cast("int").alias("plays"),
        F.size(F.filter("_plays", lambda p: p["item"] == F.lit(UNKNOWN))).cast("int").alias("unknown_items"))


def holdout_users(sequences: DataFrame, users: int, seed: int) -> DataFrame:
    """(user_id) of up to ``users`` users whose last play is a listen of a known track and who have
    at least two earlier plays: their last play is held out to validate and gate the model.
    Chosen by a seeded hash of user_id, so the same users are held out for every model of a day."""
    eligible = sequences.where((F.col("plays") >= 3) & (F.element_at("outcomes", -1) == F.lit(LISTENED))
                               & (F.element_at("items", -1) >= F.lit(FIRST_ITEM)))
    return (eligible.select("user_id", F.xxhash64("user_id", F.lit(seed)).alias("_h"))
            .orderBy("_h", "user_id").limit(users).select("user_id"))


def without_last_play(sequences: DataFrame, held_out: DataFrame) -> DataFrame:
    """Sequences with the last play removed for the ``held_out`` users (their training part)."""
    marked = sequences.join(held_out.withColumn("_held", F.lit(True)), "user_id", "left")
    trimmed = [F.when(F.col("_held").isNotNull(), F.slice(name, 1, F.size(name) - 1)).otherwise(F.col(name)).alias(name)
               for name in SEQUENCE_ARRAYS]
    plays = F.when(F.col("_held").isNotNull(), F.col("plays") - 1).otherwise(F.col("plays")).alias("plays")
    return marked.select("user_id", *trimmed, plays, "unknown_items")
