"""Ranking features: hand-computed values, and nothing after the cutoff reaches them."""
import datetime as dt

from chispa import assert_df_equality
from pyspark.sql import functions as F

from setlist.events import LISTENS_SCHEMA
from setlist.features import (events_before, pair_features, user_artist_features, user_features,
                              user_track_features, with_context)

CUTOFF = dt.datetime(2026, 11, 4)
SMALL = ["features.history_days=7", "features.windows_days=[1,7]", "features.trend_long_days=7",
         "events.surfaces=[home,radio]", "publish.surfaces=[home,radio]",
         "candidates.sources=[popularity,own_artists]"]


def listens(spark, rows):
    """rows: (event_id, user, track, artist, ts, ms_played, surface, skipped, saved)."""
    full = [(e, u, t, a, ts, ms, 200000, "clickrow", "fwdbtn" if skipped else "trackdone", s, "mobile",
             False, skipped, saved, ts.date().isoformat())
            for e, u, t, a, ts, ms, s, skipped, saved in rows]
    return spark.createDataFrame(full, LISTENS_SCHEMA)


BASE = [
    ("e1", "u1", "t1", "a1", dt.datetime(2026, 11, 3, 12), 200000, "home", False, True),
    ("e2", "u1", "t2", "a2", dt.datetime(2026, 11, 1, 0), 5000, "radio", True, False),
    ("e3", "u2", "t1", "a1", dt.datetime(2026, 11, 2, 0), 100000, "home", False, False),
    # Before the history window: never counted.
    ("e4", "u1", "t1", "a1", dt.datetime(2026, 10, 20), 200000, "home", False, False),
]
AFTER_CUTOFF = ("e9", "u1", "t2", "a2", dt.datetime(2026, 11, 4, 1), 200000, "home", False, True)


def test_user_features_count_only_the_history_before_the_cutoff(spark, make_cfg):
    cfg = make_cfg(*SMALL)
    events = events_before(listens(spark, BASE + [AFTER_CUTOFF]), CUTOFF, cfg.features, cfg.rewards)
    actual = user_features(events, cfg.features, cfg.events.surfaces).where("user_id = 'u1'")
    expected = spark.createDataFrame(
        [("u1", 1.0, 2.0, 0.5, 0.5, 0.5, 2.0, 1.0, 0.5, 0.5, 3.0)],
        "user_id string, user_plays_1d double, user_plays_7d double, user_skip_rate double, "
        "user_save_rate double, user_listen_rate double, user_artists double, user_artists_per_play double, "
        "user_share_home double, user_share_radio double, user_days_since_first double")
    assert_df_equality(actual, expected, ignore_nullable=True, ignore_row_order=True)


def test_user_track_and_user_artist_features_from_earlier_plays(spark, make_cfg):
    cfg = make_cfg(*SMALL)
    events = events_before(listens(spark, BASE), CUTOFF, cfg.features, cfg.rewards)
    ut = user_track_features(events).where("user_id = 'u1'")
    # Completed + saved listen: listen 1 + completion 0.5 + save 2; early skip: -0.75.
    expected_ut = spark.createDataFrame(
        [("u1", "t1", 1.0, 1.0, 0.0, 1.0, 3.5, 0.5), ("u1", "t2", 1.0, 0.0, 1.0, 0.0, -0.75, 3.0)],
        "user_id string, track_id string, ut_plays double, ut_listens double, ut_skips double, "
        "ut_saves double, ut_reward double, ut_days_since_last double")
    assert_df_equality(ut, expected_ut, ignore_nullable=True, ignore_row_order=True)
    ua = user_artist_features(events).where("user_id = 'u1'")
    expected_ua = spark.createDataFrame([("u1", "a1", 0.5, 0.0), ("u1", "a2", 0.5, 1.0)],
                                        "user_id string, artist_id string, ua_play_share double, ua_skip_rate double")
    assert_df_equality(ua, expected_ua, ignore_nullable=True, ignore_row_order=True)


def test_an_event_after_the_cutoff_changes_no_feature(spark, make_cfg):
    cfg = make_cfg(*SMALL)
    candidates = spark.createDataFrame(
        [("u1", "t1", True, 3.0, 1, False, None, None, 1, ["popularity"]),
         ("u1", "t2", True, 1.0, 2, True, 0.5, 1, 2, ["own_artists", "popularity"]),
         ("u2", "t2", False, None, None, True, 0.2, 1, 1, ["own_artists"])],
        "user_id string, track_id string, popularity_flag boolean, popularity_score double, popularity_rank int, "
        "own_artists_flag boolean, own_artists_score double, own_artists_rank int, n_sources int, "
        "sources array<string>")
    contexts = spark.createDataFrame([("u1", "home"), ("u1", "radio"), ("u2", "home")], "user_id string, surface string")

    def features(rows):
        pairs = pair_features(candidates, listens(spark, rows), CUTOFF, cfg)
        return with_context(pairs, contexts, cfg.events.surfaces)

    before = features(BASE)
    late = [AFTER_CUTOFF, ("e10", "u2", "t2", "a2", CUTOFF, 200000, "radio", False, True),
            ("e11", "u3", "t1", "a1", dt.datetime(2026, 11, 5), 5000, "home", True, False)]
    assert_df_equality(features(BASE + late), before, ignore_row_order=True)
    # The frame is not empty of information: the earlier plays are there.
    assert before.where((F.col("user_id") == "u1") & (F.col("track_id") == "t1")).first()["ut_plays"] == 1.0


def test_each_surface_row_carries_the_users_history_on_that_surface_and_the_session_context(spark, make_cfg):
    cfg = make_cfg(*SMALL)
    candidates = spark.createDataFrame(
        [("u1", "t1", True, 3.0, 1, False, None, None, 1, ["popularity"]),
         ("u1", "t2", True, 1.0, 2, False, None, None, 1, ["popularity"])],
        "user_id string, track_id string, popularity_flag boolean, popularity_score double, popularity_rank int, "
        "own_artists_flag boolean, own_artists_score double, own_artists_rank int, n_sources int, "
        "sources array<string>")
    contexts = spark.createDataFrame([("u1", "home"), ("u1", "radio")], "user_id string, surface string")
    framed = with_context(pair_features(candidates, listens(spark, BASE), CUTOFF, cfg), contexts, cfg.events.surfaces)
    got = {(r.surface, r.track_id): (r.us_artist_share, r.us_track_plays, r.ctx_same_artist, r.ctx_hour)
           for r in framed.collect()}
    # u1 in the window: t1 (a1) once on home at 12:00 (the last play), t2 (a2) once on radio.
    assert got == {("home", "t1"): (1.0, 1.0, 1.0, 12.0), ("home", "t2"): (0.0, 0.0, 0.0, 12.0),
                   ("radio", "t1"): (0.0, 0.0, 1.0, 12.0), ("radio", "t2"): (1.0, 1.0, 0.0, 12.0)}
