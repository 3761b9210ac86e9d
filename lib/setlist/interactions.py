"""Reward-weighted interaction matrix: listens -> one row per (user, track).

Per listen (``weigh_rewards``), the parts of the one event reward (``setlist.rewards``): a
play past the threshold earns ``listen_weight`` (plus ``completion_weight`` when the track was
nearly finished); a skip before the threshold earns ``skip_weight`` (negative). ``decay_by_age`` multiplies each
listen by 0.5 ** (age / half-life) measured from the end of the run date.
``aggregate_interactions`` then gives, per (user, track):

    reward = log_b(1 + sum of decayed listen credit)      # repeats, diminishing
           + save_weight * decay of the latest save         # a save counts once
           + sum of decayed skip penalties                  # skips count against
"""
from __future__ import annotations

import datetime as dt
import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist import rewards
from setlist.config import RewardsConfig

SECONDS_PER_DAY = 86400.0


def weigh_rewards(listens: DataFrame, cfg: RewardsConfig) -> DataFrame:
    """Adds ``is_listen``, ``is_skip``, ``listen_credit`` and ``skip_penalty`` per listen
    (``setlist.rewards``)."""
    return (listens
            .withColumn("is_listen", rewards.is_listen(cfg))
            .withColumn("is_skip", rewards.is_early_skip(cfg))
            .withColumn("listen_credit", rewards.listen_credit(cfg))
            .withColumn("skip_penalty", rewards.skip_penalty(cfg)))


def as_of_end(ds: str) -> dt.datetime:
    """The end of the run date (UTC): the moment every interaction is aged from."""
    return dt.datetime.strptime(ds, "%Y-%m-%d") + dt.timedelta(days=1)


def decay_by_age(listens: DataFrame, ds: str, half_life_days: float) -> DataFrame:
    """Adds ``decay`` = 0.5 ** (age in days / half-life), age measured to the end of ``ds``."""
    age_days = (F.lit(as_of_end(ds)).cast("double") - F.col("ts").cast("double")) / SECONDS_PER_DAY
    return listens.withColumn("decay", F.pow(F.lit(0.5), F.greatest(age_days, F.lit(0.0)) / half_life_days))


def aggregate_interactions(weighted: DataFrame, cfg: RewardsConfig) -> DataFrame:
    """Decayed, weighted listens -> (user_id, track_id, artist_id, plays, listens, skips,
    saves, reward, first_played_ts, last_played_ts)."""
    listen_credit = F.sum(F.col("listen_credit") * F.col("decay"))
    save_credit = F.coalesce(F.max(F.when(rewards.is_saved(), F.col("decay"))), F.lit(0.0))
    skip_penalty = F.sum(F.col("skip_penalty") * F.col("decay"))
    reward = (F.log(F.lit(1.0) + listen_credit) / F.lit(math.log(cfg.repeat_log_base))
              + F.lit(cfg.save_weight) * save_credit + skip_penalty)
    return (weighted.groupBy("user_id", "track_id")
            .agg(F.max_by("artist_id", "ts").alias("artist_id"),
                 F.count(F.lit(1)).alias("plays"),
                 F.count(F.when(F.col("is_listen"), True)).alias("listens"),
                 F.count(F.when(F.col("is_skip"), True)).alias("skips"),
                 F.count(F.when(F.col("saved"), True)).alias("saves"),
                 reward.alias("reward"),
                 F.min("ts").alias("first_played_ts"),
                 F.max("ts").alias("last_played_ts"))
            .select("user_id", "track_id", "artist_id", "plays", "listens", "skips", "saves",
                    "reward", "first_played_ts", "last_played_ts"))


def lookback_partitions(ds: str, cfg: RewardsConfig) -> tuple[str, str]:
    """(first, last) ``ds`` partitions of listens that can fall in ``ds``'s lookback window
    (ingest keeps each listen in the partition of its own day), so the step reads a bounded
    window of the lake, not its whole history."""
    first = as_of_end(ds) - dt.timedelta(days=cfg.lookback_days)
    return first.date().isoformat(), ds


def build_interactions(listens: DataFrame, ds: str, cfg: RewardsConfig) -> DataFrame:
    """Listens up to the end of ``ds`` within the lookback -> the interaction matrix for ``ds``."""
    window_start = as_of_end(ds) - dt.timedelta(days=cfg.lookback_days)
    in_window = (F.col("ts") < F.lit(as_of_end(ds))) & (F.col("ts") >= F.lit(window_start))
    return (listens.where(in_window)
            .transform(weigh_rewards, cfg)
            .transform(decay_by_age, ds, cfg.half_life_days)
            .transform(aggregate_interactions, cfg)
            .withColumn("ds", F.lit(ds)))
