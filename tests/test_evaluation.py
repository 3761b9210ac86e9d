"""Evaluation: each metric against scikit-learn or a tiny pure-Python computation, the
leakage guard, and the splits."""
import datetime as dt
import math

import numpy as np
import pytest
from pyspark.sql import functions as F
from sklearn.metrics import average_precision_score, ndcg_score

from setlist.config import EvaluationConfig, RewardsConfig
from setlist.evaluation import (
    LeakageError, assert_no_leakage, candidate_lists, cutoff_at_quantile, evaluate_candidates,
    global_time_split, list_metrics, per_user_holdout, per_user_metrics, truth_all_listens,
    truth_discovery, union_list)
from setlist.interactions import build_interactions

ITEMS = [f"t{i}" for i in range(8)]
# user -> ranked list (every item of the catalogue, so sklearn's dense rows have no ties)
LISTS = {
    "u1": ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"],
    "u2": ["t7", "t6", "t5", "t4", "t3", "t2", "t1", "t0"],
    "u3": ["t3", "t0", "t5", "t1", "t7", "t2", "t4", "t6"],
}
TRUTH = {"u1": {"t1", "t4"}, "u2": {"t0"}, "u3": {"t3", "t5", "t6"}, "u4": {"t2"}}  # u4: no list
LIST_SCHEMA = "list string, user_id string, track_id string, rank int"


def lists_frame(spark, name="src", lists=LISTS):
    rows = [(name, u, t, r) for u, items in lists.items() for r, t in enumerate(items, start=1)]
    return spark.createDataFrame(rows, LIST_SCHEMA)


def truth_frame(spark, truth=TRUTH):
    return spark.createDataFrame([(u, t) for u, items in truth.items() for t in sorted(items)],
                                 "user_id string, track_id string")


def dense_rows(user):
    """sklearn's input: one row over the catalogue, true relevance and a score by rank."""
    ranked = LISTS.get(user, [])
    y_true = np.array([[1.0 if t in TRUTH[user] else 0.0 for t in ITEMS]])
    y_score = np.array([[len(ITEMS) - ranked.index(t) if t in ranked else 0.0 for t in ITEMS]])
    return y_true, y_score


def metrics_by_user(spark, recall_ks, k):
    rows = per_user_metrics(lists_frame(spark), truth_frame(spark), recall_ks, k).collect()
    return {r["user_id"]: r.asDict() for r in rows}


def hand_recall(user, k):
    return len(set(LISTS.get(user, [])[:k]) & TRUTH[user]) / len(TRUTH[user])


def hand_average_precision(user, k):
    hits, total = 0, 0.0
    for rank, item in enumerate(LISTS.get(user, [])[:k], start=1):
        if item in TRUTH[user]:
            hits += 1
            total += hits / rank
    return total / min(k, len(TRUTH[user]))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_ndcg_matches_sklearn(spark, k):
    got = metrics_by_user(spark, [k], k)
    for user in ["u1", "u2", "u3"]:
        y_true, y_score = dense_rows(user)
        assert got[user][f"ndcg_at_{k}"] == pytest.approx(ndcg_score(y_true, y_score, k=k))
    assert got["u4"][f"ndcg_at_{k}"] == 0.0


def test_ndcg_uses_the_log2_discount_by_hand(spark):
    # u3: relevant t3 (rank 1), t5 (rank 3), t6 (rank 8); at k=3, IDCG covers 3 positions.
    got = metrics_by_user(spark, [3], 3)["u3"]["ndcg_at_3"]
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert got == pytest.approx(dcg / idcg)


def test_average_precision_over_the_whole_list_matches_sklearn(spark):
    got = metrics_by_user(spark, [8], len(ITEMS))
    for user in ["u1", "u2", "u3"]:
        y_true, y_score = dense_rows(user)
        expected = average_precision_score(y_true[0], y_score[0])
        assert got[user][f"map_at_{len(ITEMS)}"] == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_truncated_average_precision_and_hit_rate_by_hand(spark, k):
    got = metrics_by_user(spark, [k], k)
    for user in TRUTH:
        assert got[user][f"map_at_{k}"] == pytest.approx(hand_average_precision(user, k))
        assert got[user][f"hit_rate_at_{k}"] == float(hand_recall(user, k) > 0)


def test_recall_at_each_k_by_hand(spark):
    got = metrics_by_user(spark, [2, 5], 3)
    for user in TRUTH:
        assert got[user]["recall_at_2"] == pytest.approx(hand_recall(user, 2))
        assert got[user]["recall_at_5"] == pytest.approx(hand_recall(user, 5))


