"""Logging policies' propensities and the off-policy estimators, against direct formulas."""
import numpy as np
import pandas as pd
import pytest

from setlist.config import ExplorationConfig, OpeConfig, OpeSimulatorConfig
from setlist.errors import OpeError
from setlist.ope import estimators, valuation
from setlist.ope.estimators import estimate
from setlist.ope.exposures import position_marginals, serve_lists
from setlist.ope.policies import list_rng, ranking_marginals, sample_ranking
from setlist.ope.simulation import draw_rewards, expected_value
from setlist.ope.valuation import value_policy

SCORES = np.array([0.3, 2.0, -1.0, 0.9, 0.9, 1.5])


@pytest.mark.parametrize("policy", ["none", "epsilon_greedy", "plackett_luce"])
def test_marginals_are_distributions_and_match_sampling(policy):
    cfg = ExplorationConfig(policy=policy, epsilon=0.3, temperature=0.7, pool=4, samples=20000)
    marginals = ranking_marginals(SCORES, cfg, 5, np.random.default_rng(1))
    assert marginals.shape == (6, 5)
    np.testing.assert_allclose(marginals.sum(axis=0), 1.0)  # one track per position
    # A track at most once per list (Plackett-Luce's later positions are Monte Carlo estimates).
    assert (marginals.sum(axis=1) <= 1 + (5e-3 if policy == "plackett_luce" else 1e-9)).all()
    counts = np.zeros_like(marginals)
    rng = np.random.default_rng(2)
    for _ in range(20000):
        counts[sample_ranking(SCORES, cfg, 5, rng), np.arange(5)] += 1
    np.testing.assert_allclose(counts / 20000, marginals, atol=0.015)


def test_epsilon_greedy_marginals_are_the_closed_form():
    cfg = ExplorationConfig(policy="epsilon_greedy", epsilon=0.2, pool=3)
    marginals = ranking_marginals(SCORES, cfg, 4)
    greedy = [1, 5, 3, 4, 0, 2]  # 0.9 twice: the earlier candidate first
    expected = np.zeros((6, 4))
    for k in range(4):
        expected[greedy[k], k] = 0.8 if k < 3 else 1.0
    for k in range(3):
        expected[greedy[:3], k] += 0.2 / 3
    np.testing.assert_allclose(marginals, expected)


def test_plackett_luce_first_position_is_the_exact_softmax():
    cfg = ExplorationConfig(policy="plackett_luce", temperature=0.5, pool=6, samples=100)
    first = ranking_marginals(SCORES, cfg, 3, np.random.default_rng(0))[:, 0]
    softmax = np.exp(SCORES / 0.5) / np.exp(SCORES / 0.5).sum()
    np.testing.assert_allclose(first, softmax)


def test_served_lists_are_reproducible_per_list():
    cfg = ExplorationConfig(policy="plackett_luce", temperature=1.0, pool=5, samples=200)
    candidates = pd.DataFrame({"list_id": np.repeat(["d/u1/home", "d/u2/home"], 6),
                               "track_id": [f"t{i}" for i in range(6)] * 2, "score": np.tile(SCORES, 2)})
    first = serve_lists(candidates, "score", cfg, 4)
    again = serve_lists(candidates.sample(frac=1, random_state=3), "score", cfg, 4)
    pd.testing.assert_frame_equal(first, again)
    assert (first["propensity"] > 0).all() and first.groupby("list_id").size().tolist() == [4, 4]
    assert list_rng(1, 0, "a").random() == list_rng(1, 0, "a").random() != list_rng(1, 0, "b").random()


def tiny_log():
    logged = pd.DataFrame({
        "list_id": ["a", "a", "b", "b", "c"], "surface": ["home", "home", "home", "home", "radio"],
        "position": [1, 2, 1, 2, 1], "reward": [1.0, 0.0, 0.0, 1.0, 1.0],
        "logging_propensity": [0.5, 0.25, 0.5, 0.5, 0.8], "target_propensity": [1.0, 0.5, 0.0, 0.25, 0.4],
        "reward_hat": [0.6, 0.2, 0.3, 0.4, 0.5]})
    target = pd.DataFrame({"list_id": ["a", "a", "b", "b", "c"], "position": [1, 2, 1, 2, 1],
                           "target_reward_hat": [0.7, 0.1, 0.2, 0.3, 0.45]})
    return logged, target


