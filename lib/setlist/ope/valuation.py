"""A target policy's value from logged lists: its propensities, a reward model, the estimators.

Inputs are pandas frames of bounded size (the lists of a date range): ``candidates`` (list_id,
surface, track_id, logging_score, target_score: every track either policy may serve) and
``logged`` (list_id, track_id, position, propensity, reward: the served rows with the logging
policy's propensities as publish recorded them).

The reward model (for DM and DR) predicts a served row's reward from its position and both
models' scores and ranks within the list. It is cross-fitted: each list's predictions come from
a model fitted on the other folds of lists, so DR's correction term is not fitted to itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import lightgbm as lgb

from setlist.config import ExplorationConfig, OpeConfig
from setlist.errors import OpeError
from setlist.ope.estimators import estimate
from setlist.ope.exposures import position_exposures, position_marginals

REWARD_FEATURES = ["position", "logging_score", "target_score", "logging_rank", "target_rank"]


def with_ranks(candidates: pd.DataFrame) -> pd.DataFrame:
    """Adds each track's rank (1 = best) within its list by each model's score, unless the
    caller ranked them over a fuller candidate set already."""
    ordered = candidates.sort_values(["list_id", "track_id"], kind="stable")
    if {"logging_rank", "target_rank"} <= set(ordered.columns):
        return ordered
    lists = ordered.groupby("list_id", sort=False)
    return ordered.assign(logging_rank=lists["logging_score"].rank(ascending=False, method="first"),
                          target_rank=lists["target_score"].rank(ascending=False, method="first"))


def _reward_model(rows: pd.DataFrame, seed: int) -> lgb.LGBMRegressor:
    # One thread: the logs of a date range are small, and a thread pool fights Spark for the cores.
    model = lgb.LGBMRegressor(n_estimators=150, learning_rate=0.08, num_leaves=15, min_child_samples=40,
                              random_state=seed, n_jobs=1, verbose=-1)
    return model.fit(rows[REWARD_FEATURES].to_numpy(), rows["reward"].to_numpy())


def cross_fitted_rewards(logged: pd.DataFrame, grid: pd.DataFrame, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Reward model predictions for ``logged`` rows and ``grid`` rows (both with
    ``REWARD_FEATURES``), each list predicted by the model fitted without its fold."""
    lists = np.array(sorted(set(logged["list_id"]) | set(grid["list_id"])))
    fold_of = pd.Series(np.random.default_rng(seed).permutation(lists.size) % folds, index=lists)
    logged_fold, grid_fold = logged["list_id"].map(fold_of).to_numpy(), grid["list_id"].map(fold_of).to_numpy()
    logged_hat, grid_hat = np.zeros(len(logged)), np.zeros(len(grid))
    for fold in range(folds):
        model = _reward_model(logged[logged_fold != fold], seed + fold)
        for rows, fold_rows, out in ((logged, logged_fold, logged_hat), (grid, grid_fold, grid_hat)):
            mask = fold_rows == fold
            if mask.any():
                out[mask] = model.predict(rows.loc[mask, REWARD_FEATURES].to_numpy())
    return np.clip(logged_hat, 0.0, None), np.clip(grid_hat, 0.0, None)


def position_bias(served: pd.DataFrame, pool: int, positions: int) -> np.ndarray:
    """Examination probabilities theta_1..theta_positions (theta_1 = 1) from the logs: theta_k
    = k ** -eta, eta fitted to the IPS value, position by position, of placing the pool's
    tracks uniformly at random (what exploration randomises: under the position-based model
    that value is theta_k times the pool's mean attractiveness)."""
    n_lists = served["list_id"].nunique()
    pooled = served[(served["logging_rank"] <= pool) & (served["position"] <= pool)]
    values = (pooled["reward"] / (pooled["propensity"] * pool)).groupby(pooled["position"]).sum() / n_lists
    values = values[values > 0]
    if len(values) < 3:
        raise OpeError(f"ope: too few rewarded exploration rows to estimate the position bias "
                       f"({len(values)} positions of the pool with a reward); log more days")
    slope = np.polyfit(np.log(values.index.to_numpy(dtype=float)), np.log(values.to_numpy()), 1,
                       w=np.sqrt(values.to_numpy()))[0]
    eta = float(np.clip(-slope, 0.0, 3.0))
    return np.arange(1, positions + 1, dtype=float) ** -eta


def check_logged(logged: pd.DataFrame) -> None:
    """OPE needs a positive logged propensity on every served row."""
    bad = logged["propensity"].isna() | ~(logged["propensity"] > 0)
    if bad.any():
        raise OpeError(f"{int(bad.sum())} of {len(logged)} logged rows have no positive propensity: "
                          "OPE needs lists served with exploration (publish.exploration.policy)")


def value_policy(candidates: pd.DataFrame, logged: pd.DataFrame, target: ExplorationConfig, cfg: OpeConfig,
                 seed: int, logging: ExplorationConfig | None = None) -> pd.DataFrame:
    """Estimates (``estimators.ESTIMATE_COLUMNS``) of serving ``target_score`` under ``target``,
    from lists served by ``logging_score`` under ``logging`` (default: ``target``'s exploration)."""
    check_logged(logged)
    logging = logging or target
    ranked = with_ranks(candidates)
    features = ranked[["list_id", "track_id", "surface", *[f for f in REWARD_FEATURES if f != "position"]]]
    marginals = position_marginals(ranked, "target_score", target, cfg.slate)
    grid = marginals.merge(features, on=["list_id", "track_id"], how="left")
    served = logged.drop(columns=["surface"], errors="ignore").merge(features, on=["list_id", "track_id"], how="left")
    unknown = served["target_score"].isna()
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} logged rows have no candidate row (list_id, track_id) to score")
    served = served.merge(marginals.rename(columns={"probability": "target_propensity"}),
                          on=["list_id", "track_id", "position"], how="left")
    served["target_propensity"] = served["target_propensity"].fillna(0.0)
    served["reward_hat"], grid["reward_hat"] = cross_fitted_rewards(served, grid, cfg.reward_model_folds, seed)
    theta = position_bias(served, logging.pool, int(served["position"].max()))
    exposure = position_exposures(ranked, "logging_score", logging, theta).rename(columns={"exposure": "logging_exposure"})
    served = served.merge(exposure, on=["list_id", "track_id"], how="left")
    for size in sorted({1, cfg.slate}):
        valued = marginals[marginals["position"] <= size]
        target_exposure = (valued["probability"] * theta[valued["position"].to_numpy() - 1]).groupby(
            [valued["list_id"], valued["track_id"]]).sum().rename(f"target_exposure_{size}")
        served = served.merge(target_exposure, left_on=["list_id", "track_id"], right_index=True, how="left")
        served[f"target_exposure_{size}"] = served[f"target_exposure_{size}"].fillna(0.0)
    direct = (grid.assign(target_reward_hat=grid["probability"] * grid["reward_hat"])
              .groupby(["list_id", "position"], as_index=False)["target_reward_hat"].sum())
    return estimate(served.rename(columns={"propensity": "logging_propensity"}), direct, cfg.slate, cfg.confidence)
