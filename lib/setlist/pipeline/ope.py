"""``setlist ope``: a candidate ranker's value estimated from the lists publish logged with
exploration, before any A/B test.

For each day of the range: the day's ``ranked_recs`` (served with ``publish.exploration``, every
row with its propensity), rewarded by the user's listens of that track in the ``ope.reward_days``
after the day; the day's candidates scored in Spark by the candidate model and by the version
that served each list (for the reward model). Each list's candidates that either model ranks in
its first ``max(pool, slate)`` come to the driver (a bounded frame per list), where
``setlist.ope.valuation`` estimates the candidate's value per surface: what it would earn if
publish served it under the same exploration.
"""
from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from setlist import lake, rewards, tracking
from setlist.config import SetlistConfig
from setlist.errors import GateRefused, OpeError
from setlist.ope.estimators import logged_value
from setlist.ope.exposures import list_key
from setlist.ope.valuation import value_policy
from setlist.pipeline.publish import champion_features
from setlist.publish import drop_played
from setlist.scoring import score_candidates

log = logging.getLogger(__name__)
LIST_KEYS = ["ds", "user_id", "surface"]


def day_range(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise OpeError(f"ope: --end {end} is before --start {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def logged_lists(spark: SparkSession, cfg: SetlistConfig, days: list[str]) -> DataFrame:
    """The served rows of ``days``; OpeError when the range
    has no lists, or names the days without a positive propensity on every row."""
    table = cfg.tables.ranked_recs
    recs = lake.read_table(spark, cfg, table).where(F.col("ds").isin(days))
    if "propensity" not in recs.columns:
        recs = recs.withColumn("propensity", F.lit(None).cast("double"))
    per_day = {row["ds"]: row for row in recs.groupBy("ds").agg(
        F.count("*").alias("rows"),
        F.count_if(F.col("propensity").isNull() | (F.col("propensity") <= 0)).alias("unlogged")).collect()}
    if not per_day:
        raise OpeError(f"ope: '{table}' has no lists between {days[0]} and {days[-1]}: nothing to value")
    lacking = [ds for ds in days if ds not in per_day or per_day[ds]["unlogged"] > 0]
    if lacking:
        raise OpeError(f"ope: OPE needs exploration, and {', '.join(lacking)} lack it ('{table}' has no lists "
                       f"or rows without a positive propensity); publish those days with "
                       f"publish.exploration.policy epsilon_greedy or plackett_luce, or leave them out")
    return recs


def with_rewards(spark: SparkSession, cfg: SetlistConfig, served: DataFrame, days: list[str]) -> DataFrame:
    """``served`` with reward 1.0 where the user listened to the track within ``ope.reward_days``
    after the list's day, else 0.0; OpeError when the listens of those days are not in yet."""
    horizon = (dt.date.fromisoformat(days[-1]) + dt.timedelta(days=cfg.ope.reward_days)).isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    if listens.where(F.col("ds") == horizon).limit(1).count() == 0:
        raise OpeError(f"ope: no listens on {horizon} yet, so the lists of {days[-1]} cannot be rewarded "
                       f"(ope.reward_days={cfg.ope.reward_days}); end the range earlier")
    played = (listens.where(rewards.is_listen(cfg.rewards) & (F.col("ds") > days[0]) & (F.col("ds") <= horizon))
              .select("user_id", "track_id", F.col("ds").alias("played_ds")).distinct())
    within = ((F.datediff(F.to_date("played_ds"), F.to_date("ds")) >= 1)
              & (F.datediff(F.to_date("played_ds"), F.to_date("ds")) <= cfg.ope.reward_days))
    hits = (served.select(*LIST_KEYS, "track_id").join(played, on=["user_id", "track_id"]).where(within)
            .select(*LIST_KEYS, "track_id").distinct().withColumn("reward", F.lit(1.0)))
    return (served.join(hits, on=[*LIST_KEYS, "track_id"], how="left")
            .withColumn("reward", F.coalesce("reward", F.lit(0.0))))


def scored_by(spark: SparkSession, cfg: SetlistConfig, ds: str, versions: list[int]) -> dict[int, DataFrame]:
    """The day's candidates on each publishing surface scored by each registry version, with
    what publish leaves out (played tracks on discovery surfaces) left out."""
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    features = champion_features(spark, cfg, union, interactions, ds).cache()
    excluding = [s for s in cfg.publish.surfaces if cfg.publish.excludes_played(s)]
    out = {}
    for version in versions:
        booster = tracking.load_ranker(cfg, version)
        scored = score_candidates(features, booster.model_to_string(), booster.feature_name())
        out[version] = drop_played(scored, interactions, excluding).select("user_id", "surface", "track_id", "score")
    return out


def day_frames(spark: SparkSession, cfg: SetlistConfig, ds: str, served: DataFrame,
               target: int) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(candidates, logged, lists left out) of one day as valuation frames. Lists served by the
    candidate blend (no model to score with) are left out and counted."""
    served = served.where(F.col("ds") == ds)
    by_model = served.where(F.col("model_version").rlike("^[0-9]+$"))
    left_out = served.select(*LIST_KEYS).distinct().count() - by_model.select(*LIST_KEYS).distinct().count()
    versions = sorted({int(r[0]) for r in by_model.select("model_version").distinct().collect()})
    scores = scored_by(spark, cfg, ds, sorted({*versions, target}))
    lists = by_model.select("user_id", "surface", "model_version").distinct()
    logging_scores = None
    for version in versions:
        part = (scores[version].join(lists.where(F.col("model_version") == str(version)),
                                     on=["user_id", "surface"]).drop("model_version"))
        logging_scores = part if logging_scores is None else logging_scores.unionByName(part)
    keep = max(cfg.publish.exploration.pool, cfg.ope.slate)
    by_list = Window.partitionBy("user_id", "surface")
    candidates = (logging_scores.withColumnRenamed("score", "logging_score")
                  .join(scores[target].withColumnRenamed("score", "target_score"), on=["user_id", "surface", "track_id"])
                  .withColumn("logging_rank", F.row_number().over(by_list.orderBy(F.desc("logging_score"), "track_id")))
                  .withColumn("target_rank", F.row_number().over(by_list.orderBy(F.desc("target_score"), "track_id")))
                  .join(by_model.select("user_id", "surface", "track_id", F.lit(True).alias("_served")),
                        on=["user_id", "surface", "track_id"], how="left")
                  .where((F.col("logging_rank") <= keep) | (F.col("target_rank") <= keep) | F.col("_served"))
                  .drop("_served").toPandas())
    logged = by_model.select("user_id", "surface", "track_id", F.col("rank").alias("position"),
                             "propensity", "reward").toPandas()
    for frame in (candidates, logged):
        frame["list_id"] = [list_key(ds, u, s) for u, s in zip(frame["user_id"], frame["surface"])]
    return candidates, logged, left_out


def format_table(estimates: pd.DataFrame) -> str:
    """The estimates as a console table (values are expected listens per list)."""
    lines = [f"{'surface':<12}{'setting':<7}{'estimator':<10}{'value':>9}{'95% CI':>22}{'ESS':>10}{'lists':>8}"
             f"{'unsupported':>13}"]
    for r in estimates.itertuples():
        lines.append(f"{r.surface:<12}{r.setting:<7}{r.estimator:<10}{r.value:>9.4f}"
                     f"{f'[{r.ci_low:.4f}, {r.ci_high:.4f}]':>22}{r.ess:>10.1f}{r.n_lists:>8}{r.unsupported:>13.1%}")
    lines.append("unsupported: the expected share of the candidate's positions holding tracks no logged list could "
                 "hold; pbm_ips and pbm_dr count them 0")
    return "\n".join(lines)


def report_figure(estimates: pd.DataFrame):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = estimates[estimates["setting"] == "slate"]
    figure, ax = plt.subplots(figsize=(8, 4))
    for offset, (name, group) in enumerate(rows.groupby("estimator", sort=False)):
        x = [i + offset * 0.15 for i in range(len(group))]
        ax.errorbar(x, group["value"], yerr=[group["value"] - group["ci_low"], group["ci_high"] - group["value"]],
                    fmt="o", capsize=3, label=name)
    ax.set_xticks(range(rows["surface"].nunique()), rows["surface"].unique())
    ax.set_ylabel("expected listens per list")
    ax.legend()
    return figure


def run(spark: SparkSession, cfg: SetlistConfig, model_ref: str, start: str, end: str, gate: bool,
        run_id: str) -> pd.DataFrame:
    """The estimates (plus the logging policy's own "logged" rows) for ``model_ref`` over the
    lists of ``start``..``end``; logged to MLflow. With ``gate``, GateRefused when the candidate's
    lower bound is below the champion's logged value."""
    days = day_range(start, end)
    target = tracking.resolve_model_ref(cfg, model_ref)
    served = with_rewards(spark, cfg, logged_lists(spark, cfg, days), days).cache()
    parts = [day_frames(spark, cfg, ds, served, target) for ds in days]
    candidates = pd.concat([p[0] for p in parts], ignore_index=True)
    logged = pd.concat([p[1] for p in parts], ignore_index=True)
    if logged.empty:
        raise OpeError(f"ope: no list between {start} and {end} was served by a registered model")
    estimates = pd.concat([logged_value(logged, cfg.ope.slate, cfg.ope.confidence),
                           value_policy(candidates, logged, cfg.publish.exploration, cfg.ope,
                                        cfg.publish.exploration.seed)], ignore_index=True)
    estimates["unsupported"] = estimates["unsupported"].fillna(0.0)  # the logging policy is its own support
    with tracking.start_run(cfg, f"ope-v{target}-{start}-{end}", tags={"setlist.step": "ope", "setlist.run_id": run_id}):
        tracking.log_params({"model_version": target, "start": start, "end": end, "slate": cfg.ope.slate,
                             "policy": cfg.publish.exploration.policy,
                             "lists_left_out": sum(p[2] for p in parts)})
        tracking.log_metrics({f"{r.surface}.{r.setting}.{r.estimator}.{field}": getattr(r, field)
                              for r in estimates.itertuples() for field in ("value", "ci_low", "ci_high", "ess", "unsupported")})
        tracking.log_dict(estimates.to_dict(orient="records"), "ope/estimates.json")
        tracking.log_figure(report_figure(estimates), "ope/estimates.png")
    if gate:
        check_gate(estimates, cfg, target)
    return estimates


def check_gate(estimates: pd.DataFrame, cfg: SetlistConfig, target: int) -> None:
    at = estimates.set_index(["surface", "setting", "estimator"])
    champion = at.loc[("all", "slate", "logged"), "value"]
    low = at.loc[("all", "slate", cfg.ope.gate_estimator), "ci_low"]
    if low < champion:
        raise GateRefused(f"ope gate: version {target}'s {cfg.ope.gate_estimator} lower bound {low:.4f} is below "
                          f"the champion's logged value {champion:.4f} (listens per list in the first "
                          f"{cfg.ope.slate} positions); not ready for an A/B test")