def test_estimators_equal_their_formulas_on_a_tiny_log():
    logged, target = tiny_log()
    out = estimate(logged, target, slate=2, confidence=0.95).set_index(["surface", "setting", "estimator"])
    w = logged["target_propensity"] / logged["logging_propensity"]
    r, rhat = logged["reward"], logged["reward_hat"]
    # all lists, slate of 2: list sums
    ips = [(w * r)[0:2].sum(), (w * r)[2:4].sum(), (w * r)[4]]
    assert out.loc[("all", "slate", "ips"), "value"] == pytest.approx(np.mean(ips))
    dr = [0.8 + (w * (r - rhat))[0:2].sum(), 0.5 + (w * (r - rhat))[2:4].sum(), 0.45 + (w * (r - rhat))[4]]
    assert out.loc[("all", "slate", "dr"), "value"] == pytest.approx(np.mean(dr))
    assert out.loc[("all", "slate", "dm"), "value"] == pytest.approx(np.mean([0.8, 0.5, 0.45]))
    first, second = logged["position"] == 1, logged["position"] == 2
    snips = (w * r)[first].sum() / w[first].sum() + (w * r)[second].sum() / (w[second].sum() + 0.0)
    assert out.loc[("all", "slate", "snips"), "value"] == pytest.approx(snips)
    assert out.loc[("home", "top1", "ips"), "value"] == pytest.approx(np.mean([2.0, 0.0]))
    half = 1.959964 * np.std(ips, ddof=1) / np.sqrt(3)
    assert out.loc[("all", "slate", "ips"), "ci_low"] == pytest.approx(np.mean(ips) - half, rel=1e-5)
    top1 = w[first].to_numpy()
    assert out.loc[("all", "top1", "ips"), "ess"] == pytest.approx(top1.sum() ** 2 / (top1 ** 2).sum())


def test_position_based_estimators_equal_their_formulas():
    rows = {"list": np.array([0, 0, 1, 1]), "reward": np.array([1.0, 0.0, 1.0, 1.0]),
            "position": np.array([1, 2, 1, 2]), "attractiveness": np.array([0.5, 0.2, 0.4, 0.6]),
            "logging": np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.2, 0.8]]),
            "target": np.array([[0.1, 0.9], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])}
    pool = exact_pool_rows(eta=1.0, lists=2)
    direct = np.array([[0.3, 0.1], [0.2, 0.25]])
    groups = {"all": np.array([True, True]), "home": np.array([True, False])}
    out = estimators.position_based(rows, pool, direct, groups, {"top1": 1, "slate": 2}, 0.95, 50, seed=3)
    at = out.set_index(["surface", "setting", "estimator"])
    theta = np.array([1.0, 0.5])
    w = (rows["target"] @ theta) / (rows["logging"] @ theta)
    ips = np.bincount(rows["list"], weights=w * rows["reward"])
    residual = rows["reward"] - theta[rows["position"] - 1] * rows["attractiveness"]
    dr = direct @ theta + np.bincount(rows["list"], weights=w * residual)
    assert at.loc[("all", "slate", "pbm_ips"), "value"] == pytest.approx(ips.mean())
    assert at.loc[("home", "slate", "pbm_ips"), "value"] == pytest.approx(ips[0])
    assert at.loc[("all", "slate", "pbm_dr"), "value"] == pytest.approx(dr.mean())
    w1 = rows["target"][:, 0] / (rows["logging"] @ theta)
    assert at.loc[("all", "top1", "pbm_ips"), "value"] == pytest.approx(
        np.bincount(rows["list"], weights=w1 * rows["reward"]).mean())
    assert (out["ci_low"] <= out["value"] + 1e-12).all() and (out["value"] <= out["ci_high"] + 1e-12).all()


def exact_pool_rows(eta: float, lists: int) -> dict[str, np.ndarray]:
    """Every (rank, position) cell of a 4-track pool in each list, its reward exactly a_r k^-eta."""
    rank, position = (a.ravel() for a in np.meshgrid(np.arange(1, 5), np.arange(1, 5), indexing="ij"))
    attractiveness = np.array([0.6, 0.4, 0.3, 0.1])[rank - 1]
    return {"list": np.repeat(np.arange(lists), rank.size), "rank": np.tile(rank, lists),
            "position": np.tile(position, lists), "reward": np.tile(attractiveness * position ** -eta, lists),
            "weight": np.ones(rank.size * lists)}


