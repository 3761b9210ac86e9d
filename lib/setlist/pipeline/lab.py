"""``setlist lab``: a baseline config and variants, each run interactions -> candidates -> ranker
on the same split, compared offline per surface with a bootstrap CI over users (``setlist.lab``).

The split is the daily ranker's (``train_ranker.split_days`` of ``--ds``): train, valid and eval
days before it, labelled by what users did next. A variant is a name and dotted config overrides,
validated (an unknown key or signal is an error naming it) before anything is computed. A variant
that changes ``rewards`` or ``candidates`` gets its own interactions and candidates for the three
days (tables ``lab_<variant>_...``); others reuse the lake's. Every variant is evaluated on the
labels of the baseline's definition, so a new label definition changes what the model learns,
not what it is judged on.

MLflow: a parent run ``lab-<ds>`` with the lift table and plot as artifacts, and a child run per
variant with its overrides and per-surface metrics.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import SparkSession

from setlist import lab, ranking, tracking
from setlist.config import SetlistConfig, load_config
from setlist.errors import ConfigError, LakeError
from setlist.features import feature_columns
from setlist.pipeline import build_interactions, candidates
from setlist.pipeline.train_ranker import day_frames, fit_layouts, missing_inputs, split_days

log = logging.getLogger(__name__)

# What a variant may change, and which of it means new interactions and candidates.
VARIANT_SECTIONS = ("rewards", "candidates", "features", "ranking", "lab")
REBUILDS = ("rewards", "candidates")
LABEL_KEYS = ("grade_skip", "grade_none", "grade_listen", "grade_completed", "grade_saved", "label_days",
              "surface_min_grade")
BASELINE = "baseline"


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]


def parse_variant(text: str) -> Variant:
    """``NAME:KEY=VALUE[;KEY=VALUE...]`` -> a Variant (keys checked by :func:`variant_config`)."""
    name, sep, body = text.partition(":")
    overrides = tuple(part.strip() for part in body.split(";") if part.strip())
    if not sep or not name.strip() or not overrides or any("=" not in o for o in overrides):
        raise ConfigError(f"--variant {text!r}: expected NAME:KEY=VALUE[;KEY=VALUE...], "
                          f"e.g. saves3:rewards.save_weight=3")
    if name.strip() == BASELINE:
        raise ConfigError(f"--variant {text!r}: '{BASELINE}' names the config without overrides")
    return Variant(name.strip(), overrides)


def variant_config(conf_files: list[str] | None, base_overrides: list[str], variant: Variant) -> SetlistConfig:
    """The variant's config: the baseline's plus its overrides, each a key in ``VARIANT_SECTIONS``."""
    for override in variant.overrides:
        section = override.split("=", 1)[0].strip().split(".", 1)[0]
        if section not in VARIANT_SECTIONS:
            raise ConfigError(f"lab variant '{variant.name}': {override!r} changes '{section}'; a variant may "
                              f"change only {', '.join(VARIANT_SECTIONS)}")
    try:
        cfg = load_config(conf_files, [*base_overrides, *variant.overrides])
    except ConfigError as exc:
        raise ConfigError(f"lab variant '{variant.name}': {exc}") from None
    if any(o.split(".", 1)[0] in REBUILDS for o in variant.overrides):
        prefix = f"lab_{variant.name}_"
        tables = cfg.tables.model_copy(update={"interactions": prefix + cfg.tables.interactions,
                                               "candidates": prefix + cfg.tables.candidates})
        cfg = cfg.model_copy(update={"tables": tables})
    # The lab's frames never replace the daily run's cached ones.
    return cfg.model_copy(update={"tables": cfg.tables.model_copy(update={"ranker_frames": "lab_ranker_frames"})})


def judged_by_baseline(cfg: SetlistConfig, base: SetlistConfig) -> SetlistConfig:
    """``cfg`` with the baseline's label definition: the config that builds a variant's eval frame."""
    labels = {key: getattr(base.ranking, key) for key in LABEL_KEYS}
    return cfg.model_copy(update={"ranking": cfg.ranking.model_copy(update=labels)})


def variant_frames(spark: SparkSession, cfg: SetlistConfig, base: SetlistConfig, days: dict[str, str],
                   rebuild: bool, run_id: str) -> dict[str, pd.DataFrame]:
    if rebuild:
        for day in days.values():
            build_interactions.run(spark, cfg, day, run_id)
            candidates.run(spark, cfg, day, run_id)
    frames = day_frames(spark, cfg, {"train": days["train"], "valid": days["valid"]}, run_id)
    frames["eval"] = day_frames(spark, judged_by_baseline(cfg, base), {"eval": days["eval"]}, run_id)["eval"]
    return frames


def measure(cfg: SetlistConfig, frames: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fit the config's ranker (with its signals) on the frames -> per-group metrics on the eval day."""
    frames = {name: lab.with_signals(frame, cfg.lab, cfg.generator) for name, frame in frames.items()}
    features = feature_columns(cfg) + [lab.signal_column(s) for s in cfg.lab.signals]
    booster, metrics = fit_layouts(frames, cfg, features)
    scores = ranking.predict(booster, frames["eval"])
    return ranking.group_metrics(frames["eval"], scores, cfg.evaluation.ranking_k, cfg.ranking), metrics


