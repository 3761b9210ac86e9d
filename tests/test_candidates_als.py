"""ALS candidates: block-structured taste is recovered, and blocked scoring is exact."""
import numpy as np
import pytest

from setlist.candidates.als import (als_candidates, als_candidates_from_model, fit_als,
                                    item_factor_matrix, top_k_rows)
from setlist.config import AlsConfig
from setlist.spark import set_checkpoint_dir

SCHEMA = "user_id string, track_id string, reward double"
CFG = AlsConfig(rank=4, reg_param=0.01, alpha=10.0, max_iter=8, seed=3, checkpoint_interval=2,
                num_blocks=2, top_n=4, score_block_users=3)


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
