"""EASE candidates: Steck's closed form, Spark scoring equal to x_u B, and the item-KNN fallback."""
from collections import Counter

import numpy as np
import pytest
from chispa import assert_approx_df_equality, assert_df_equality

from setlist.candidates import ease
from setlist.candidates.common import CANDIDATE_COLUMNS, CANDIDATE_SCHEMA
from setlist.candidates.ease import ease_candidates, ease_weights, item_gram

SCHEMA = "user_id string, track_id string, reward double, plays long"
# Two components, {t1, t2, t3} and {t4, t5}, so a user of one scores the other's tracks
# exactly 0 (exact ties, broken by track_id). t6 and t7 have one user each: below
# min_item_users=2, so u6 (only t7 liked) is outside the model. Negative rewards are skips.
ROWS = [("u1", "t1", 2.0, 3), ("u1", "t2", 1.0, 2),
        ("u2", "t1", 1.0, 1), ("u2", "t2", 1.0, 1), ("u2", "t3", 3.0, 4),
        ("u3", "t2", 1.0, 1), ("u3", "t3", 1.0, 2), ("u3", "t6", 1.0, 1),
        ("u4", "t4", 1.0, 1), ("u4", "t5", 2.0, 2),
        ("u5", "t4", 1.0, 1), ("u5", "t5", 1.0, 1), ("u5", "t1", -1.0, 1),
        ("u6", "t7", 1.0, 1), ("u6", "t3", -0.5, 1),
        ("u7", "t5", 1.0, 1),
        ("u8", "t1", 1.0, 1)]
L2 = 0.7  # not a round number, so no accidental ties between non-zero scores


@pytest.fixture
def cfg(make_cfg):
    return make_cfg(f"candidates.ease.l2={L2}", "candidates.ease.min_item_users=2",
                    "candidates.ease.top_n=5", "candidates.ease.exclude_played=false").candidates.ease


def binary_matrix(rows, min_item_users=2):
    """(users, items, X) of the liked pairs, items kept by their user count, in id order."""
    liked = [(u, t) for u, t, reward, _ in rows if reward > 0]
    counts = Counter(t for _, t in liked)
    items = sorted(t for t, c in counts.items() if c >= min_item_users)
    users = sorted({u for u, t in liked if t in items})
    x = np.zeros((len(users), len(items)))
    for u, t in liked:
        if t in items:
            x[users.index(u), items.index(t)] = 1.0
    return users, items, x


def expected_frame(spark, users, items, scores, top_n, source="ease"):
    """Candidates from a users x items score matrix (NaN = not a candidate), ranked by
    score desc then track_id; scores rounded only for ordering, so float noise cannot
    reorder exact ties."""
    rows = []
    for u, user in enumerate(users):
        finite = [(items[j], float(s)) for j, s in enumerate(scores[u]) if np.isfinite(s)]
        ranked = sorted(finite, key=lambda r: (-round(r[1], 6), r[0]))[:top_n]
        rows += [(user, track, source, score, rank) for rank, (track, score) in enumerate(ranked, 1)]
    return spark.createDataFrame(rows, CANDIDATE_SCHEMA)


def ordered(frame):
    return frame.orderBy("user_id", "source_rank")


def test_ease_weights_equal_stecks_closed_form():
    x = (np.random.default_rng(7).random((9, 5)) < 0.5).astype(np.float64)
    gram = x.T @ x
    p = np.linalg.inv(gram + 3.0 * np.eye(5))
    direct = np.eye(5) - p @ np.diag(1.0 / np.diag(p))
    weights = ease_weights(gram, 3.0)
    assert weights.dtype == np.float32
    assert np.allclose(weights, direct, atol=1e-6)
    assert np.all(np.diag(weights) == 0.0)


def test_item_gram_counts_users_in_common_on_one_triangle(spark):
    pairs = spark.createDataFrame([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "b")],
                                  "user_id string, track_id string")
    wanted = spark.createDataFrame([("a", "a", 2), ("a", "b", 2), ("b", "b", 3)],
                                   "track_a string, track_b string, users long")
    assert_df_equality(item_gram(pairs).orderBy("track_a", "track_b"), wanted, ignore_nullable=True)


@pytest.mark.parametrize("block_bytes", [ease.SCORE_BLOCK_BYTES, 8 * 5 * 3])
def test_ease_scores_are_the_users_rows_times_b(spark, cfg, monkeypatch, block_bytes):
    # 8 * items * 3 bytes: blocks of 3 users, so the 7 model users span three blocks.
    monkeypatch.setattr(ease, "SCORE_BLOCK_BYTES", block_bytes)
    users, items, x = binary_matrix(ROWS)
    scores = x.astype(np.float32) @ ease_weights(x.T @ x, L2)
    actual, info = ease_candidates(spark.createDataFrame(ROWS, SCHEMA), cfg)
    assert info == {"ease_algorithm": "ease", "ease_items": 5}
    assert actual.columns == CANDIDATE_COLUMNS
    assert_approx_df_equality(ordered(actual), ordered(expected_frame(spark, users, items, scores, 5)),
                              1e-5, ignore_nullable=True)
    assert "u6" not in users and not {"t6", "t7"} & set(items)


