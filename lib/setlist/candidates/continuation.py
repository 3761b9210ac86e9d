"""Continuations: what users play next after a track, and the candidates that follow from it.

Batch Setlist cannot see a live session, so it publishes, per seed track, the ranked tracks
listeners went on to (``next_tracks``); a player looks the table up at play time. The same
transitions give the ``continuation`` candidate source: the continuations of a user's most
rewarded tracks, which is what Now Playing needs.

A session breaks where a play starts more than ``session_gap_minutes`` after the previous one
stopped. A transition a -> b is a play of b among the next ``window_plays`` plays after a play
of a in its session, b listened past ``listen_threshold_s``; it counts 1 / d at distance d (the
very next play counts 1), so the direct successor dominates while the plays after it add
evidence where the log is sparse. It is directed: a -> b is counted apart from b -> a, which is
what separates a continuation from symmetric co-listening. With c(a, b) the summed weights and
n(a) the plays of a followed by anything in the session:

    score(a -> b) = c(a, b) / (n(a) + shrinkage)     (close to P(next = b | now = a))
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS, played_pairs, top_n_per_user
from setlist.config import ContinuationConfig
from setlist.rewards import listened_past

SOURCE = "continuation"
NEXT_TRACKS_COLUMNS = ["seed_track_id", "rank", "track_id", "score", "transitions"]


def _sessions(listens: DataFrame, cfg: ContinuationConfig, keep: tuple[str, ...] = ()) -> DataFrame:
    """Listens -> (user_id, track_id, ts, *keep, _listened, _session): a play opens a new session
    when it starts more than ``session_gap_minutes`` after the previous play stopped."""
    by_time = Window.partitionBy("user_id").orderBy("ts", "track_id")
    start_s = F.col("ts").cast("double") - F.col("ms_played") / F.lit(1000.0)
    gap_s = start_s - F.lag(F.col("ts").cast("double")).over(by_time)
    new_session = F.when(gap_s.isNull() | (gap_s > cfg.session_gap_minutes * 60.0), 1).otherwise(0)
    return (listens.select("user_id", "track_id", "ts", *keep, new_session.alias("_new"),
                           listened_past(cfg.listen_threshold_s).alias("_listened"))
            .withColumn("_session", F.sum("_new").over(by_time.rowsBetween(Window.unboundedPreceding, 0))))


def _in_session() -> WindowSpec:
    """Plays of one session in order (built per call: a Window needs the active Spark session)."""
    return Window.partitionBy("user_id", "_session").orderBy("ts", "track_id")


def consecutive_plays(listens: DataFrame, cfg: ContinuationConfig, keep: tuple[str, ...] = ()) -> DataFrame:
    """Listens -> (user_id, seed_track_id, track_id, listened, *keep): each play with the play
    before it in the same session (plays that open a session have none and are left out);
    ``keep``: columns of the (second) play to carry along."""
    return (_sessions(listens, cfg, keep)
            .withColumn("seed_track_id", F.lag("track_id").over(_in_session()))
            .where(F.col("seed_track_id").isNotNull() & (F.col("seed_track_id") != F.col("track_id")))
            .select("user_id", "seed_track_id", "track_id", F.col("_listened").alias("listened"), *keep))


def forward_plays(listens: DataFrame, cfg: ContinuationConfig) -> DataFrame:
    """Listens -> (seed_track_id, track_id, listened, weight): each play with each of the next
    ``window_plays`` plays of its session, with ``listened`` and weight 1 / distance (rows of
    weight 1, the very next plays, also give n(a))."""
    sessions = _sessions(listens, cfg)
    following = F.array(*[F.struct(F.lead("track_id", d).over(_in_session()).alias("track_id"),
                                   F.lead("_listened", d).over(_in_session()).alias("listened"),
                                   F.lit(1.0 / d).alias("weight")) for d in range(1, cfg.window_plays + 1)])
    return (sessions.select(F.col("track_id").alias("seed_track_id"), following.alias("_following"))
            .select("seed_track_id", F.explode("_following").alias("_next"))
            .where(F.col("_next.track_id").isNotNull())
            .select("seed_track_id", F.col("_next.track_id").alias("track_id"),
                    F.col("_next.listened").alias("listened"), F.col("_next.weight").alias("weight")))


def next_tracks(listens: DataFrame, cfg: ContinuationConfig) -> DataFrame:
    """Listens -> ``NEXT_TRACKS_COLUMNS``: per seed track its ``tracks_per_seed`` best
    continuations, rank 1.. by score (ties by track id); ``transitions`` = direct successions."""
    pairs = forward_plays(listens, cfg)
    seeds = (pairs.where(F.col("weight") == 1.0).groupBy("seed_track_id")
             .agg(F.count(F.lit(1)).alias("_followed")))
    counts = (pairs.where(F.col("listened") & (F.col("seed_track_id") != F.col("track_id")))
              .groupBy("seed_track_id", "track_id")
              .agg(F.sum("weight").alias("_weight"), F.count(F.when(F.col("weight") == 1.0, True)).alias("transitions"))
              .where(F.col("_weight") >= cfg.min_transitions))
    by_seed = Window.partitionBy("seed_track_id").orderBy(F.desc("score"), F.asc("track_id"))
    return (counts.join(seeds, on="seed_track_id", how="inner")
            .withColumn("score", (F.col("_weight") / (F.col("_followed") + F.lit(cfg.shrinkage))).cast("double"))
            .withColumn("rank", F.row_number().over(by_seed))
            .where(F.col("rank") <= cfg.tracks_per_seed)
            .select("seed_track_id", F.col("rank").cast("int").alias("rank"), "track_id", "score",
                    F.col("transitions").cast("long").alias("transitions")))


def continuation_candidates(interactions: DataFrame, listens: DataFrame | None,
                            cfg: ContinuationConfig) -> DataFrame:
    """Each user's ``seed_tracks`` most rewarded tracks -> their continuations, scored by
    sum(seed reward x continuation score). ``CANDIDATE_COLUMNS``; empty for count data (no plays
    in order, so no continuation)."""
    if listens is None:
        return interactions.sparkSession.createDataFrame([], "user_id string, track_id string, source string, "
                                                             "source_score double, source_rank int")
    by_user = Window.partitionBy("user_id").orderBy(F.desc("reward"), F.asc("track_id"))
    seeds = (interactions.where(F.col("reward") > 0)
             .withColumn("_seed_rank", F.row_number().over(by_user))
             .where(F.col("_seed_rank") <= cfg.seed_tracks)
             .select("user_id", F.col("track_id").alias("seed_track_id"), F.col("reward").alias("_seed_weight")))
    scored = (seeds.join(next_tracks(listens, cfg).select("seed_track_id", "track_id", "score")
                         .withColumnRenamed("score", "_next"), on="seed_track_id", how="inner")
              .groupBy("user_id", "track_id").agg(F.sum(F.col("_seed_weight") * F.col("_next")).alias("score")))
    if cfg.exclude_played:
        scored = scored.join(played_pairs(interactions), on=["user_id", "track_id"], how="left_anti")
    return top_n_per_user(scored, SOURCE, cfg.top_n).select(*CANDIDATE_COLUMNS)
