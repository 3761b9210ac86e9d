"""Co-listening: tracks played close together in a session become neighbours and candidates."""
import datetime as dt
import math

import pytest
from chispa import assert_df_equality

from setlist.candidates.colisten import colisten_candidates, session_pairs, track_neighbours
from setlist.config import ColistenConfig

START = dt.datetime(2026, 11, 3, 8)
LISTEN_SCHEMA = "event_id string, user_id string, track_id string, ts timestamp, ms_played long"
INTERACTION_SCHEMA = "user_id string, track_id string, reward double"
CFG = ColistenConfig(session_gap_minutes=30, window_plays=1, min_pair_count=2, top_n=5)


def listens(spark, rows):
    """rows: (user, track, minutes after START)."""
    return spark.createDataFrame([(f"e{i}", u, t, START + dt.timedelta(minutes=m), 200_000)
                                  for i, (u, t, m) in enumerate(rows)], LISTEN_SCHEMA)


def test_colistened_pair_becomes_a_neighbour_and_a_candidate(spark):
    plays = listens(spark, [("u1", "a", 0), ("u1", "b", 4),       # a then b, twice, in two sessions
                            ("u2", "a", 0), ("u2", "b", 4),
                            ("u2", "c", 120),                       # after a 2 h gap: a new session
                            ("u3", "a", 0)])                        # u3 only knows a
    neighbours = track_neighbours(None, plays, CFG)
    wanted = spark.createDataFrame([("a", "b", 2 / (3 * 2) ** 0.5, 1), ("b", "a", 2 / (3 * 2) ** 0.5, 1)],
                                   "track_id string, neighbour_id string, similarity double, neighbour_rank int")
    assert_df_equality(neighbours.orderBy("track_id"), wanted, ignore_nullable=True)
    interactions = spark.createDataFrame([("u3", "a", 2.0)], INTERACTION_SCHEMA)
    actual = colisten_candidates(interactions, plays, CFG)
    wanted = spark.createDataFrame([("u3", "b", "colisten", 2.0 * 2 / 6 ** 0.5, 1)],
                                   "user_id string, track_id string, source string, source_score double, "
                                   "source_rank int")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_pairs_are_bounded_to_the_next_plays_of_a_session(spark):
    plays = listens(spark, [("u", "a", 0), ("u", "b", 1), ("u", "c", 2), ("u", "d", 3)])
    pairs = {(r.track_a, r.track_b) for r in session_pairs(plays, CFG.model_copy(
        update={"window_plays": 2})).collect()}
    assert pairs == {("a", "b"), ("a", "c"), ("b", "c"), ("b", "d"), ("c", "d")}


def test_pmi_scores_a_pair_by_its_lift(spark):
    plays = listens(spark, [("u1", "a", 0), ("u1", "b", 1), ("u2", "a", 0), ("u2", "b", 1),
                            ("u3", "c", 0), ("u4", "d", 0)])
    cfg = CFG.model_copy(update={"similarity": "pmi"})
    row = track_neighbours(None, plays, cfg).where("track_id = 'a'").first()
    # 2 sessions hold a and b, of 4 sessions: log(2 * 4 / (2 * 2))
    assert (row.neighbour_id, row.similarity) == ("b", pytest.approx(math.log(2.0)))


def test_count_data_pairs_tracks_of_the_same_user(spark):
    interactions = spark.createDataFrame([("u1", "a", 3.0), ("u1", "b", 1.0), ("u2", "a", 1.0),
                                          ("u2", "b", 2.0), ("u3", "a", 5.0)], INTERACTION_SCHEMA)
    actual = colisten_candidates(interactions, None, CFG).where("user_id = 'u3'")
    assert [(r.track_id, r.source_rank) for r in actual.collect()] == [("b", 1)]
