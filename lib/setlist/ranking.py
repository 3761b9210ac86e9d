"""LightGBM LambdaRank ranker: graded labels, bounded training frames, metrics, scoring, the gate.

Labels: what the user did with a candidate on a surface in [cutoff, cutoff + label_days),
the best event counting: ``grade_saved`` > ``grade_completed`` > ``grade_listen`` (past the
listen threshold) > ``grade_none`` (no event, or one that was neither) > ``grade_skip``
(an early skip). LightGBM gets ``label_gain`` explicitly (its default is 2^grade).

A query (group) is one (user, surface); groups are cut to the ``max_group_size`` candidates
with the best source rank (LightGBM refuses queries over 10,000 rows) and whole groups are
sampled by a seeded hash so at most about ``max_rows_per_day`` rows reach pandas.

Metrics (``ranking_metrics``), per group then averaged over groups with a relevant item;
relevance = max(grade - grade_none, 0) (a listen 1, completed 2, saved 3; skips and nothing 0);
the list is the group's candidates by score descending, ties by track id, ranks from 1:
    NDCG@k     = DCG / IDCG with linear gains and a log2 discount, DCG = sum over r <= k of
                 rel_r / log2(r + 1), IDCG the same for the relevances sorted descending. This is
                 scikit-learn's ``ndcg_score(k=k)`` (checked in tests), the one NDCG of every
                 ranker comparison here and in bench/ranking.py; LightGBM's own ``ndcg@k`` (with
                 ``label_gain``) is used only for early stopping.
    MAP@k      = AP@k averaged, AP@k = sum over relevant items at r <= k of precision@r, divided
                 by min(k, number of relevant items) (as setlist.evaluation).
    HitRate@k  = 1 if a relevant item is in the top k.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from setlist.config import RankingConfig, RewardsConfig
from setlist.errors import GateRefused, SetlistError
from setlist.rewards import is_completed, is_early_skip, is_saved, listened_past

LABEL = "label"
GROUP_KEYS = ["user_id", "surface"]
# Hash range the group sample maps onto [0, 1).
_HASH_BUCKETS = 2 ** 31


# --------------------------------------------------------------------------- labels (Spark)

def event_grade(cfg: RankingConfig, rewards: RewardsConfig) -> Column:
    """The grade of one listen event (see the module doc)."""
    listen = listened_past(rewards.listen_threshold_s)
    return (F.when(is_saved(), F.lit(cfg.grade_saved))
            .when(listen & is_completed(rewards), F.lit(cfg.grade_completed))
            .when(listen, F.lit(cfg.grade_listen))
            .when(is_early_skip(rewards), F.lit(cfg.grade_skip))
            .otherwise(F.lit(cfg.grade_none)))


def graded_labels(listens: DataFrame, cutoff: dt.datetime, cfg: RankingConfig,
                  rewards: RewardsConfig) -> DataFrame:
    """Listens in [cutoff, cutoff + label_days) -> (user_id, surface, track_id, label): the best grade."""
    end = cutoff + dt.timedelta(days=cfg.label_days)
    after = (F.col("ts") >= F.lit(cutoff)) & (F.col("ts") < F.lit(end))
    return (listens.where(after)
            .groupBy("user_id", "surface", "track_id")
            .agg(F.max(event_grade(cfg, rewards)).cast("int").alias(LABEL))
            .select("user_id", "surface", "track_id", LABEL))


def surface_labels(labels: DataFrame, cfg: RankingConfig) -> DataFrame:
    """Graded labels -> the same, with each surface's own definition (``surface_min_grade``):
    there, a grade above ``grade_none`` but below the surface's minimum becomes ``grade_none``."""
    if not cfg.surface_min_grade:
        return labels
    minimum = F.create_map(*[F.lit(x) for pair in cfg.surface_min_grade.items() for x in pair])[F.col("surface")]
    weak = minimum.isNotNull() & (F.col(LABEL) > cfg.grade_none) & (F.col(LABEL) < minimum)
    return labels.withColumn(LABEL, F.when(weak, F.lit(cfg.grade_none)).otherwise(F.col(LABEL)).cast("int"))


def with_labels(framed: DataFrame, labels: DataFrame, cfg: RankingConfig) -> DataFrame:
    """Features per (user, surface, track) + ``label`` (``grade_none`` where nothing happened)."""
    return (framed.join(labels, on=["user_id", "surface", "track_id"], how="left")
            .withColumn(LABEL, F.coalesce(F.col(LABEL), F.lit(cfg.grade_none)).cast("int")))


def cap_groups(framed: DataFrame, max_group_size: int, sources: list[str]) -> DataFrame:
    """At most ``max_group_size`` rows per (user, surface): the best source rank first, ties by track id."""
    best_rank = F.least(*[F.col(f"{s}_rank") for s in sources]) if len(sources) > 1 else F.col(f"{sources[0]}_rank")
    by_group = Window.partitionBy(*GROUP_KEYS).orderBy(F.asc_nulls_last("_best_rank"), F.asc("track_id"))
    return (framed.withColumn("_best_rank", best_rank)
            .withColumn("_position", F.row_number().over(by_group))
            .where(F.col("_position") <= max_group_size)
            .drop("_best_rank", "_position"))


