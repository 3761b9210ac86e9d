"""Per-surface rankers merged into one booster score each surface's rows with its own trees."""
import numpy as np
import pandas as pd
import lightgbm as lgb

from setlist.surface_models import merge_by_surface

PARAMS = {"objective": "lambdarank", "verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 5, "num_threads": 1}


def surface_model(rng, code: int, rounds: int) -> lgb.Booster:
    frame = pd.DataFrame({"a": rng.random(600), "b": rng.random(600), "surface_code": float(code)})
    label = ((frame.a > 0.5).astype(int) + ((frame.b > 0.3) & (code == 1))).to_numpy()
    return lgb.train(PARAMS, lgb.Dataset(frame, label=label, group=[30] * 20), num_boost_round=rounds)


def test_each_surface_scores_as_its_own_model_and_others_score_zero():
    rng = np.random.default_rng(0)
    boosters = {0: surface_model(rng, 0, 12), 1: surface_model(rng, 1, 1), 5: surface_model(rng, 5, 7)}
    merged = merge_by_surface(boosters, "surface_code")
    rows = pd.DataFrame({"a": rng.random(500), "b": rng.random(500),
                         "surface_code": rng.choice([0, 1, 2, 5], 500).astype(float)})
    rows.loc[:20, "a"] = np.nan  # missing values follow each surface model's own default direction
    scores = merged.predict(rows)
    for code, booster in boosters.items():
        own = rows.surface_code == code
        np.testing.assert_allclose(scores[own], booster.predict(rows[own]), rtol=0, atol=1e-9)
    assert np.all(scores[rows.surface_code == 2] == 0.0)
    assert merged.num_trees() == 20 and merged.feature_name() == ["a", "b", "surface_code"]
