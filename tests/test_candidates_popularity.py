"""Recent popularity: decayed listens in a window, overall and per surface."""
import datetime as dt

from chispa import assert_df_equality

from setlist.candidates.popularity import popularity_candidates, recent_popularity, surface_popularity
from setlist.config import PopularityConfig

END = dt.datetime(2026, 11, 4)
LISTEN_SCHEMA = "user_id string, track_id string, ts timestamp, ms_played long, surface string"
INTERACTION_SCHEMA = "user_id string, track_id string, reward double"
CFG = PopularityConfig(window_days=28, half_life_days=7.0, top_n=3, exclude_played=False)


def listens(spark, rows):
    """rows: (user, track, days before the latest listen, surface)."""
    return spark.createDataFrame([(u, t, END - dt.timedelta(days=d), 60_000, s) for u, t, d, s in rows],
                                 LISTEN_SCHEMA)


def test_recent_hit_outranks_an_old_one_with_more_plays(spark):
    old_hit = [(f"u{i}", "old", 20, "home") for i in range(3)]   # 3 x 0.5 ** (20 / 7) = 0.41
    recent_hit = [("u0", "new", 0, "home")]                     # 1 x 1.0
    actual = recent_popularity(listens(spark, old_hit + recent_hit), CFG).orderBy("track_id")
    wanted = spark.createDataFrame([("new", 1.0), ("old", 3 * 0.5 ** (20 / 7))],
                                   "track_id string, popularity double")
    assert_df_equality(actual, wanted, ignore_nullable=True, allow_nan_equality=True,
                       ignore_row_order=False, ignore_column_order=False)
    users = spark.createDataFrame([("u9", "x", 1.0)], INTERACTION_SCHEMA)
    ranked = popularity_candidates(users, listens(spark, old_hit + recent_hit), CFG)
    assert [(r.track_id, r.source_rank) for r in ranked.orderBy("source_rank").collect()] == [
        ("new", 1), ("old", 2)]


def test_listens_outside_the_window_or_short_do_not_count(spark):
    rows = listens(spark, [("u", "in", 0, "home"), ("u", "stale", 29, "home")])
    short = spark.createDataFrame([("u", "short", END, 10_000, "home")], LISTEN_SCHEMA)
    tracks = {r.track_id for r in recent_popularity(rows.unionByName(short), CFG).collect()}
    assert tracks == {"in"}


def test_played_tracks_are_excluded_when_configured(spark):
    rows = listens(spark, [("u1", "a", 0, "home"), ("u2", "a", 0, "home"), ("u2", "b", 0, "home")])
    played = spark.createDataFrame([("u1", "a", 1.0), ("u2", "c", 1.0)], INTERACTION_SCHEMA)
    cfg = CFG.model_copy(update={"exclude_played": True})
    actual = popularity_candidates(played, rows, cfg).orderBy("user_id", "source_rank")
    wanted = spark.createDataFrame([("u1", "b", "popularity", 1.0, 1), ("u2", "a", "popularity", 2.0, 1),
                                    ("u2", "b", "popularity", 1.0, 2)],
                                   "user_id string, track_id string, source string, source_score double, "
                                   "source_rank int")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_popularity_is_kept_per_surface(spark):
    rows = listens(spark, [("u1", "a", 0, "radio"), ("u2", "a", 0, "radio"), ("u1", "b", 0, "radio"),
                           ("u1", "b", 0, "search")])
    actual = surface_popularity(rows, CFG).orderBy("surface", "rank")
    wanted = spark.createDataFrame([("radio", "a", 2.0, 1), ("radio", "b", 1.0, 2), ("search", "b", 1.0, 1)],
                                   "surface string, track_id string, score double, rank int")
    assert_df_equality(actual, wanted, ignore_nullable=True)