def group_draw(seed: int) -> Column:
    """A number in [0, 1) fixed by (seed, user, surface): whole groups are kept or dropped."""
    hashed = F.xxhash64(F.lit(str(seed)), F.col("user_id"), F.col("surface"))
    return F.pmod(hashed, F.lit(_HASH_BUCKETS)).cast("double") / F.lit(float(_HASH_BUCKETS))


def sample_groups(framed: DataFrame, fraction: float, seed: int) -> DataFrame:
    """The rows of the (user, surface) groups whose seeded draw is below ``fraction``."""
    return framed.where(group_draw(seed) < F.lit(fraction)) if fraction < 1.0 else framed


# --------------------------------------------------------------------------- training (pandas)

def sort_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of a group contiguous (LightGBM reads groups as consecutive runs), deterministic order."""
    return frame.sort_values([*GROUP_KEYS, "track_id"], kind="mergesort").reset_index(drop=True)


def group_sizes(frame: pd.DataFrame) -> np.ndarray:
    """Sizes of the consecutive (user, surface) runs of a ``sort_groups`` frame."""
    return frame.groupby(GROUP_KEYS, sort=False).size().to_numpy()


def lgb_params(cfg: RankingConfig, eval_k: int) -> dict:
    return {"objective": "lambdarank", "metric": "ndcg", "eval_at": [eval_k],
            "label_gain": list(cfg.label_gain), "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves, "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": cfg.feature_fraction, "bagging_fraction": cfg.bagging_fraction,
            "bagging_freq": cfg.bagging_freq, "lambdarank_truncation_level": cfg.lambdarank_truncation_level,
            "num_threads": cfg.num_threads, "seed": cfg.seed, "deterministic": True,
            "force_col_wise": True, "verbosity": -1}


def _dataset(frame: pd.DataFrame, features: list[str], categorical: list[str],
             reference: lgb.Dataset | None = None) -> lgb.Dataset:
    if frame.empty:
        raise SetlistError("ranker training: a day has no labelled (user, surface) groups")
    return lgb.Dataset(frame[features], label=frame[LABEL].to_numpy(), group=group_sizes(frame),
                       categorical_feature=categorical, reference=reference, free_raw_data=False)


def fit_ranker(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], categorical: list[str],
               cfg: RankingConfig, eval_k: int) -> lgb.Booster:
    """LambdaRank on ``train`` with early stopping on ``valid`` (both ``sort_groups`` frames).

    The returned booster holds only the trees up to the best validation iteration, so
    saving, logging and scoring it all use the same trees.
    """
    dtrain = _dataset(train, features, categorical)
    dvalid = _dataset(valid, features, categorical, reference=dtrain)
    booster = lgb.train(lgb_params(cfg, eval_k), dtrain, num_boost_round=cfg.num_boost_round,
                        valid_sets=[dvalid], valid_names=["valid"],
                        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration or None))


def tuning_trials(cfg: RankingConfig) -> list[dict]:
    """Every combination of ``cfg.tuning_grid`` (values cast to the field's type); [{}] if empty."""
    keys = list(cfg.tuning_grid)
    return [{key: type(getattr(cfg, key))(value) for key, value in zip(keys, values)}
            for values in itertools.product(*cfg.tuning_grid.values())] or [{}]


def tune_ranker(train: pd.DataFrame, valid: pd.DataFrame, features: list[str], categorical: list[str],
                cfg: RankingConfig, eval_k: int) -> tuple[lgb.Booster, list[dict]]:
    """``fit_ranker`` for each of ``tuning_trials``, scored on ``valid`` (users held out of
    ``train``); returns the best booster by NDCG@k and every trial (params, metrics, trees)."""
    best, trials = None, []
    for params in tuning_trials(cfg):
        booster = fit_ranker(train, valid, features, categorical, cfg.model_copy(update=params), eval_k)
        metrics = ranking_metrics(valid, predict(booster, valid), eval_k, cfg)
        trials.append({"params": params, "metrics": metrics, "trees": booster.current_iteration()})
        if best is None or metrics[f"ndcg_at_{eval_k}"] > best[0]:
            best = (metrics[f"ndcg_at_{eval_k}"], booster)
    return best[1], trials


def predict(booster: lgb.Booster, frame: pd.DataFrame) -> np.ndarray:
    """Scores of ``frame``'s rows with the booster's own feature columns."""
    missing = [c for c in booster.feature_name() if c not in frame.columns]
    if missing:
        raise SetlistError(f"ranker: the frame lacks the model's feature column(s) {missing}")
    return booster.predict(frame[booster.feature_name()].to_numpy(dtype=np.float64))


# --------------------------------------------------------------------------- metrics (pandas)

def relevance(labels: np.ndarray | pd.Series, cfg: RankingConfig) -> np.ndarray:
    """Evaluation gain of a grade: max(grade - grade_none, 0)."""
    return np.maximum(np.asarray(labels, dtype=np.float64) - cfg.grade_none, 0.0)


def group_metrics(frame: pd.DataFrame, scores: np.ndarray | pd.Series, k: int, cfg: RankingConfig) -> pd.DataFrame:
    """Per (user, surface) group with a relevant item: user_id, surface, ndcg, ap, hit (at k).

    ``frame``: user_id, surface, track_id, label; ``scores``: one per row (NaN ranks last).
    """
    scored = pd.DataFrame({"user_id": frame["user_id"].astype(str).to_numpy(),
                           "surface": frame["surface"].astype(str).to_numpy(),
                           "track_id": frame["track_id"].to_numpy(),
                           "score": np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf),
                           "rel": relevance(frame[LABEL], cfg)})
    scored["group"] = scored["user_id"] + "\x1f" + scored["surface"]
    ranked = scored.sort_values(["group", "score", "track_id"], ascending=[True, False, True], kind="mergesort")
    ranked["pos"] = ranked.groupby("group", sort=False).cumcount() + 1
    top = ranked[ranked["pos"] <= k]
    dcg = (top["rel"] / np.log2(top["pos"] + 1)).groupby(top["group"]).sum()
    ideal = scored.sort_values(["group", "rel"], ascending=[True, False], kind="mergesort")
    ideal["pos"] = ideal.groupby("group", sort=False).cumcount() + 1
    ideal = ideal[ideal["pos"] <= k]
    idcg = (ideal["rel"] / np.log2(ideal["pos"] + 1)).groupby(ideal["group"]).sum()
    n_relevant = (scored["rel"] > 0).groupby(scored["group"]).sum()
    hit = (top["rel"] > 0).astype(float)
    cum_hits = hit.groupby(top["group"]).cumsum()
    ap_sum = (hit * cum_hits / top["pos"]).groupby(top["group"]).sum()
    groups = n_relevant[n_relevant > 0].index
    keys = scored.drop_duplicates("group").set_index("group").loc[groups, ["user_id", "surface"]]
    return keys.assign(ndcg=dcg.reindex(groups, fill_value=0.0) / idcg.reindex(groups),
                       ap=ap_sum.reindex(groups, fill_value=0.0) / np.minimum(k, n_relevant.reindex(groups)),
                       hit=hit.groupby(top["group"]).max().reindex(groups, fill_value=0.0)).reset_index(drop=True)


