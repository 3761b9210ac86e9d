"""Per-user outcome metrics of an experiment, aggregated from listens in Spark.

Pure transforms: DataFrames and config in, a DataFrame out; no storage, no actions.
:func:`user_outcomes` gives one row per exposed user; :func:`variant_moments` reduces it to
the few moments per variant and metric that the analysis (:mod:`setlist.experiments.analysis`)
needs, the only rows that reach the driver.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from setlist import rewards
from setlist.config import ExperimentConfig, ExperimentsConfig, RewardsConfig
from setlist.errors import ConfigError
from setlist.experiments.analysis import MOMENT_COLUMNS

MS_PER_MINUTE = 60_000


def on_recommendation_surface(surfaces: list[str]) -> Column:
    return F.col("surface").isin(surfaces)


def metric_aggregates(cfg: ExperimentsConfig, reward_cfg: RewardsConfig) -> dict[str, Column]:
    """Metric name -> aggregate Column over one user's listens in a period. Streams, skips,
    saves and reward are the interaction matrix's own signals (``setlist.rewards``)."""
    minutes = F.col("ms_played") / F.lit(MS_PER_MINUTE)
    known = {
        "minutes_played": F.sum(minutes),
        "streams": F.count_if(rewards.is_listen(reward_cfg)),
        "skips": F.count_if(rewards.is_early_skip(reward_cfg)),
        "saves": F.count_if(rewards.is_saved()),
        "reward": F.sum(rewards.event_reward(reward_cfg)),
        "rec_minutes_played": F.sum(F.when(on_recommendation_surface(cfg.recommendation_surfaces), minutes)
                                    .otherwise(F.lit(0.0))),
    }
    return {name: known[name] for name in cfg.metrics}


def analysis_window(experiment: ExperimentConfig, cfg: ExperimentsConfig, ds: str) -> dict[str, str]:
    """The days an analysis on ``ds`` reads: pre ``[pre_start, post_start)``, post ``[post_start, ds]``."""
    if experiment.start_date is None:
        raise ConfigError(f"experiment '{experiment.name}': analysis needs experiments.experiments[].start_date")
    start = dt.date.fromisoformat(experiment.start_date)
    if dt.date.fromisoformat(ds) < start:
        raise ConfigError(f"experiment '{experiment.name}' starts on {experiment.start_date}, "
                          f"after the analysis date {ds}")
    return {"pre_start": (start - dt.timedelta(days=cfg.pre_days)).isoformat(),
            "post_start": start.isoformat(), "post_end": ds}


def user_outcomes(listens: DataFrame, assignments: DataFrame, experiment: ExperimentConfig,
                  cfg: ExperimentsConfig, reward_cfg: RewardsConfig, ds: str) -> DataFrame:
    """One row per assigned user: ``user_id, variant``, each metric after exposure and
    ``<metric><pre_suffix>`` before it (the CUPED covariate).

    ``listens`` needs ``user_id, ds, ms_played, track_duration_ms, reason_end, skipped, saved,
    surface``; ``assignments``
    ``experiment, user_id, variant``. Post = days ``[start_date, ds]``, pre = the
    ``pre_days`` days before ``start_date``. Users with no listening in a period get 0,
    so every assigned user counts (intent to treat).
    """
    window = analysis_window(experiment, cfg, ds)
    aggregates = metric_aggregates(cfg, reward_cfg)
    in_post = (F.col("ds") >= window["post_start"]) & (F.col("ds") <= window["post_end"])
    in_pre = (F.col("ds") >= window["pre_start"]) & (F.col("ds") < window["post_start"])
    post = (listens.where(in_post).groupBy("user_id")
            .agg(*[column.alias(name) for name, column in aggregates.items()]))
    pre = (listens.where(in_pre).groupBy("user_id")
           .agg(*[column.alias(f"{name}{cfg.pre_suffix}") for name, column in aggregates.items()]))
    users = (assignments.where(F.col("experiment") == experiment.name)
             .select("user_id", "variant"))
    outputs = [*aggregates, *(f"{name}{cfg.pre_suffix}" for name in aggregates)]
    return (users
            .join(post, on="user_id", how="left")
            .join(pre, on="user_id", how="left")
            .select("user_id", "variant",
                    *[F.coalesce(F.col(name).cast("double"), F.lit(0.0)).alias(name) for name in outputs]))


_PER_METRIC = [c for c in MOMENT_COLUMNS if c not in ("variant", "n", "users")]
_MOMENT_TYPE = T.ArrayType(T.StructType(
    [T.StructField("metric", T.StringType())]
    + [T.StructField(c, T.BooleanType() if c == "has_pre" else T.LongType() if c.startswith("n_")
                     else T.DoubleType()) for c in _PER_METRIC[1:]]))


def _present(column: Column) -> Column:
    """The value, null where it is null or NaN (so ``count`` counts usable values)."""
    return F.nanvl(column, F.lit(None).cast("double"))


def variant_moments(per_user: DataFrame, metrics: list[str], pre_suffix: str) -> DataFrame:
    """One row per variant x metric with ``analysis.MOMENT_COLUMNS``, from per-user rows
    (``user_id, variant``, each of ``metrics`` and optionally ``<metric><pre_suffix>``).

    One aggregation grouped by variant, with Spark's numerically stable ``var_samp`` and
    ``covar_samp``: the result has as many rows as variants x metrics, however many users.
    ``users`` (distinct user ids) lets the analysis reject a user counted twice in a variant.
    """
    def moments(metric: str) -> Column:
        y = F.col(metric).cast("double")
        pre = f"{metric}{pre_suffix}"
        has_pre = pre in per_user.columns
        x = F.col(pre).cast("double") if has_pre else F.lit(None).cast("double")
        return F.struct(F.lit(metric).alias("metric"), F.count(_present(y)).alias("n_y"),
                        F.avg(y).alias("mean_y"), F.var_samp(y).alias("var_y"),
                        F.lit(has_pre).alias("has_pre"), F.count(_present(x)).alias("n_x"),
                        F.avg(x).alias("mean_x"), F.var_samp(x).alias("var_x"),
                        F.covar_samp(y, x).alias("cov_xy"))

    per_metric = F.array(*[moments(m) for m in metrics]).cast(_MOMENT_TYPE)
    return (per_user.groupBy("variant")
            .agg(F.count(F.lit(1)).alias("n"), F.count_distinct("user_id").alias("users"),
                 per_metric.alias("_metrics"))
            # explode_outer: with no metrics a variant still brings back its user count.
            .select("variant", "n", "users", F.explode_outer("_metrics").alias("_m"))
            .select(*[F.col(f"_m.{c}").alias(c) if c in _PER_METRIC else F.col(c) for c in MOMENT_COLUMNS]))
