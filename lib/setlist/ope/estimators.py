"""Off-policy estimators of a target policy's value from logged lists (pandas and numpy).

Hand-written: ``obp``, the maintained library for these estimators, pins scikit-learn 1.0,
scipy 1.7 and torch 1.13, older than this stack. Each estimator is checked against its direct
formula on tiny logs (``tests/test_ope_estimators.py``).

Setting: a list l is served to a context x (user, surface, day); its value is the expected sum
of rewards over positions 1..S. The slate estimators assume independent items (IIPS: the reward
at position k depends on the track there and on k alone, as in the position-based model), so
they need only marginal propensities p0(i at k) of the logging policy and pe(i at k) of the
target; top-1 is the same with S = 1. With w_lk = pe(a_lk at k) / p0(a_lk at k):

- IPS:   V = 1/n sum_l sum_k w_lk r_lk
- SNIPS: V = sum_k sum_l w_lk r_lk / sum_l w_lk     (self-normalised per position)
- DM:    V = 1/n sum_l sum_k q_lk, q_lk = sum_i pe(i at k | x_l) rhat(x_l, i, k)
- DR:    V = 1/n sum_l [ sum_k q_lk + w_lk (r_lk - rhat(x_l, a_lk, k)) ]

The position-based estimators pool evidence across positions instead. Under the position-based
model (a track at position k is examined with probability theta_k, and listened to if examined
with a probability of its own), every logged row of track i estimates i's attractiveness whatever
its position, so with the exposures E0(i) = sum_j p0(i at j) theta_j over the logged list and
Ee(i) = sum_{j<=S} pe(i at j) theta_j over the valued slate:

- PBM-IPS: V = 1/n sum_l sum_rows Ee(a) / E0(a) r
- PBM-DR:  V = 1/n sum_l [ sum_k q_lk + sum_rows Ee(a) / E0(a) (r - rhat(x_l, a, k)) ]
  with q_lk over the tracks of the logs' support only: where E0 = 0 no row corrects the model.

A track the champion showed at position 3 and a challenger would show first then weighs
theta_1 / theta_3, not the inverse of a tiny exploration propensity: the variance falls by orders
of magnitude, at the price of the model's assumption. theta_k = k ** -eta, eta fitted by maximum
likelihood to the logged rows of the randomised pool (:func:`fit_examination`); its intervals are percentile bootstrap ones over
lists that refit eta in every replicate, so they carry the position bias's own uncertainty.

Confidence intervals are normal ones on the per-list terms (the delta method for SNIPS):
lists are independent, positions within a list are not.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

IMPORTANCE_ESTIMATORS = ("dm", "ips", "snips", "dr")
POSITION_ESTIMATORS = ("pbm_ips", "pbm_dr")
ESTIMATORS = IMPORTANCE_ESTIMATORS + POSITION_ESTIMATORS
def settings(slate: int) -> dict[str, int]:
    """The valued settings: top-1 (position 1 alone) and the slate (positions 1..S)."""
    return {"top1": 1, "slate": slate}
ESTIMATE_COLUMNS = ["surface", "setting", "estimator", "value", "ci_low", "ci_high", "std_error",
                    "ess", "n_lists"]
LOGGED_COLUMNS = ["list_id", "surface", "position", "reward", "logging_propensity",
                  "target_propensity", "reward_hat"]
TARGET_COLUMNS = ["list_id", "position", "target_reward_hat"]


def _wide(frame: pd.DataFrame, column: str, lists: pd.Index, positions: int) -> np.ndarray:
    """(n_lists, positions) matrix of ``column`` by list and position; 0 where not logged."""
    table = frame.pivot_table(index="list_id", columns="position", values=column, aggfunc="sum")
    return table.reindex(index=lists, columns=range(1, positions + 1)).fillna(0.0).to_numpy()


def kish_ess(weights: np.ndarray) -> float:
    """Effective sample size (sum w)^2 / sum w^2 of one position's weights."""
    denominator = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / denominator) if denominator > 0 else 0.0


def _row(terms: np.ndarray, value: float, z: float) -> dict:
    n = terms.size
    std_error = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {"value": value, "ci_low": value - z * std_error, "ci_high": value + z * std_error,
            "std_error": std_error, "n_lists": n}