def test_played_tracks_are_excluded_and_zero_score_ties_break_by_track_id(spark, cfg):
    users, items, x = binary_matrix(ROWS)
    scores = x.astype(np.float32) @ ease_weights(x.T @ x, L2)
    for user, track, *_ in ROWS:  # skipped tracks count as played too
        if user in users and track in items:
            scores[users.index(user), items.index(track)] = np.nan
    actual, _ = ease_candidates(spark.createDataFrame(ROWS, SCHEMA),
                                cfg.model_copy(update={"exclude_played": True, "top_n": 2}))
    wanted = expected_frame(spark, users, items, scores, 2)
    assert_approx_df_equality(ordered(actual), ordered(wanted), 1e-5, ignore_nullable=True)
    # u4 played t4 and t5: the other component scores 0, so t1 and t2 win on track_id;
    # u5 skipped t1, which is therefore excluded though it is no evidence.
    picks = {(r.user_id, r.source_rank): r.track_id for r in actual.collect()}
    assert (picks[("u4", 1)], picks[("u4", 2)]) == ("t1", "t2")
    assert (picks[("u5", 1)], picks[("u5", 2)]) == ("t2", "t3")


def test_skips_only_pairs_are_not_evidence(spark, cfg):
    # Skips linking the two components, and a track (t9) only ever skipped by three users.
    skips = [("u4", "t1", -1.0, 1), ("u4", "t2", -2.0, 1), ("u1", "t4", -1.0, 1),
             ("u1", "t9", -1.0, 1), ("u2", "t9", -1.0, 1), ("u3", "t9", 0.0, 1)]
    base, base_info = ease_candidates(spark.createDataFrame(ROWS, SCHEMA), cfg)
    with_skips, info = ease_candidates(spark.createDataFrame(ROWS + skips, SCHEMA), cfg)
    assert info == base_info == {"ease_algorithm": "ease", "ease_items": 5}
    assert_approx_df_equality(ordered(with_skips), ordered(base), 1e-6, ignore_nullable=True)


def knn_reference(x, k, sims):
    """Scores x @ S with S each item's k best other items (ties by index); NaN where unreachable."""
    sims = sims.copy()
    np.fill_diagonal(sims, 0.0)
    kept = np.zeros_like(sims)
    for i in range(len(sims)):
        candidates = [j for j in range(len(sims)) if j != i and sims[i, j] != 0.0]
        for j in sorted(candidates, key=lambda j: (-round(sims[i, j], 9), j))[:k]:
            kept[i, j] = sims[i, j]
    scores = x @ kept
    return np.where(x @ (kept != 0.0) > 0, scores, np.nan)


def test_above_max_items_falls_back_to_cosine_item_knn(spark, cfg):
    users, items, x = binary_matrix(ROWS)
    gram = x.T @ x
    cosine = gram / np.sqrt(np.outer(np.diag(gram), np.diag(gram)))
    knn_cfg = cfg.model_copy(update={"max_items": 3, "knn_neighbours": 1, "top_n": 3})
    actual, info = ease_candidates(spark.createDataFrame(ROWS, SCHEMA), knn_cfg)
    assert info == {"ease_algorithm": "item_knn", "ease_items": 5}
    wanted = expected_frame(spark, users, items, knn_reference(x, 1, cosine), 3)
    assert_approx_df_equality(ordered(actual), ordered(wanted), 1e-9, ignore_nullable=True)


def test_bm25_item_knn_weighs_like_implicit(spark, cfg):
    users, items, x = binary_matrix(ROWS)
    k1, b = ease.BM25_K1, ease.BM25_B
    n_i = x.sum(axis=0)
    length = (1.0 - b) + b * n_i / n_i.mean()
    idf = np.log(len(items) / (1.0 + x.sum(axis=1)))
    weighted = x * idf[:, None] * ((k1 + 1.0) / (k1 * length + 1.0))[None, :]
    knn_cfg = cfg.model_copy(update={"max_items": 1, "knn_similarity": "bm25", "knn_neighbours": 10,
                                     "exclude_played": True})
    actual, info = ease_candidates(spark.createDataFrame(ROWS, SCHEMA), knn_cfg)
    assert info["ease_algorithm"] == "item_knn"
    scores = knn_reference(x, 10, weighted.T @ weighted)
    scores[x > 0] = np.nan
    scores[users.index("u5"), items.index("t1")] = np.nan  # played (skipped)
    wanted = expected_frame(spark, users, items, scores, 5)
    assert_approx_df_equality(ordered(actual), ordered(wanted), 1e-9, ignore_nullable=True)


def test_nothing_to_learn_gives_an_empty_candidate_frame(spark, cfg):
    only_skips = spark.createDataFrame([("u1", "t1", -1.0, 1), ("u2", "t1", -0.5, 1)], SCHEMA)
    actual, info = ease_candidates(only_skips, cfg)
    assert info == {"ease_algorithm": "none", "ease_items": 0}
    assert actual.columns == CANDIDATE_COLUMNS and actual.count() == 0
