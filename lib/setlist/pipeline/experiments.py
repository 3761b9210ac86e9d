"""Experiment steps: assign users to variants, and analyse the experiments on a day.

``assign``: every user seen in ``listens`` up to ``ds`` -> partition ``ds`` of
``experiment_assignments`` (experiment, user_id, bucket, variant, model_ref), one row per
configured experiment and user; salted hashing makes a user's variant the same every day.
Publishing (``pipeline.publish.variant_serving``) reads it to serve each user the variant's model.

``analyze``: per-user outcomes after exposure (and before it, for CUPED) of every
experiment started by ``ds``, reduced in Spark to moments per variant and metric (the
driver gets those few rows, never per-user data) -> ``setlist.experiments.analysis`` -> partition ``ds`` of
``experiment_results`` (one row per experiment x metric x treatment variant, with the
sample-ratio check), an MLflow run with the effects plot and the Markdown report, and
the same report and plot under ``paths.reports/experiments/ds=<ds>/``.
"""
from __future__ import annotations

import datetime as dt

import logging
from pathlib import Path

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from setlist import lake, tracking
from setlist.config import ExperimentConfig, SetlistConfig
from setlist.experiments.analysis import (
    RESULT_COLUMNS, analyze_moments, sample_ratio_from_counts, users_per_variant)
from setlist.experiments.report import effects_plot, report_markdown
from setlist.experiments.assignment import assign_users
from setlist.experiments.outcomes import analysis_window, user_outcomes, variant_moments

log = logging.getLogger(__name__)

ASSIGNMENT_SCHEMA = T.StructType([
    T.StructField("experiment", T.StringType()), T.StructField("user_id", T.StringType()),
    T.StructField("bucket", T.IntegerType()), T.StructField("variant", T.StringType()),
    T.StructField("model_ref", T.StringType()), T.StructField("ds", T.StringType())])
_STRING_RESULTS = {"experiment", "metric", "control", "variant"}
_LONG_RESULTS = {"n_control", "n_variant"}
_BOOL_RESULTS = {"significant", "has_cuped", "cuped_significant"}
RESULT_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType() if name in _STRING_RESULTS else T.LongType() if name in _LONG_RESULTS
                   else T.BooleanType() if name in _BOOL_RESULTS else T.DoubleType())
     for name in RESULT_COLUMNS]
    + [T.StructField(name, T.DoubleType()) for name in ("srm_chi2", "srm_p_value")]
    + [T.StructField("srm_detected", T.BooleanType())]
    + [T.StructField(name, T.StringType()) for name in ("pre_start", "post_start", "post_end", "ds")])


def is_active(experiment: ExperimentConfig, ds: str) -> bool:
    """Started on or before ``ds`` (an experiment without a start date is always on)."""
    return experiment.start_date is None or experiment.start_date <= ds


def model_ref_col(experiment: ExperimentConfig) -> Column:
    """The variant's model reference (registry alias or version) as a string."""
    pairs = [F.lit(x) for variant, model in experiment.models.items() for x in (variant, str(model))]
    return F.create_map(*pairs)[F.col("variant")]


def assignments_for(users: DataFrame, experiments: list[ExperimentConfig], ds: str) -> DataFrame:
    """Distinct ``users`` (user_id) x ``experiments`` -> rows of :data:`ASSIGNMENT_SCHEMA`."""
    frames = [assign_users(users, experiment)
              .select("experiment", F.col("user_id").cast("string").alias("user_id"), "bucket", "variant",
                      model_ref_col(experiment).alias("model_ref"), F.lit(ds).alias("ds"))
              for experiment in experiments]
    if not frames:
        return users.sparkSession.createDataFrame([], ASSIGNMENT_SCHEMA)
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union


def seen_users(spark: SparkSession, cfg: SetlistConfig, ds: str) -> DataFrame:
    """Every user seen up to ``ds``: yesterday's assigned users plus today's listeners, so the
    step reads two partitions, not the whole history. Without a (non-empty) partition for
    yesterday, e.g. on the first day, the listens up to ``ds`` are scanned instead."""
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    yesterday = (dt.date.fromisoformat(ds) - dt.timedelta(days=1)).isoformat()
    table = cfg.tables.experiment_assignments
    if lake.table_exists(spark, cfg, table):
        assigned = lake.read_table(spark, cfg, table, yesterday)
        if assigned.limit(1).count():
            return (assigned.select("user_id").unionByName(listens.where(F.col("ds") == ds).select("user_id"))
                    .distinct())
    return listens.where(F.col("ds") <= ds).select("user_id").distinct()


