"""Reward rules, each on a tiny frame of listens whose answer is worked out by hand."""
import datetime as dt
import math

import pytest
from chispa import assert_df_equality

from setlist.config import RewardsConfig
from setlist.interactions import (aggregate_interactions, build_interactions, decay_by_age, lookback_partitions,
                                  weigh_rewards)

DS = "2026-11-03"
END = dt.datetime(2026, 11, 4)
CFG = RewardsConfig()
SCHEMA = ("user_id string, track_id string, artist_id string, ts timestamp, ms_played long, "
          "track_duration_ms long, reason_end string, skipped boolean, saved boolean")


def listens(spark, rows):
    """rows: (user, track, hours before the end of DS, ms_played, reason_end, skipped, saved)."""
    data = [(u, t, "a1", END - dt.timedelta(hours=h), ms, 200_000, reason, skipped, saved)
            for u, t, h, ms, reason, skipped, saved in rows]
    return spark.createDataFrame(data, SCHEMA)


def rewards(spark, rows, cfg=CFG):
    df = build_interactions(listens(spark, rows), DS, cfg)
    return {(r["user_id"], r["track_id"]): r["reward"] for r in df.collect()}


def test_listen_past_30s_counts(spark):
    weighted = weigh_rewards(listens(spark, [("u", "t1", 1, 30_000, "fwdbtn", True, False),
                                             ("u", "t2", 1, 29_999, "endplay", False, False)]), CFG)
    actual = weighted.select("track_id", "is_listen", "is_skip", "listen_credit", "skip_penalty")
    wanted = spark.createDataFrame([("t1", True, False, 1.0, 0.0), ("t2", False, False, 0.0, 0.0)],
                                   "track_id string, is_listen boolean, is_skip boolean, "
                                   "listen_credit double, skip_penalty double")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_skip_before_30s_counts_against(spark):
    by_flag = ("u", "t1", 1, 5_000, "endplay", True, False)
    by_reason = ("u", "t2", 1, 5_000, "fwdbtn", False, False)
    result = rewards(spark, [by_flag, by_reason], RewardsConfig(half_life_days=1e9))
    assert result[("u", "t1")] == pytest.approx(CFG.skip_weight)
    assert result[("u", "t2")] == pytest.approx(CFG.skip_weight)


def test_completed_listen_earns_the_completion_bonus(spark):
    weighted = weigh_rewards(listens(spark, [("u", "t1", 1, 180_000, "trackdone", False, False)]), CFG)
    assert weighted.first()["listen_credit"] == CFG.listen_weight + CFG.completion_weight


def test_save_counts_more_and_only_once(spark):
    cfg = RewardsConfig(half_life_days=1e9)
    once = ("u", "t1", 1, 60_000, "fwdbtn", False, True)
    result = rewards(spark, [once, ("u", "t2", 1, 60_000, "fwdbtn", False, False)], cfg)
    assert result[("u", "t1")] == pytest.approx(result[("u", "t2")] + cfg.save_weight)
    twice = rewards(spark, [once, once], cfg)[("u", "t1")]
    assert twice == pytest.approx(math.log2(1 + 2 * cfg.listen_weight) + cfg.save_weight)


def test_repeats_count_more_with_diminishing_returns(spark):
    cfg = RewardsConfig(half_life_days=1e9, completion_weight=0.0)
    play = ("u", "t", 1, 60_000, "fwdbtn", False, False)
    r1, r2, r3 = (rewards(spark, [play] * n, cfg)[("u", "t")] for n in (1, 2, 3))
    assert (r1, r2, r3) == pytest.approx((math.log2(2), math.log2(3), math.log2(4)))
    assert r2 - r1 > r3 - r2 > 0


def test_older_listens_decay_with_the_half_life(spark):
    df = decay_by_age(listens(spark, [("u", "t1", 0, 1, "x", False, False),
                                      ("u", "t2", 24 * 30, 1, "x", False, False),
                                      ("u", "t3", 24 * 60, 1, "x", False, False)]), DS, 30.0)
    actual = df.select("track_id", "decay")
    wanted = spark.createDataFrame([("t1", 1.0), ("t2", 0.5), ("t3", 0.25)], "track_id string, decay double")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_listens_after_the_run_date_or_before_the_lookback_are_ignored(spark):
    future = ("u", "t1", -1, 60_000, "trackdone", False, False)
    ancient = ("u", "t2", 24 * (CFG.lookback_days + 1), 60_000, "trackdone", False, False)
    kept = ("u", "t3", 2, 60_000, "trackdone", False, False)
    assert set(rewards(spark, [future, ancient, kept])) == {("u", "t3")}


def test_the_step_reads_exactly_the_partitions_the_lookback_window_can_hold(spark):
    first, last = lookback_partitions(DS, CFG)
    assert last == DS
    first_day = dt.datetime.fromisoformat(first)
    hours_before_end = (END - first_day).total_seconds() / 3600
    # The first partition's first instant is in the window; the day before's last is not.
    opening = ("u", "t1", hours_before_end, 60_000, "trackdone", False, False)
    before = ("u", "t2", hours_before_end + 1 / 3600, 60_000, "trackdone", False, False)
    assert set(rewards(spark, [opening, before])) == {("u", "t1")}


def test_aggregate_counts_plays_listens_skips_and_saves(spark):
    rows = [("u", "t", 3, 5_000, "fwdbtn", True, False), ("u", "t", 2, 60_000, "fwdbtn", False, True),
            ("u", "t", 1, 190_000, "trackdone", False, False)]
    weighted = decay_by_age(weigh_rewards(listens(spark, rows), CFG), DS, CFG.half_life_days)
    row = aggregate_interactions(weighted, CFG).first()
    assert (row["plays"], row["listens"], row["skips"], row["saves"]) == (3, 2, 1, 1)
    assert row["last_played_ts"] == END - dt.timedelta(hours=1)
