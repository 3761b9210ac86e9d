"""Ranker pieces: graded labels, group caps, the metrics against scikit-learn, the gate rule."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from sklearn.metrics import ndcg_score

from setlist.errors import GateRefused
from setlist.events import LISTENS_SCHEMA
from setlist.ranking import cap_groups, gate, graded_labels, ranking_metrics, surface_labels

CUTOFF = dt.datetime(2026, 11, 4)


def test_labels_grade_save_over_completed_over_listen_over_nothing_over_skip(spark, make_cfg):
    cfg = make_cfg()

    def play(e, track, hour, ms, skipped=False, saved=False, reason="trackdone"):
        ts = CUTOFF + dt.timedelta(hours=hour)
        return (e, "u1", track, "a1", ts, ms, 200000, "clickrow", reason, "home", "mobile", False, skipped, saved,
                ts.date().isoformat())

    rows = [play("e1", "saved", 1, 200000, saved=True), play("e2", "done", 2, 195000),
            play("e3", "listen", 3, 60000, reason="endplay"), play("e4", "logout", 4, 10000, reason="logout"),
            play("e5", "skip", 5, 10000, skipped=True, reason="fwdbtn"),
            # A skip and then a completed listen: the best event counts.
            play("e6", "both", 6, 10000, skipped=True, reason="fwdbtn"), play("e7", "both", 7, 200000),
            # Outside the label window (before the cutoff, after cutoff + label_days).
            play("e8", "early", -1, 200000), play("e9", "late", 25, 200000)]
    labels = graded_labels(spark.createDataFrame(rows, LISTENS_SCHEMA), CUTOFF, cfg.ranking, cfg.rewards)
    expected = spark.createDataFrame(
        [("u1", "home", t, g) for t, g in
         [("saved", 4), ("done", 3), ("listen", 2), ("logout", 1), ("skip", 0), ("both", 3)]],
        "user_id string, surface string, track_id string, label int")
    assert_df_equality(labels, expected, ignore_nullable=True, ignore_row_order=True)


def test_cap_groups_keeps_the_best_source_ranks_per_user_and_surface(spark):
    framed = spark.createDataFrame(
        [("u1", "home", "t1", 3, None), ("u1", "home", "t2", None, 1), ("u1", "home", "t3", 2, 5),
         ("u1", "radio", "t1", 3, None), ("u2", "home", "t9", None, None)],
        "user_id string, surface string, track_id string, a_rank int, b_rank int")
    expected = spark.createDataFrame(
        [("u1", "home", "t2", None, 1), ("u1", "home", "t3", 2, 5), ("u1", "radio", "t1", 3, None),
         ("u2", "home", "t9", None, None)], framed.schema)
    assert_df_equality(cap_groups(framed, 2, ["a", "b"]), expected, ignore_row_order=True)


def _ap_at_k(rel_in_order, k, n_relevant):
    hits, total = 0, 0.0
    for r, rel in enumerate(rel_in_order[:k], start=1):
        if rel > 0:
            hits += 1
            total += hits / r
    return total / min(k, n_relevant)


def test_metrics_match_scikit_learn_ndcg_and_a_plain_python_map(make_cfg):
    cfg = make_cfg()
    rng = np.random.default_rng(0)
    rows = []
    for user in range(6):
        for track in range(15):
            rows.append({"user_id": f"u{user}", "surface": "home", "track_id": f"t{track:02d}",
                         "label": int(rng.integers(0, 5)) if user else 1})  # u0: nothing relevant
    frame = pd.DataFrame(rows)
    scores = rng.permutation(len(frame)).astype(float)  # no ties
    k = 10
    got = ranking_metrics(frame, scores, k, cfg.ranking)
    ndcgs, aps, hits = [], [], []
    for user in range(1, 6):
        mask = (frame.user_id == f"u{user}").to_numpy()
        rel = np.maximum(frame.label.to_numpy()[mask] - cfg.ranking.grade_none, 0)
        ndcgs.append(ndcg_score([rel], [scores[mask]], k=k))
        in_order = rel[np.argsort(-scores[mask])]
        aps.append(_ap_at_k(list(in_order), k, int((rel > 0).sum())))
        hits.append(float((in_order[:k] > 0).any()))
    assert got["groups"] == 5
    assert got["ndcg_at_10"] == pytest.approx(np.mean(ndcgs))
    assert got["map_at_10"] == pytest.approx(np.mean(aps))
    assert got["hit_rate_at_10"] == pytest.approx(np.mean(hits))


def test_gate_promotes_within_tolerance_and_refuses_below_naming_both_metrics():
    assert gate(0.30, None, 0.01, "ndcg_at_10").promoted
    assert gate(0.295, 0.30, 0.01, "ndcg_at_10").promoted
    with pytest.raises(GateRefused, match=r"new model ndcg_at_10 0\.2500 < champion ndcg_at_10 0\.3000"):
        gate(0.25, 0.30, 0.01, "ndcg_at_10")


def test_each_surface_grades_by_its_own_definition(spark, make_cfg):
    cfg = make_cfg("ranking.surface_min_grade={now_playing: 3}").ranking  # only a completed next track counts
    labels = spark.createDataFrame([("u1", "now_playing", "t1", 2), ("u1", "now_playing", "t2", 3),
                                    ("u1", "now_playing", "t3", 0), ("u1", "home", "t1", 2)],
                                   "user_id string, surface string, track_id string, label int")
    wanted = spark.createDataFrame([("u1", "now_playing", "t1", 1), ("u1", "now_playing", "t2", 3),
                                    ("u1", "now_playing", "t3", 0), ("u1", "home", "t1", 2)],
                                   "user_id string, surface string, track_id string, label int")
    assert_df_equality(surface_labels(labels, cfg), wanted, ignore_row_order=True, ignore_nullable=True)