def test_examination_fit_recovers_the_position_bias_from_the_pool_cells():
    pool = exact_pool_rows(eta=0.7, lists=1)
    assert estimators.fit_examination(pool["rank"], pool["position"], pool["reward"]) == pytest.approx(0.7)
    # Weighting one cell twice changes nothing: its rewards still fit the curve exactly.
    weight = np.where((pool["rank"] == 2) & (pool["position"] == 3), 2.0, 1.0)
    assert estimators.fit_examination(pool["rank"], pool["position"], pool["reward"], weight) == pytest.approx(0.7)
    # Rewards falling faster with position than the cells' attractiveness explains: a steeper curve.
    steeper = pool["reward"] * pool["position"] ** -0.5
    assert estimators.fit_examination(pool["rank"], pool["position"], steeper) == pytest.approx(1.2)


def simulated_lists(n_lists=400, n_tracks=12, seed=0):
    rng = np.random.default_rng(seed)
    affinity = rng.random((n_lists, n_tracks))
    frame = pd.DataFrame({"list_id": np.repeat([f"l{i:04d}" for i in range(n_lists)], n_tracks),
                          "surface": "home", "track_id": np.tile([f"t{j:02d}" for j in range(n_tracks)], n_lists),
                          "affinity": affinity.ravel()})
    frame["logging_score"] = frame["affinity"] + rng.normal(0, 0.6, len(frame))
    frame["target_score"] = frame["affinity"] + rng.normal(0, 0.2, len(frame))
    return frame


def test_estimates_cover_the_true_value_on_simulated_logs():
    frame = simulated_lists()
    cfg = OpeConfig(slate=3)
    sim = OpeSimulatorConfig(base_logit=-1.0, affinity_logit=3.0)
    logging = ExplorationConfig(policy="epsilon_greedy", epsilon=0.5, pool=12)  # full support
    target = ExplorationConfig(policy="none")
    affinity = frame.set_index(["list_id", "track_id"])["affinity"]
    truth = expected_value(position_marginals(frame, "target_score", target, 3), affinity, sim, 3).mean()
    logged_value = expected_value(position_marginals(frame, "logging_score", logging, 3), affinity, sim, 3).mean()
    assert truth > logged_value  # the target is the better policy
    served = serve_lists(frame, "logging_score", logging, 3)
    served["reward"] = draw_rewards(served, affinity, sim, np.random.default_rng(5))
    out = value_policy(frame, served, target, cfg, seed=7, logging=logging).set_index(["surface", "setting", "estimator"])
    for estimator in ("ips", "snips", "dr", "pbm_ips", "pbm_dr"):
        row = out.loc[("all", "slate", estimator)]
        assert row["ci_low"] <= truth <= row["ci_high"], (estimator, row.to_dict(), truth)
    for estimator in ("dr", "pbm_dr"):
        assert abs(out.loc[("all", "slate", estimator), "value"] - truth) / truth < 0.15


def test_logs_without_exploration_are_refused():
    frame = simulated_lists(n_lists=3)
    served = serve_lists(frame, "logging_score", ExplorationConfig(policy="epsilon_greedy", epsilon=0.1, pool=4), 2)
    served["reward"] = 1.0
    served.loc[0, "propensity"] = 0.0
    with pytest.raises(OpeError, match="OPE needs lists served with exploration"):
        value_policy(frame, served, ExplorationConfig(), OpeConfig(slate=2), seed=1)


def test_support_is_the_pool_or_the_logged_length_and_its_share_is_reported():
    grid = pd.DataFrame({"list_id": ["a"] * 4 + ["b"] * 2, "surface": ["home"] * 4 + ["radio"] * 2,
                         "track_id": ["t1", "t4", "t2", "t5", "t1", "t2"],
                         "logging_rank": [1, 4, 2, 5, 1, 2], "position": [1, 1, 2, 2, 1, 2],
                         "probability": [0.5, 0.5, 0.25, 0.75, 1.0, 1.0]})
    logged = pd.DataFrame({"list_id": ["a", "a", "b", "b"]})  # two positions logged per list
    explored = valuation.supported(grid, logged, ExplorationConfig(policy="epsilon_greedy", pool=4))
    assert explored.tolist() == [True, True, True, False, True, True]  # the pool's 4 tracks could be served
    assert valuation.supported(grid, logged, ExplorationConfig(policy="none")).tolist() == [
        True, False, True, False, True, True]
    share = valuation.unsupported_share(grid.assign(supported=explored), slate=2).set_index(["surface", "setting"])
    assert share.loc[("home", "slate"), "unsupported"] == pytest.approx(0.75 / 2)
    assert share.loc[("home", "top1"), "unsupported"] == 0.0
    assert share.loc[("all", "slate"), "unsupported"] == pytest.approx(0.75 / 4)
    assert share.loc[("radio", "slate"), "unsupported"] == 0.0