def assign(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    """Write partition ``ds`` of ``experiment_assignments`` for every user seen up to ``ds``."""
    users = seen_users(spark, cfg, ds)
    assignments = assignments_for(users, cfg.experiments.experiments, ds)
    lake.write_partition(assignments, cfg, cfg.tables.experiment_assignments, ds, run_id)
    log.info("assignments %s: %d experiment(s)", ds, len(cfg.experiments.experiments))


def _results_frame(results: pd.DataFrame, srm: pd.DataFrame, window: dict[str, str], ds: str) -> pd.DataFrame:
    first = srm.iloc[0]
    return results.assign(srm_chi2=float(first["chi2"]), srm_p_value=float(first["p_value"]),
                          srm_detected=bool(first["srm_detected"]), ds=ds, **window)


def _to_spark(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    # Row by row with the explicit schema: NaN stays NaN in doubles, None is null in booleans.
    rows = [tuple(None if pd.isna(value) and field.dataType == T.BooleanType() else
                  (bool(value) if field.dataType == T.BooleanType() else
                   int(value) if field.dataType == T.LongType() else
                   float(value) if field.dataType == T.DoubleType() else value)
                  for field, value in zip(RESULT_SCHEMA.fields, record))
            for record in frame[RESULT_SCHEMA.fieldNames()].itertuples(index=False)]
    return spark.createDataFrame(rows, RESULT_SCHEMA)


def _mlflow_metrics(results: pd.DataFrame) -> dict[str, float]:
    metrics = {}
    for row in results.itertuples():
        prefix = f"{row.experiment}/{row.metric}/{row.variant}"
        for name in ("rel_diff", "rel_ci_low", "rel_ci_high", "p_value",
                     "cuped_rel_diff", "cuped_rel_ci_low", "cuped_rel_ci_high", "cuped_p_value",
                     "cuped_variance_reduction"):
            value = getattr(row, name)
            if pd.notna(value):
                metrics[f"{prefix}/{name}"] = value
        metrics[f"{row.experiment}/srm_p_value"] = row.srm_p_value
        metrics[f"{row.experiment}/users"] = row.n_control + row.n_variant
    return metrics


def analyze(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> pd.DataFrame:
    """Analyse every experiment started by ``ds``; returns the rows written to ``experiment_results``.

    With no experiment running the partition is written empty (a rerun after a config
    change leaves no stale rows). Report and plot files are written under
    ``paths.reports/experiments/ds=<ds>/<experiment>.{md,png}``.
    """
    running = [e for e in cfg.experiments.experiments if e.start_date is not None and is_active(e, ds)]
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    assignments = lake.read_table(spark, cfg, cfg.tables.experiment_assignments, ds)
    frames, reports = [], []
    for experiment in running:
        per_user = user_outcomes(listens, assignments, experiment, cfg.experiments, cfg.rewards, ds)
        # Only one row per variant and metric comes back, however many users are exposed.
        moments = variant_moments(per_user, cfg.experiments.metrics, cfg.experiments.pre_suffix).toPandas()
        results = analyze_moments(moments, experiment, cfg.experiments)
        srm = sample_ratio_from_counts(users_per_variant(moments), experiment, cfg.experiments)
        frames.append(_results_frame(results, srm, analysis_window(experiment, cfg.experiments, ds), ds))
        folder = Path(cfg.paths.reports) / "experiments" / f"ds={ds}"
        folder.mkdir(parents=True, exist_ok=True)
        report = folder / f"{experiment.name}.md"
        plot = effects_plot(results, folder / f"{experiment.name}.png")
        report.write_text(report_markdown(results, srm) + f"\n\n![effects]({plot.name})\n")
        reports.append((experiment, report, plot))
    written = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_SCHEMA.fieldNames())
    lake.write_partition(_to_spark(spark, written), cfg, cfg.tables.experiment_results, ds, run_id)
    if reports:
        with tracking.start_run(cfg, f"experiments-{ds}", {"ds": ds, "run_id": run_id, "step": "analyze_experiment"}):
            tracking.log_params({"alpha": cfg.experiments.alpha, "srm_alpha": cfg.experiments.srm_alpha,
                                 "metrics": ",".join(cfg.experiments.metrics),
                                 "pre_days": cfg.experiments.pre_days})
            for experiment, report, plot in reports:
                tracking.log_params({f"{experiment.name}.{key}": value for key, value in
                                     experiment.model_dump(include={"salt", "allocation", "models",
                                                                    "start_date", "control"}).items()})
                tracking.log_artifact(report, f"experiments/{experiment.name}")
                tracking.log_artifact(plot, f"experiments/{experiment.name}")
            tracking.log_metrics(_mlflow_metrics(written))
    log.info("experiments %s: %d experiment(s) analysed, %d result rows", ds, len(reports), len(written))
    return written
