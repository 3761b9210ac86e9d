"""A target policy's value from logged lists: its propensities, a reward model, the estimators.

Inputs are pandas frames of bounded size (the lists of a date range): ``candidates`` (list_id,
surface, track_id, logging_score, target_score: every track either policy may serve) and
``logged`` (list_id, track_id, position, propensity, reward: the served rows with the logging
policy's propensities as publish recorded them).

The reward model (for DM and DR) is position-based: theta_k (fitted to ``pool_rows``) times
the track's attractiveness, learnt from both models' scores and ranks within the list. That
shape is what makes the position-based DR's correction cancel the model's error at any position.
It is cross-fitted: each list's predictions come from a model fitted on the other folds of
lists, so DR's correction term is not fitted to itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import lightgbm as lgb

from setlist.config import ExplorationConfig, OpeConfig
from setlist.errors import OpeError
from setlist.ope.estimators import estimate, examination, fit_examination, position_based, settings
from setlist.ope.exposures import marginal_rows, position_marginals

# The reward model is position-based like the estimators: theta_position * attractiveness(x, track),
# attractiveness learnt from both models' scores and ranks within the list.
ATTRACTIVENESS_FEATURES = ["logging_score", "target_score", "logging_rank", "target_rank"]


def with_ranks(candidates: pd.DataFrame) -> pd.DataFrame:
    """Adds each track's rank (1 = best) within its list by each model's score, unless the
    caller ranked them over a fuller candidate set already."""
    ordered = candidates.sort_values(["list_id", "track_id"], kind="stable")
    if {"logging_rank", "target_rank"} <= set(ordered.columns):
        return ordered
    lists = ordered.groupby("list_id", sort=False)
    return ordered.assign(logging_rank=lists["logging_score"].rank(ascending=False, method="first"),
                          target_rank=lists["target_score"].rank(ascending=False, method="first"))


def _reward_model(rows: pd.DataFrame, theta: np.ndarray, seed: int) -> lgb.LGBMRegressor:
    # One thread: the logs of a date range are small, and a thread pool fights Spark for the cores.
    model = lgb.LGBMRegressor(n_estimators=150, learning_rate=0.08, num_leaves=15, min_child_samples=40,
                              random_state=seed, n_jobs=1, verbose=-1)
    examined = theta[rows["position"].to_numpy() - 1]
    # E[r / theta_k] is the track's attractiveness whatever its position; weighting by theta_k
    # keeps deep positions' inflated noise from dominating the fit.
    return model.fit(rows[ATTRACTIVENESS_FEATURES].to_numpy(), rows["reward"].to_numpy() / examined,
                     sample_weight=examined)


def cross_fitted_attractiveness(logged: pd.DataFrame, grid: pd.DataFrame, theta: np.ndarray, folds: int,
                                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The reward model's attractiveness (rhat = theta_k x attractiveness) of ``logged`` rows and
    ``grid`` rows, each list predicted by the model fitted without its fold."""
    lists = np.array(sorted(set(logged["list_id"]) | set(grid["list_id"])))
    fold_of = pd.Series(np.random.default_rng(seed).permutation(lists.size) % folds, index=lists)
    logged_fold, grid_fold = logged["list_id"].map(fold_of).to_numpy(), grid["list_id"].map(fold_of).to_numpy()
    logged_hat, grid_hat = np.zeros(len(logged)), np.zeros(len(grid))
    for fold in range(folds):
        model = _reward_model(logged[logged_fold != fold], theta, seed + fold)
        for rows, fold_rows, out in ((logged, logged_fold, logged_hat), (grid, grid_fold, grid_hat)):
            mask = fold_rows == fold
            if mask.any():
                out[mask] = np.clip(model.predict(rows.loc[mask, ATTRACTIVENESS_FEATURES].to_numpy()), 0.0, None)
    return logged_hat, grid_hat


def pool_rows(served: pd.DataFrame, lists: pd.Index, logging: ExplorationConfig) -> dict[str, np.ndarray]:
    """The logged rows of the tracks the logging policy randomises (its ``pool`` best), which
    identify the position bias (``estimators.fit_examination``), as arrays.

    Epsilon-greedy places a pool track at random or at its rank whatever its list, so the rows
    count as they are. Plackett-Luce places it by the list's scores, which go with its
    attractiveness, so each row is weighted by 1 / its propensity: every (list, track, position)
    then counts once in expectation, as under a uniform placement.
    """
    pooled = served[served["logging_rank"] <= logging.pool]
    moved = pooled[(pooled["position"] != pooled["logging_rank"]) & (pooled["reward"] > 0)]
    if moved.empty:  # the likelihood of eta is flat without one: only exploration separates theta_k from a_r
        raise OpeError("ope: no rewarded track was served off its rank by exploration, so the position bias "
                       "cannot be estimated; log more days or explore more lists (publish.exploration.epsilon)")
    weight = (1.0 / pooled["propensity"].to_numpy() if logging.policy == "plackett_luce"
              else np.ones(len(pooled)))
    return {"list": lists.get_indexer(pooled["list_id"]), "rank": pooled["logging_rank"].to_numpy(dtype=int),
            "position": pooled["position"].to_numpy(dtype=int), "reward": pooled["reward"].to_numpy(dtype=float),
            "weight": weight}


def supported(grid: pd.DataFrame, logged: pd.DataFrame, logging: ExplorationConfig) -> np.ndarray:
    """Whether each (list, track) row of ``grid`` could appear in its logged list. Every policy
    (``setlist.ope.policies``) fills the list's first positions from the logging model's ``pool``
    best tracks and the rest greedily, so the support is the best max(pool, list length) tracks
    (the list's length alone without exploration)."""
    length = grid["list_id"].map(logged.groupby("list_id").size()).fillna(0).to_numpy()
    reach = length if logging.policy == "none" else np.where(length > 0, np.maximum(length, logging.pool), 0)
    return grid["logging_rank"].to_numpy() <= reach


