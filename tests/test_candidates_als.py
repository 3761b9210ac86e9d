"""ALS candidates: block-structured taste is recovered, and blocked scoring is exact."""
import numpy as np
import pytest

from setlist.candidates.als import (als_candidates, als_candidates_from_model, check_scoring_memory,
                                    fit_als, item_blocked_top_k, item_factor_matrix, top_k_rows)
from setlist.config import AlsConfig
from setlist.errors import ConfigError
from setlist.spark import set_checkpoint_dir

SCHEMA = "user_id string, track_id string, reward double"
CFG = AlsConfig(rank=4, reg_param=0.01, alpha=10.0, max_iter=8, seed=3, checkpoint_interval=2,
                num_blocks=2, top_n=4, score_block_users=3, score_block_items=3)


def block_matrix(spark):
    """Users u0..u5 play tracks a0..a3, users v0..v5 play b0..b3; u0 never played a3.

    One skip (negative reward) of u1 on b0 is confidence in a zero preference.
    """
    rows = [(f"u{i}", f"a{j}", 2.0) for i in range(6) for j in range(4) if (i, j) != (0, 3)]
    rows += [(f"v{i}", f"b{j}", 2.0) for i in range(6) for j in range(4)]
    rows += [("u1", "b0", -0.75)]
    return spark.createDataFrame(rows, SCHEMA)


@pytest.fixture(scope="module")
def fitted(spark, tmp_path_factory):
    set_checkpoint_dir(spark, str(tmp_path_factory.mktemp("checkpoints")))
    interactions = block_matrix(spark)
    return interactions, fit_als(interactions, CFG)


def test_in_block_unseen_track_comes_first_when_played_ones_are_excluded(spark, fitted):
    interactions, model = fitted
    cfg = CFG.model_copy(update={"exclude_played": True})
    top = als_candidates_from_model(model, interactions, cfg).where("user_id = 'u0'").orderBy("source_rank")
    assert [r.track_id for r in top.collect()][0] == "a3"


def test_block_taste_ranks_own_block_above_the_other(spark, fitted):
    interactions, model = fitted
    recs = als_candidates_from_model(model, interactions, CFG).where("user_id = 'v2'").orderBy("source_rank")
    assert {r.track_id for r in recs.collect()} == {"b0", "b1", "b2", "b3"}


def test_blocked_scoring_equals_brute_force_top_k(spark, fitted):
    interactions, model = fitted
    track_ids, items = item_factor_matrix(model)
    users = model.stages[0].labels
    user_factors = {users[r.id]: np.asarray(r.features, dtype=np.float32)
                    for r in model.stages[2].userFactors.collect()}
    for scoring in ("blocked", "recommend_for_all"):
        cfg = CFG.model_copy(update={"scoring": scoring})
        got = {}
        for r in als_candidates_from_model(model, interactions, cfg).orderBy("user_id", "source_rank").collect():
            got.setdefault(r.user_id, []).append(r.track_id)
        for user, vector in user_factors.items():
            scores = items @ vector
            # Brute force: sort every item by (-score, track_id), take top_n.
            order = sorted(range(len(track_ids)), key=lambda i: (-scores[i], track_ids[i]))[:CFG.top_n]
            assert got[user] == [track_ids[i] for i in order], (scoring, user)


def test_top_k_rows_breaks_ties_by_index_and_skips_excluded():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf], [0.0, -np.inf, 2.0, 1.0]], dtype=np.float32)
    cols, best = top_k_rows(scores, 3)
    assert cols.tolist() == [[1, 2, 0], [2, 3, 0]]
    assert best.tolist() == [[3.0, 3.0, 1.0], [2.0, 1.0, 0.0]]
    # Ties at the cut go to the lowest indices too (argpartition alone picks any of them).
    tied = np.zeros((1, 64), dtype=np.float32)
    tied[0, 40] = 1.0
    assert top_k_rows(tied, 4)[0].tolist() == [[40, 0, 1, 2]]


def test_users_unknown_to_the_model_get_no_candidates(spark, fitted):
    _, model = fitted
    cold = spark.createDataFrame([("new_user", "a0", 1.0)], SCHEMA)
    assert als_candidates_from_model(model, cold, CFG).count() == 0


def test_als_candidates_has_the_candidate_columns(spark, fitted):
    interactions, _ = fitted
    out = als_candidates(interactions, CFG)
    assert out.columns == ["user_id", "track_id", "source", "source_score", "source_rank"]
    assert dict(out.dtypes) == {"user_id": "string", "track_id": "string", "source": "string",
                                "source_score": "double", "source_rank": "int"}


def test_item_blocked_top_k_equals_one_full_block_with_ties_and_exclusions():
    rng = np.random.default_rng(4)
    # Small integers: every dot product is exact in float32 whatever the block shape, and ties
    # (which the lower item index must win, across blocks too) are frequent.
    users = rng.integers(-2, 3, size=(7, 5)).astype(np.float32)
    items = rng.integers(-2, 3, size=(23, 5)).astype(np.float32)
    items[10] = items[3]
    played = [np.array([0, 3, 22]), None, np.array([], dtype=int), np.array([5]), None, None, np.array([9, 10])]
    full = users @ items.T
    for row, p in enumerate(played):
        if p is not None:
            full[row, p] = -np.inf
    expected_cols, expected_best = top_k_rows(full, 6)
    for block_items in (1, 4, 10, 23, 100):
        cols, best = item_blocked_top_k(users, items, 6, block_items, played)
        assert cols.tolist() == expected_cols.tolist(), block_items
        np.testing.assert_array_equal(best, expected_best)


def test_a_scoring_set_up_over_the_memory_budget_fails_with_its_numbers():
    with pytest.raises(ConfigError, match=r"score_block_users=4096 x score_block_items=131072"):
        AlsConfig(score_block_users=4096, score_block_items=131072, score_memory_mb=1024)
    cfg = AlsConfig(rank=128, score_block_users=2048, score_block_items=65536, score_memory_mb=1024)
    check_scoring_memory(cfg, 100_000)  # 512 MiB block + 49 MiB factors fit
    with pytest.raises(ConfigError, match=r"2,000,000 tracks needs 1,489 MiB.*score_memory_mb=1024"):
        check_scoring_memory(cfg, 2_000_000)


def test_training_refuses_a_catalogue_whose_factors_do_not_fit(spark, tmp_path):
    set_checkpoint_dir(spark, str(tmp_path))
    tight = CFG.model_copy(update={"rank": 4, "score_memory_mb": 1, "score_block_users": 1,
                                   "score_block_items": 1})
    tight = tight.model_copy(update={"rank": 70_000})  # 8 tracks x 70k x 4 B > 1 MiB
    with pytest.raises(ConfigError, match="item factors 8 x rank 70000"):
        fit_als(block_matrix(spark), tight)