def run(spark: SparkSession, cfg: SetlistConfig, conf_files: list[str] | None, base_overrides: list[str],
        variants: list[Variant], ds: str, run_id: str) -> tuple[list[lab.Lift], str | None]:
    """Measure every variant against the baseline for the split of ``ds``; returns (lifts, winner)."""
    names = [v.name for v in variants]
    if not variants or len(set(names)) != len(names):
        raise ConfigError(f"setlist lab: give one or more --variant with distinct names, got {names}")
    configs = {v.name: variant_config(conf_files, base_overrides, v) for v in variants}  # all checked first
    days = split_days(ds, cfg.ranking.train_lag_days)
    missing = missing_inputs(spark, cfg, days)
    if missing:
        raise LakeError(f"setlist lab {ds}: the split {days} needs {', '.join(missing)}; run the daily chain first")
    per_group = {BASELINE: measure(cfg, day_frames(spark, cfg, days, run_id))}
    for variant in variants:
        rebuild = any(o.split(".", 1)[0] in REBUILDS for o in variant.overrides)
        frames = variant_frames(spark, configs[variant.name], cfg, days, rebuild, run_id)
        per_group[variant.name] = measure(configs[variant.name], frames)
    lifts = [x for v in variants for x in lab.compare(per_group[BASELINE][0], per_group[v.name][0], v.name,
                                                      cfg.publish.surfaces, cfg.lab)]
    best = lab.winner(lifts)
    log_lab(cfg, ds, run_id, variants, per_group, lifts, best)
    return lifts, best


def log_lab(cfg: SetlistConfig, ds: str, run_id: str, variants: list[Variant], per_group, lifts, best) -> None:
    k = cfg.evaluation.ranking_k
    with tracking.start_run(cfg, f"lab-{ds}", {"ds": ds, "run_id": run_id, "step": "lab",
                                               "lab_winner": best or "none"}):
        tracking.log_params({"ds": ds, **{f"variant.{v.name}": "; ".join(v.overrides) for v in variants}})
        tracking.log_metrics({f"baseline_{k_}": v for k_, v in per_group[BASELINE][1].items()})
        tracking.log_figure(lab.lift_figure(lifts), "lift_by_surface.png")
        tracking.log_dict([x.__dict__ for x in lifts], "lifts.json")
        tracking.log_text(lab.lift_table(lifts, k), "lifts.txt")
        for variant in variants:
            with tracking.start_run(cfg, f"lab-{ds}-{variant.name}", {"ds": ds, "step": "lab_variant"}, nested=True):
                tracking.log_params({"overrides": "; ".join(variant.overrides)})
                mine = [x for x in lifts if x.variant == variant.name]
                tracking.log_metrics({**{f"{x.surface}_ndcg_at_{k}": x.value for x in mine},
                                      **{f"{x.surface}_lift": x.lift for x in mine},
                                      **{f"{x.surface}_lift_ci_low": x.ci_low for x in mine},
                                      **{f"{x.surface}_lift_ci_high": x.ci_high for x in mine}})
