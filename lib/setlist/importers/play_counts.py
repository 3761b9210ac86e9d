"""Pre-aggregated play counts -> the interaction matrix, beside raw events.

Many teams hold only per-(user, item) play counts (the HetRec Last.fm data set is one).
``interactions_from_play_counts`` turns such counts into the same layout that
``setlist.interactions.build_interactions`` produces from listens, so every candidate
source and the evaluation accept either input. Mapping:

- ``plays`` and ``listens`` = the play count (a count carries no play length, so every
  counted play is taken as a listen past the threshold); ``skips`` = ``saves`` = 0.
- ``reward`` = ``count_reward_scale`` * log1p(plays) by default (``count_reward: log1p``:
  repeats add less and less, as the listens-based reward does); ``linear`` = plays,
  ``binary`` = 1.
- ``first_played_ts`` / ``last_played_ts`` are null: counts carry no time, so a global
  time split and the leakage guard's time check do not apply; use the per-user hold-out.
- ``ds`` = the given run date (``importers.counts_ds`` by default).
- Rows with a count <= 0 or a null id are dropped (a count of nothing is no evidence).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist.config import ImportersConfig

PLAY_COUNTS_COLUMNS = ["user_id", "track_id", "artist_id", "plays"]
INTERACTIONS_COLUMNS = ["user_id", "track_id", "artist_id", "plays", "listens", "skips", "saves",
                        "reward", "first_played_ts", "last_played_ts", "ds"]


def count_reward(plays: Column, cfg: ImportersConfig) -> Column:
    """The reward of a play count under ``cfg.count_reward``."""
    plays = plays.cast("double")
    shape = {"log1p": F.log1p(plays), "linear": plays, "binary": F.lit(1.0)}[cfg.count_reward]
    return shape * F.lit(cfg.count_reward_scale)


def interactions_from_play_counts(counts: DataFrame, cfg: ImportersConfig, ds: str | None = None) -> DataFrame:
    """(user_id, track_id, artist_id, plays) -> the interactions layout (see module doc).

    Several rows of one (user, track) are summed first, so partial counts may be appended.
    """
    usable = (F.col("plays") > 0) & F.col("user_id").isNotNull() & F.col("track_id").isNotNull()
    summed = (counts.where(usable)
              .groupBy("user_id", "track_id")
              .agg(F.max("artist_id").alias("artist_id"), F.sum("plays").cast("long").alias("plays")))
    no_time = F.lit(None).cast("timestamp")
    return summed.select(
        F.col("user_id").cast("string"), F.col("track_id").cast("string"), F.col("artist_id").cast("string"),
        "plays", F.col("plays").alias("listens"), F.lit(0).cast("long").alias("skips"),
        F.lit(0).cast("long").alias("saves"), count_reward(F.col("plays"), cfg).alias("reward"),
        no_time.alias("first_played_ts"), no_time.alias("last_played_ts"),
        F.lit(ds or cfg.counts_ds).alias("ds"))