def estimate_lists(logged: pd.DataFrame, target: pd.DataFrame, positions: int,
                   confidence: float) -> list[dict]:
    """Every estimator over one group of lists, valuing positions 1..``positions``."""
    lists = pd.Index(sorted(set(logged["list_id"]) | set(target["list_id"])))
    logged = logged[logged["position"] <= positions]
    target = target[target["position"] <= positions]
    propensity = _wide(logged, "logging_propensity", lists, positions)
    weights = np.divide(_wide(logged, "target_propensity", lists, positions), propensity,
                        out=np.zeros_like(propensity), where=propensity > 0)
    reward = _wide(logged, "reward", lists, positions)
    reward_hat = _wide(logged, "reward_hat", lists, positions)
    direct = _wide(target, "target_reward_hat", lists, positions)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    ess = float(np.mean([kish_ess(weights[:, k]) for k in range(positions)]))
    ips_terms = (weights * reward).sum(axis=1)
    dr_terms = direct.sum(axis=1) + (weights * (reward - reward_hat)).sum(axis=1)
    mean_weight = weights.mean(axis=0)
    position_values = np.divide((weights * reward).mean(axis=0), mean_weight,
                                out=np.zeros(positions), where=mean_weight > 0)
    # Delta method: SNIPS's influence per list, sum_k (w_lk r_lk - V_k w_lk) / mean_l w_lk.
    snips_influence = np.divide(weights * (reward - position_values), mean_weight,
                                out=np.zeros_like(weights), where=mean_weight > 0).sum(axis=1)
    snips_value = float(position_values.sum())
    rows = {"dm": _row(direct.sum(axis=1), float(direct.sum(axis=1).mean()), z),
            "ips": _row(ips_terms, float(ips_terms.mean()), z),
            "snips": _row(snips_influence, snips_value, z),
            "dr": _row(dr_terms, float(dr_terms.mean()), z)}
    return [{"estimator": name, **rows[name], "ess": ess} for name in IMPORTANCE_ESTIMATORS]


def estimate(logged: pd.DataFrame, target: pd.DataFrame, slate: int, confidence: float) -> pd.DataFrame:
    """Per surface and over all lists ("all"), in the top-1 and slate settings, every estimator.

    ``logged``: ``LOGGED_COLUMNS``, one row per served (list, position) with its reward, the
    logging and target policies' propensities of the served track there, and the reward model's
    prediction for it. ``target``: ``TARGET_COLUMNS``, per list and position the reward model's
    expectation under the target policy. Output: ``ESTIMATE_COLUMNS``.
    """
    missing = [c for c in LOGGED_COLUMNS if c not in logged.columns]
    if missing:
        raise ValueError(f"logged exposures lack column(s) {missing}")
    surfaces = logged.drop_duplicates("list_id").set_index("list_id")["surface"]
    target = target.assign(surface=target["list_id"].map(surfaces))
    groups = [(s, logged[logged["surface"] == s], target[target["surface"] == s])
              for s in sorted(surfaces.unique())] + [("all", logged, target)]
    rows = [{"surface": surface, "setting": setting, **row}
            for surface, group_logged, group_target in groups
            for setting, positions in settings(slate).items()
            for row in estimate_lists(group_logged, group_target, positions, confidence)]
    return pd.DataFrame(rows)[ESTIMATE_COLUMNS]