def ranking_metrics(frame: pd.DataFrame, scores: np.ndarray | pd.Series, k: int,
                    cfg: RankingConfig) -> dict[str, float]:
    """ndcg_at_k, map_at_k, hit_rate_at_k: ``group_metrics`` averaged over groups, and ``groups``."""
    per_group = group_metrics(frame, scores, k, cfg)
    if per_group.empty:
        raise SetlistError("ranking_metrics: no group has a relevant item (nothing to measure)")
    return {f"ndcg_at_{k}": float(per_group["ndcg"].mean()), f"map_at_{k}": float(per_group["ap"].mean()),
            f"hit_rate_at_{k}": float(per_group["hit"].mean()), "groups": float(len(per_group))}


# --------------------------------------------------------------------------- gate

@dataclass(frozen=True)
class GateDecision:
    promoted: bool
    new_metric: float
    champion_metric: float | None
    message: str


def gate(new_metric: float, champion_metric: float | None, tolerance: float, metric: str) -> GateDecision:
    """Promote when there is no champion or ``new >= champion - tolerance``; else raise GateRefused."""
    if champion_metric is None:
        return GateDecision(True, new_metric, None, f"no champion yet: the new model ({metric} "
                                                    f"{new_metric:.4f}) becomes champion")
    if new_metric >= champion_metric - tolerance:
        return GateDecision(True, new_metric, champion_metric,
                            f"new model {metric} {new_metric:.4f} >= champion {champion_metric:.4f} "
                            f"- tolerance {tolerance}: promoted")
    raise GateRefused(f"gate refused: new model {metric} {new_metric:.4f} < champion {metric} "
                      f"{champion_metric:.4f} - tolerance {tolerance}; the champion stays")


def importance_figure(booster: lgb.Booster, max_features: int = 30):
    """A bar chart of the booster's gain importance (matplotlib Figure, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 10))
    lgb.plot_importance(booster, ax=ax, importance_type="gain", max_num_features=max_features,
                        precision=1, title="Feature importance (gain)")
    fig.tight_layout()
    return fig


def feature_importance(booster: lgb.Booster) -> dict[str, float]:
    """Feature -> total gain, largest first."""
    gains = booster.feature_importance(importance_type="gain")
    return dict(sorted(zip(booster.feature_name(), map(float, gains)), key=lambda kv: -kv[1]))