def test_list_metrics_average_over_truth_users_with_coverage_and_popularity(spark):
    cfg = EvaluationConfig(recall_ks=[2], ranking_k=2)
    # Train users per item: t0:3, t1:2, t2:1 -> percent_rank t2=0, t1=0.5, t0=1.
    train = spark.createDataFrame([("a", "t0"), ("b", "t0"), ("c", "t0"), ("a", "t1"), ("b", "t1"), ("a", "t2")],
                                  "user_id string, track_id string")
    lists = lists_frame(spark, lists={"u1": ["t0", "t1"], "u2": ["t0", "t2"]})
    truth = truth_frame(spark, {"u1": {"t1"}, "u2": {"t1", "t7"}, "u3": {"t0"}})
    row = list_metrics(lists, truth, train, cfg).iloc[0]
    assert row["users"] == 3
    assert row["recall_at_2"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert row["hit_rate_at_2"] == pytest.approx(1 / 3)
    assert row["coverage_at_2"] == pytest.approx(3 / 3)
    assert row["popularity_pct_at_2"] == pytest.approx((1.0 + 0.5 + 1.0 + 0.0) / 4)
    # t7 is unseen in train: percentile 0.
    assert row["popularity_pct_truth"] == pytest.approx((0.5 + 0.5 + 0.0 + 1.0) / 4)


def test_union_list_fuses_reciprocal_ranks(spark):
    candidates = spark.createDataFrame(
        [("u", "x", "als", 1.0, 1), ("u", "y", "als", 0.5, 2), ("u", "y", "pop", 9.0, 1), ("u", "z", "pop", 3.0, 2)],
        "user_id string, track_id string, source string, source_score double, source_rank int")
    ranked = [(r["track_id"], r["rank"]) for r in union_list(candidates, 60.0).orderBy("rank").collect()]
    # y: 1/62 + 1/61 beats x: 1/61; z: 1/62 ties nothing.
    assert ranked == [("y", 1), ("x", 2), ("z", 3)]
    per_source = candidate_lists(candidates).where("list = 'pop'").orderBy("rank").collect()
    assert [r["track_id"] for r in per_source] == ["y", "z"]


# --------------------------------------------------------------------------- splits and leakage

CUTOFF = dt.datetime(2026, 11, 10)
LISTEN_SCHEMA = ("event_id string, user_id string, track_id string, artist_id string, ts timestamp, "
                 "ms_played long, track_duration_ms long, reason_end string, skipped boolean, saved boolean")


def listens(spark, rows):
    """rows: (user, track, days after CUTOFF (negative = before), ms_played)."""
    data = [(f"e{i}", u, t, "a1", CUTOFF + dt.timedelta(days=d), ms, 200_000, "trackdone", False, False)
            for i, (u, t, d, ms) in enumerate(rows)]
    return spark.createDataFrame(data, LISTEN_SCHEMA)


def test_global_time_split_puts_the_cutoff_in_test_and_stops_at_the_horizon(spark):
    events = listens(spark, [("u", "before", -0.001, 60_000), ("u", "at", 0, 60_000),
                             ("u", "inside", 6.9, 60_000), ("u", "after", 7, 60_000)])
    train, test = global_time_split(events, CUTOFF, horizon_days=7)
    assert [r["track_id"] for r in train.collect()] == ["before"]
    assert sorted(r["track_id"] for r in test.collect()) == ["at", "inside"]


def test_cutoff_at_quantile_is_an_event_time(spark):
    events = listens(spark, [("u", f"t{i}", i, 60_000) for i in range(10)])
    assert cutoff_at_quantile(events, 0.5) == CUTOFF + dt.timedelta(days=4)


def test_interactions_from_an_event_after_the_cutoff_fail_the_guard(spark):
    events = listens(spark, [("u", "t1", -3, 60_000), ("u", "t2", 1, 60_000)])
    ds = "2026-11-12"
    leaky = build_interactions(events, ds, RewardsConfig())
    with pytest.raises(LeakageError, match="last_played_ts"):
        assert_no_leakage(leaky, CUTOFF, ["last_played_ts"], "interactions")
    train, _ = global_time_split(events, CUTOFF, 7)
    assert_no_leakage(build_interactions(train, ds, RewardsConfig()), CUTOFF, ["last_played_ts"])


def test_a_candidate_computed_after_the_cutoff_fails_the_guard(spark):
    schema = "user_id string, track_id string, source string, source_score double, source_rank int, source_max_ts timestamp"
    clean = spark.createDataFrame([("u", "t1", "s", 1.0, 1, CUTOFF - dt.timedelta(seconds=1))], schema)
    leaky = spark.createDataFrame([("u", "t1", "s", 1.0, 1, CUTOFF)], schema)
    cols = EvaluationConfig().leakage_ts_columns
    assert_no_leakage(clean, CUTOFF, cols)
    with pytest.raises(LeakageError, match="source_max_ts"):
        assert_no_leakage(leaky, CUTOFF, cols, "candidates")
    with pytest.raises(LeakageError, match="cannot check"):
        assert_no_leakage(clean.drop("source_max_ts"), CUTOFF, cols)


def holdout_pairs(frame):
    return {(r["user_id"], r["track_id"]) for r in frame.select("user_id", "track_id").collect()}


def test_per_user_holdout_is_deterministic_disjoint_and_per_user(spark):
    rows = [(f"u{u}", f"t{t}", 1) for u in range(4) for t in range(10 + u)] + [("small", "t0", 1)]
    interactions = spark.createDataFrame(rows, "user_id string, track_id string, listens int")
    train, test = per_user_holdout(interactions, 0.3, seed=7, min_items=5)
    train2, test2 = per_user_holdout(interactions, 0.3, seed=7, min_items=5)
    assert holdout_pairs(train) == holdout_pairs(train2) and holdout_pairs(test) == holdout_pairs(test2)
    assert not holdout_pairs(train) & holdout_pairs(test)
    assert holdout_pairs(train) | holdout_pairs(test) == {(u, t) for u, t, _ in rows}
    per_user = {}
    for user, _ in holdout_pairs(test):
        per_user[user] = per_user.get(user, 0) + 1
    assert per_user == {f"u{u}": math.floor(0.3 * (10 + u)) for u in range(4)}
    _, other_seed = per_user_holdout(interactions, 0.3, seed=8, min_items=5)
    assert holdout_pairs(other_seed) != holdout_pairs(test)


def test_ground_truths_all_listens_and_discovery(spark):
    train = listens(spark, [("u", "old", -2, 60_000)])
    test = listens(spark, [("u", "old", 1, 60_000), ("u", "new", 1, 60_000), ("u", "skipped", 1, 5_000)])
    everything = truth_all_listens(test, RewardsConfig())
    assert holdout_pairs(everything) == {("u", "old"), ("u", "new")}
    assert holdout_pairs(truth_discovery(everything, train)) == {("u", "new")}


def test_evaluate_candidates_scores_each_source_and_the_union_and_refuses_leaks(spark):
    cfg = EvaluationConfig(recall_ks=[1, 2], ranking_k=2)
    events = listens(spark, [("u1", "a", -3, 60_000), ("u2", "b", -2, 60_000), ("u1", "c", 1, 60_000),
                             ("u2", "a", 1, 60_000)])
    train, test = global_time_split(events, CUTOFF, 7)
    train_interactions = build_interactions(train, "2026-11-09", RewardsConfig())
    schema = "user_id string, track_id string, source string, source_score double, source_rank int"
    first = spark.createDataFrame([("u1", "c", "x", 1.0, 1), ("u2", "b", "x", 1.0, 1)], schema)
    second = spark.createDataFrame([("u2", "a", "y", 1.0, 1), ("u1", "b", "y", 1.0, 1)], schema)
    truths = {"all": truth_all_listens(test, RewardsConfig())}
    result = evaluate_candidates(spark, train_interactions, truths,
                                 {"first": lambda _: first, "second": lambda _: second}, cfg, CUTOFF)
    recall = dict(zip(result["list"], result["recall_at_2"]))
    assert recall == {"first": 0.5, "second": 0.5, "union": 1.0}
    assert set(result["truth"]) == {"all"} and (result["seconds"] >= 0).all()
    late = first.withColumn("source_max_ts", F.lit(CUTOFF))
    with pytest.raises(LeakageError):
        evaluate_candidates(spark, train_interactions, truths, {"late": lambda _: late}, cfg, CUTOFF)


def test_item_popularity_percentile_is_percent_rank_with_ties(spark):
    import numpy as np
    import pandas as pd

    from setlist.evaluation import item_popularity_percentile
    rng = np.random.default_rng(3)
    users_per_track = {f"t{i}": int(n) for i, n in enumerate(rng.integers(1, 6, size=40))}  # many ties
    rows = [(f"u{j}", track) for track, n in users_per_track.items() for j in range(n)]
    got = {r.track_id: r.popularity_pct for r in
           item_popularity_percentile(spark.createDataFrame(rows, "user_id string, track_id string")).collect()}
    counts = pd.Series(users_per_track)
    expected = (counts.rank(method="min") - 1) / (len(counts) - 1)  # SQL percent_rank
    assert got == pytest.approx(expected.to_dict())
