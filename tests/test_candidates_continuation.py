"""Continuations: directed next-track transitions -> next_tracks and the continuation source."""
import datetime as dt

from chispa import assert_df_equality

from setlist.candidates.continuation import consecutive_plays, continuation_candidates, next_tracks
from setlist.config import ContinuationConfig

START = dt.datetime(2026, 11, 3, 8)
SCHEMA = "user_id string, track_id string, ts timestamp, ms_played long"
CFG = ContinuationConfig(session_gap_minutes=30, shrinkage=1.0, min_transitions=1, top_n=5)


def plays(spark, rows):
    """rows: (user, track, minutes after START when the play stopped, seconds played)."""
    return spark.createDataFrame([(u, t, START + dt.timedelta(minutes=m), s * 1000) for u, t, m, s in rows], SCHEMA)


def test_transitions_are_directed_listened_and_within_a_session(spark):
    listens = plays(spark, [("u1", "a", 0, 200), ("u1", "b", 4, 200), ("u1", "c", 8, 10),   # c skipped: no a->..c
                            ("u2", "a", 0, 200), ("u2", "b", 4, 200),
                            ("u2", "d", 200, 200)])                                          # a new session
    wanted = spark.createDataFrame([("a", 1, "b", 2 / 3, 2)],
                                   "seed_track_id string, rank int, track_id string, score double, transitions long")
    # b was followed once (by the skipped c), a twice (by b): b -> a is never counted.
    assert_df_equality(next_tracks(listens, CFG), wanted, ignore_nullable=True)


def test_continuations_of_a_users_rewarded_tracks_become_candidates(spark):
    listens = plays(spark, [("u1", "a", 0, 200), ("u1", "b", 4, 200), ("u2", "a", 0, 200), ("u2", "c", 4, 200)])
    interactions = spark.createDataFrame([("u3", "a", 2.0), ("u3", "z", -1.0)], "user_id string, track_id string, "
                                                                                "reward double")
    actual = continuation_candidates(interactions, listens, CFG)
    wanted = spark.createDataFrame([("u3", "b", "continuation", 2.0 / 3, 1), ("u3", "c", "continuation", 2.0 / 3, 2)],
                                   "user_id string, track_id string, source string, source_score double, "
                                   "source_rank int")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_consecutive_plays_pair_each_play_with_the_one_before_it_in_its_session(spark):
    listens = plays(spark, [("u1", "a", 0, 200), ("u1", "b", 4, 200), ("u1", "c", 8, 10), ("u1", "d", 200, 200)])
    wanted = spark.createDataFrame([("u1", "a", "b", True), ("u1", "b", "c", False)],
                                   "user_id string, seed_track_id string, track_id string, listened boolean")
    assert_df_equality(consecutive_plays(listens, CFG), wanted, ignore_row_order=True, ignore_nullable=True)
