"""The candidate union: flags, scores and ranks per source, and the publishing blend."""
from chispa import assert_df_equality

from setlist.candidates.common import CANDIDATE_SCHEMA
from setlist.candidates.union import blend_order, union_candidates

SOURCES = ["als", "popularity"]


def candidates(spark, rows):
    return spark.createDataFrame(rows, CANDIDATE_SCHEMA)


def test_union_flags_scores_ranks_and_counts_sources(spark):
    als = candidates(spark, [("u", "t1", "als", 0.9, 1), ("u", "t2", "als", 0.5, 2)])
    pop = candidates(spark, [("u", "t2", "popularity", 10.0, 1), ("u", "t3", "popularity", 7.0, 2),
                             ("u", "t4", "colisten", 1.0, 1)])  # not configured: ignored
    actual = union_candidates([als, pop], SOURCES).orderBy("track_id")
    wanted = spark.createDataFrame(
        [("u", "t1", True, 0.9, 1, False, None, None, 1, ["als"]),
         ("u", "t2", True, 0.5, 2, True, 10.0, 1, 2, ["als", "popularity"]),
         ("u", "t3", False, None, None, True, 7.0, 2, 1, ["popularity"])],
        "user_id string, track_id string, als_flag boolean, als_score double, als_rank int, "
        "popularity_flag boolean, popularity_score double, popularity_rank int, n_sources int, "
        "sources array<string>")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_blend_puts_als_first_then_fills_in_by_priority(spark):
    als = candidates(spark, [("u", "t2", "als", 0.5, 2), ("u", "t1", "als", 0.9, 1)])
    pop = candidates(spark, [("u", "t2", "popularity", 10.0, 1), ("u", "t9", "popularity", 7.0, 2),
                             ("u", "t5", "popularity", 7.0, 3)])
    col = candidates(spark, [("u", "t7", "colisten", 3.0, 1), ("v", "t8", "colisten", 3.0, 1)])
    union = union_candidates([als, pop, col], ["als", "popularity", "colisten"])
    actual = blend_order(union, ["als", "colisten", "popularity"]).orderBy("user_id", "score")
    wanted = spark.createDataFrame(
        [("u", "t5", 1 / 5, "popularity"), ("u", "t9", 1 / 4, "popularity"), ("u", "t7", 1 / 3, "colisten"),
         ("u", "t2", 1 / 2, "als"), ("u", "t1", 1.0, "als"), ("v", "t8", 1.0, "colisten")],
        "user_id string, track_id string, score double, source string")
    assert_df_equality(actual, wanted, ignore_nullable=True)


def test_blend_breaks_rank_ties_by_track_id(spark):
    pop = candidates(spark, [("u", "tb", "popularity", 1.0, 1), ("u", "ta", "popularity", 1.0, 1)])
    union = union_candidates([pop], ["popularity"])
    order = [r.track_id for r in blend_order(union, ["als", "popularity"]).orderBy(
        "score", ascending=False).collect()]
    assert order == ["ta", "tb"]
