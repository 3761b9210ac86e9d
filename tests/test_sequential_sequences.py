"""The sequence builder: listens -> per-user, time-ordered play sequences with context."""
import datetime as dt

from chispa import assert_df_equality

from setlist.config import RewardsConfig
from setlist.sequential.sequences import holdout_users, item_vocabulary, play_sequences, without_last_play

START = dt.datetime(2026, 11, 3, 8)
SCHEMA = ("event_id string, user_id string, track_id string, ts timestamp, ms_played long, "
          "track_duration_ms long, reason_end string, surface string, skipped boolean, saved boolean")
SURFACES = ["home", "now_playing", "radio"]
REWARDS = RewardsConfig()


def listens(spark, rows):
    """rows: (event, user, track, seconds after START, seconds played, surface)."""
    return spark.createDataFrame(
        [(e, u, t, START + dt.timedelta(seconds=s), p * 1000, 200_000, "trackdone" if p >= 30 else "fwdbtn",
          surface, p < 30, False) for e, u, t, s, p, surface in rows], SCHEMA)


SEQUENCE_SCHEMA = ("user_id string, track_ids array<string>, items array<int>, surfaces array<tinyint>, "
                   "outcomes array<tinyint>, rewards array<float>, gaps array<float>, plays int, unknown_items int")


def test_a_users_plays_come_in_time_order_with_surface_outcome_reward_and_gap(spark):
    plays = listens(spark, [("e2", "u1", "b", 60, 200, "now_playing"), ("e1", "u1", "a", 0, 200, "home"),
                            ("e3", "u1", "c", 90, 5, "search"), ("e4", "u2", "a", 0, 200, "radio")])
    vocabulary = spark.createDataFrame([("a", 2), ("b", 3)], "track_id string, item_index int")
    reward = float(REWARDS.listen_weight + REWARDS.completion_weight)
    wanted = spark.createDataFrame(
        [("u1", ["a", "b", "c"], [2, 3, 1], [1, 2, 0], [2, 2, 1], [reward, reward, float(REWARDS.skip_weight)],
          [0.0, 60.0, 30.0], 3, 1),
         ("u2", ["a"], [2], [3], [2], [reward], [0.0], 1, 0)], SEQUENCE_SCHEMA)
    actual = play_sequences(plays, vocabulary, SURFACES, REWARDS, keep_plays=10)
    assert_df_equality(actual, wanted, ignore_nullable=True, ignore_row_order=True)


def test_only_the_latest_plays_are_kept_and_ties_in_time_go_by_event_id(spark):
    plays = listens(spark, [("e3", "u1", "c", 10, 200, "home"), ("e2", "u1", "b", 10, 200, "home"),
                            ("e1", "u1", "a", 0, 200, "home")])
    vocabulary = item_vocabulary(plays)
    actual = play_sequences(plays, vocabulary, SURFACES, REWARDS, keep_plays=2).select("track_ids", "items", "gaps")
    wanted = spark.createDataFrame([(["b", "c"], [3, 4], [10.0, 0.0])],
                                   "track_ids array<string>, items array<int>, gaps array<float>")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_vocabulary_numbers_tracks_from_the_first_item_index_in_track_order(spark):
    plays = listens(spark, [("e1", "u1", "z", 0, 200, "home"), ("e2", "u2", "m", 0, 200, "home"),
                            ("e3", "u3", "z", 0, 200, "home")])
    wanted = spark.createDataFrame([("m", 2), ("z", 3)], "track_id string, item_index int")
    assert_df_equality(item_vocabulary(plays), wanted, ignore_nullable=True, ignore_row_order=True)


def test_held_out_users_end_on_a_known_listen_and_lose_exactly_that_play(spark):
    plays = listens(spark, [("e1", "u1", "a", 0, 200, "home"), ("e2", "u1", "b", 60, 200, "home"),
                            ("e3", "u1", "c", 120, 200, "home"),
                            ("e4", "u2", "a", 0, 200, "home"), ("e5", "u2", "b", 60, 200, "home"),
                            ("e6", "u2", "c", 120, 5, "home"),                 # ends on a skip
                            ("e7", "u3", "a", 0, 200, "home"), ("e8", "u3", "b", 60, 200, "home")])  # too short
    sequences = play_sequences(plays, item_vocabulary(plays), SURFACES, REWARDS, keep_plays=10)
    held = holdout_users(sequences, users=10, seed=1)
    assert [r.user_id for r in held.collect()] == ["u1"]
    trimmed = without_last_play(sequences, held).select("user_id", "track_ids", "plays")
    wanted = spark.createDataFrame([("u1", ["a", "b"], 2), ("u2", ["a", "b", "c"], 3), ("u3", ["a", "b"], 2)],
                                   "user_id string, track_ids array<string>, plays int")
    assert_df_equality(trimmed, wanted, ignore_nullable=True, ignore_row_order=True)