def logged_value(logged: pd.DataFrame, slate: int, confidence: float) -> pd.DataFrame:
    """The logging policy's own value, on-policy (the mean observed reward per list), per surface
    and "all", in both settings, as ``ESTIMATE_COLUMNS`` rows with estimator "logged"."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    lists = logged.drop_duplicates("list_id")[["list_id", "surface"]]
    rows = []
    for setting, positions in settings(slate).items():
        totals = (logged[logged["position"] <= positions].groupby("list_id")["reward"].sum()
                  .reindex(lists["list_id"]).fillna(0.0).to_numpy())
        for surface in [*sorted(lists["surface"].unique()), "all"]:
            terms = totals if surface == "all" else totals[(lists["surface"] == surface).to_numpy()]
            rows.append({"surface": surface, "setting": setting, "estimator": "logged",
                         **_row(terms, float(terms.mean()), z), "ess": float(terms.size)})
    return pd.DataFrame(rows)[ESTIMATE_COLUMNS]


def examination(eta: float, positions: int) -> np.ndarray:
    """theta_1..theta_positions of the examination curve theta_k = k ** -eta."""
    return np.arange(1, positions + 1, dtype=float) ** -eta


def fit_examination(rank: np.ndarray, position: np.ndarray, reward: np.ndarray,
                    weight: np.ndarray | None = None) -> float:
    """eta of theta_k = k ** -eta, by Poisson maximum likelihood on the logged rows of the
    randomised pool (``rank``: the track's rank under the logging model, 1 = best).

    Under the position-based model E[reward | the rank-r track served at k] = a_r theta_k, where
    a_r is the mean attractiveness of rank-r tracks, as long as where a track lands does not depend
    on its list beyond its rank (true of epsilon-greedy; the caller weights Plackett-Luce rows to
    make it true). Profiling out a_r = S_r / sum_k N_rk theta_k leaves
    loglik(eta) = sum_rk S_rk log theta_k - sum_r S_r log(sum_k N_rk theta_k) + const,
    with S and N the (weighted) reward sums and row counts per (rank, position) cell. Unexplored
    lists pin each a_r theta_r on the diagonal; explored lists' other cells separate the two. This
    uses every row, not only the explored ones, so eta is far less noisy than a fit to the
    inverse-propensity value of a uniform placement.
    """
    weight = np.ones(len(reward)) if weight is None else np.asarray(weight, dtype=float)
    rank, position = np.asarray(rank, dtype=int) - 1, np.asarray(position, dtype=int) - 1
    sums, counts = np.zeros((rank.max() + 1, position.max() + 1)), np.zeros((rank.max() + 1, position.max() + 1))
    np.add.at(sums, (rank, position), weight * np.asarray(reward, dtype=float))
    np.add.at(counts, (rank, position), weight)
    grid = np.linspace(0.0, 3.0, 301)
    log_k = np.log(np.arange(1, sums.shape[1] + 1, dtype=float))
    exposure = counts @ np.exp(-np.outer(log_k, grid))  # (ranks, grid): sum_k N_rk theta_k
    per_rank = sums.sum(axis=1)
    rewarded = per_rank > 0
    loglik = (-grid * (sums.sum(axis=0) @ log_k)
              - per_rank[rewarded] @ np.log(np.maximum(exposure[rewarded], 1e-300)))
    return float(grid[np.argmax(loglik)])


def position_based(rows: dict[str, np.ndarray], pool: dict[str, np.ndarray], direct: np.ndarray,
                   groups: dict[str, np.ndarray],
                   slates: dict[str, int], confidence: float, resamples: int, seed: int) -> pd.DataFrame:
    """PBM-IPS and PBM-DR per group and setting, with percentile bootstrap intervals over lists.

    ``rows`` (one entry per logged row): ``list`` (index of its list), ``reward``, ``position``,
    ``attractiveness`` (the reward model's, so rhat = theta_k * attractiveness), ``logging``
    (n_rows x L logging marginals of the row's track) and ``target`` (n_rows x S target
    marginals). ``pool``: the rows eta is fitted to (:func:`fit_examination`), as arrays
    ``list``, ``rank``, ``position``, ``reward`` and ``weight``. ``direct`` (n_lists x S): sum_i pe(i at k) x
    attractiveness(i) over the tracks the logs could hold (the caller's support). ``groups``: name -> boolean mask of lists.
    """
    n_lists, width = direct.shape[0], rows["logging"].shape[1]
    positions = max(width, direct.shape[1])

    def row_weights(theta: np.ndarray, size: int) -> np.ndarray:
        exposure = rows["logging"] @ theta[:width]
        return np.divide(rows["target"][:, :size] @ theta[:size], exposure, out=np.zeros_like(exposure),
                         where=exposure > 0)

    def terms(theta: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        weights = row_weights(theta, size)
        ips = np.bincount(rows["list"], weights=weights * rows["reward"], minlength=n_lists)
        residual = rows["reward"] - theta[rows["position"] - 1] * rows["attractiveness"]
        dr = direct[:, :size] @ theta[:size] + np.bincount(rows["list"], weights=weights * residual, minlength=n_lists)
        return ips, dr

    def fitted_theta(counts: np.ndarray) -> np.ndarray:
        return examination(fit_examination(pool["rank"], pool["position"], pool["reward"],
                                           pool["weight"] * counts[pool["list"]]), positions)

    def estimates(counts: np.ndarray, theta: np.ndarray) -> dict[tuple[str, str, str], float]:
        out = {}
        for setting, size in slates.items():
            for name, per_list in zip(POSITION_ESTIMATORS, terms(theta, size)):
                for group, mask in groups.items():
                    with np.errstate(invalid="ignore"):  # a replicate may draw no list of a small group
                        out[(group, setting, name)] = float((counts * per_list)[mask].sum() / counts[mask].sum())
        return out

    everyone = np.ones(n_lists)
    theta = fitted_theta(everyone)
    point = estimates(everyone, theta)
    ess = {}  # in lists: the rows' Kish size over the rows per list
    for setting, size in slates.items():
        ess[setting] = kish_ess(row_weights(theta, size)) * n_lists / max(len(rows["reward"]), 1)
    rng = np.random.default_rng(seed)
    resampled = (rng.multinomial(n_lists, np.full(n_lists, 1.0 / n_lists)).astype(float) for _ in range(resamples))
    replicates = [estimates(counts, fitted_theta(counts)) for counts in resampled]
    tail = (1 - confidence) / 2 * 100
    out = []
    for key, value in point.items():
        draws = np.array([r[key] for r in replicates])
        low, high = np.nanpercentile(draws, [tail, 100 - tail])
        out.append({"surface": key[0], "setting": key[1], "estimator": key[2], "value": value, "ci_low": low,
                    "ci_high": high, "std_error": float(np.nanstd(draws, ddof=1)), "ess": ess[key[1]],
                    "n_lists": int(groups[key[0]].sum())})
    return pd.DataFrame(out)[ESTIMATE_COLUMNS]