def unsupported_share(grid: pd.DataFrame, slate: int) -> pd.DataFrame:
    """Per surface ("all" too) and setting, the expected share of the valued positions that the
    target fills with tracks no logged list could hold (columns surface, setting, unsupported)."""
    rows = []
    for setting, size in settings(slate).items():
        top = grid[grid["position"] <= size]
        for surface in [*sorted(top["surface"].unique()), "all"]:
            group = top if surface == "all" else top[top["surface"] == surface]
            share = group.loc[~group["supported"], "probability"].sum() / max(group["list_id"].nunique() * size, 1)
            rows.append({"surface": surface, "setting": setting, "unsupported": float(share)})
    return pd.DataFrame(rows)


def check_logged(logged: pd.DataFrame) -> None:
    """OPE needs a positive logged propensity on every served row."""
    bad = logged["propensity"].isna() | ~(logged["propensity"] > 0)
    if bad.any():
        raise OpeError(f"{int(bad.sum())} of {len(logged)} logged rows have no positive propensity: "
                          "OPE needs lists served with exploration (publish.exploration.policy)")


def value_policy(candidates: pd.DataFrame, logged: pd.DataFrame, target: ExplorationConfig, cfg: OpeConfig,
                 seed: int, logging: ExplorationConfig | None = None) -> pd.DataFrame:
    """Estimates (``estimators.ESTIMATE_COLUMNS`` and ``unsupported``, see :func:`unsupported_share`)
    of serving ``target_score`` under ``target``, from lists served by ``logging_score`` under
    ``logging`` (default: ``target``'s exploration)."""
    check_logged(logged)
    logging = logging or target
    ranked = with_ranks(candidates)
    features = ranked[["list_id", "track_id", "surface", *ATTRACTIVENESS_FEATURES]]
    marginals = position_marginals(ranked, "target_score", target, cfg.slate)
    grid = marginals.merge(features, on=["list_id", "track_id"], how="left")
    grid["supported"] = supported(grid, logged, logging)
    served = logged.drop(columns=["surface"], errors="ignore").merge(features, on=["list_id", "track_id"], how="left")
    unknown = served["target_score"].isna()
    if unknown.any():
        raise ValueError(f"{int(unknown.sum())} logged rows have no candidate row (list_id, track_id) to score")
    served = served.merge(marginals.rename(columns={"probability": "target_propensity"}),
                          on=["list_id", "track_id", "position"], how="left")
    served["target_propensity"] = served["target_propensity"].fillna(0.0)
    lists = pd.Index(sorted(set(served["list_id"]) | set(grid["list_id"])))
    pool = pool_rows(served, lists, logging)
    width = int(max(served["position"].max(), cfg.slate))
    theta = examination(fit_examination(pool["rank"], pool["position"], pool["reward"], pool["weight"]), width)
    served["attractiveness"], grid["attractiveness"] = cross_fitted_attractiveness(
        served, grid, theta, cfg.reward_model_folds, seed)
    served["reward_hat"] = theta[served["position"].to_numpy() - 1] * served["attractiveness"]
    grid["reward_hat"] = theta[grid["position"].to_numpy() - 1] * grid["attractiveness"]
    direct = (grid.assign(target_reward_hat=grid["probability"] * grid["reward_hat"])
              .groupby(["list_id", "position"], as_index=False)["target_reward_hat"].sum())
    importance = estimate(served.rename(columns={"propensity": "logging_propensity"}), direct, cfg.slate,
                          cfg.confidence)
    # The position-based DR's direct term stays on the logs' support: beyond it the reward model
    # only extrapolates (flat, from the logging model's last served ranks, which overstates tracks
    # it ranks far lower), and no logged row can correct it. Those tracks count 0, as in PBM-IPS;
    # ``unsupported`` says how much of the candidate's slate that is.
    backed = grid[grid["supported"]]
    attraction = np.zeros((lists.size, cfg.slate))
    np.add.at(attraction, (lists.get_indexer(backed["list_id"]), backed["position"].to_numpy() - 1),
              backed["probability"].to_numpy() * backed["attractiveness"].to_numpy())
    rows = {"list": lists.get_indexer(served["list_id"]), "reward": served["reward"].to_numpy(),
            "position": served["position"].to_numpy(), "attractiveness": served["attractiveness"].to_numpy(),
            "logging": marginal_rows(ranked, "logging_score", logging, width, served),
            "target": marginal_rows(ranked, "target_score", target, cfg.slate, served)}
    recomputed = rows["logging"][np.arange(len(served)), served["position"].to_numpy() - 1]
    mismatched = ~np.isclose(recomputed, served["propensity"].to_numpy(), rtol=1e-6, atol=1e-9)
    if mismatched.mean() > 0.01:
        raise OpeError(f"ope: {mismatched.mean():.0%} of the logged propensities differ from those of the "
                       f"exploration config given ({logging.policy}, epsilon {logging.epsilon}, pool {logging.pool}, "
                       f"seed {logging.seed}); value with the publish.exploration the days were published with")
    surface_of = served.drop_duplicates("list_id").set_index("list_id")["surface"].reindex(lists).to_numpy()
    groups = {**{s: surface_of == s for s in sorted(set(surface_of))}, "all": np.ones(lists.size, dtype=bool)}
    position = position_based(rows, pool, attraction, groups, settings(cfg.slate),
                              cfg.confidence, cfg.bootstrap_resamples, seed)
    return pd.concat([importance, position], ignore_index=True).merge(
        unsupported_share(grid, cfg.slate), on=["surface", "setting"], how="left")
