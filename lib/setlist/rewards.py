"""The reward of one listen event, declared once (``rewards`` in config).

Every consumer reads its signals from here: the interaction matrix (``setlist.interactions``),
the ranker's features (``ut_reward``) and labels (``setlist.ranking.event_grade``), the candidate
sources that count listens, and the experiments' per-user outcomes (``streams``, ``skips``,
``reward``). A listen is a play past ``listen_threshold_s``; it is completed past
``completion_ratio`` of the track; an early skip ended before the threshold by the listener
(the ``skipped`` flag or one of ``skip_reasons``). Per event:

    reward = listen_weight * listen + completion_weight * completed
           + skip_weight * early_skip + save_weight * saved
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from setlist.config import RewardsConfig


def listened_past(seconds: float) -> Column:
    return F.col("ms_played") >= F.lit(seconds * 1000.0)


def is_listen(cfg: RewardsConfig) -> Column:
    return listened_past(cfg.listen_threshold_s)


def is_completed(cfg: RewardsConfig) -> Column:
    return F.col("ms_played") >= F.col("track_duration_ms") * F.lit(cfg.completion_ratio)


def is_early_skip(cfg: RewardsConfig) -> Column:
    """Ended before the threshold by the listener (skip flag or a skip reason)."""
    skipped = F.coalesce(F.col("skipped"), F.lit(False)) | F.col("reason_end").isin(cfg.skip_reasons)
    return skipped & ~listened_past(cfg.listen_threshold_s)


def is_saved() -> Column:
    return F.coalesce(F.col("saved"), F.lit(False))


def listen_credit(cfg: RewardsConfig) -> Column:
    """The listening part of the reward: a listen, plus more when completed."""
    listen = is_listen(cfg)
    return (F.when(listen, F.lit(cfg.listen_weight)).otherwise(F.lit(0.0))
            + F.when(listen & is_completed(cfg), F.lit(cfg.completion_weight)).otherwise(F.lit(0.0)))


def skip_penalty(cfg: RewardsConfig) -> Column:
    return F.when(is_early_skip(cfg), F.lit(cfg.skip_weight)).otherwise(F.lit(0.0))


def save_credit(cfg: RewardsConfig) -> Column:
    return F.when(is_saved(), F.lit(cfg.save_weight)).otherwise(F.lit(0.0))


def event_reward(cfg: RewardsConfig) -> Column:
    """The reward of one event (the module doc's formula)."""
    return listen_credit(cfg) + skip_penalty(cfg) + save_credit(cfg)
