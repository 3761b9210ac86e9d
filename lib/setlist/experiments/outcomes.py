"""Per-user outcome metrics of an experiment, aggregated from listens in Spark.

Pure transforms: DataFrames and config in, a DataFrame out; no storage, no actions.
The analysis (:mod:`setlist.experiments.analysis`) takes the result once it is small
(one row per exposed user) as a pandas frame.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist.config import ExperimentConfig, ExperimentsConfig
from setlist.errors import ConfigError

MS_PER_MINUTE = 60_000


def is_stream(threshold_s: float) -> Column:
    """A play heard for at least ``threshold_s`` seconds."""
    return F.col("ms_played") >= F.lit(threshold_s * 1000)


def on_recommendation_surface(surfaces: list[str]) -> Column:
    return F.col("surface").isin(surfaces)


def metric_aggregates(cfg: ExperimentsConfig) -> dict[str, Column]:
    """Metric name -> aggregate Column over one user's listens in a period."""
    minutes = F.col("ms_played") / F.lit(MS_PER_MINUTE)
    known = {
        "minutes_played": F.sum(minutes),
        "streams": F.count_if(is_stream(cfg.stream_threshold_s)),
        "skips": F.count_if(F.col("skipped")),
        "saves": F.count_if(F.col("saved")),
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
                  cfg: ExperimentsConfig, ds: str) -> DataFrame:
    """One row per assigned user: ``user_id, variant``, each metric after exposure and
    ``<metric><pre_suffix>`` before it (the CUPED covariate).

    ``listens`` needs ``user_id, ds, ms_played, skipped, saved, surface``; ``assignments``
    ``experiment, user_id, variant``. Post = days ``[start_date, ds]``, pre = the
    ``pre_days`` days before ``start_date``. Users with no listening in a period get 0,
    so every assigned user counts (intent to treat).
    """
    window = analysis_window(experiment, cfg, ds)
    aggregates = metric_aggregates(cfg)
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
