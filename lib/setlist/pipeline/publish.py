"""Publish step: the day's candidate union -> ``ranked_recs`` for that day, atomically.

The step resolves ``models:/<tracking.model_name>@<tracking.champion_alias>`` to a version
number once, scores every candidate on each of ``publish.surfaces`` with that version in Spark
(``ranking.score_candidates``: ``mapInPandas``, the booster built once per task) and records
the version as ``model_version``. With no champion yet (a fresh lake) the order is
``blend_order`` and ``model_version`` is ``publish.model_version`` ("candidate-blend").
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.config import SetlistConfig
from setlist.features import every_surface, pair_features, with_context
from setlist.interactions import as_of_end
from setlist.publish import blend_on_surfaces, rank_recommendations
from setlist.ranking import score_candidates

log = logging.getLogger(__name__)


def feature_listens(spark: SparkSession, cfg: SetlistConfig, ds: str) -> DataFrame:
    """Listens of the feature history up to ``ds`` (``pair_features`` cuts them at the cutoff itself)."""
    first = (as_of_end(ds) - dt.timedelta(days=cfg.features.history_days + 1)).date().isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    return listens.where((F.col("ds") >= first) & (F.col("ds") <= ds))


def scored_by_champion(spark: SparkSession, cfg: SetlistConfig, union: DataFrame, ds: str,
                       version: int) -> DataFrame:
    booster = tracking.load_ranker(cfg, version)
    pairs = pair_features(union, feature_listens(spark, cfg, ds), as_of_end(ds), cfg)
    framed = with_context(pairs, every_surface(union, cfg.publish.surfaces), cfg.events.surfaces)
    return score_candidates(framed, booster.model_to_string(), booster.feature_name())


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> str:
    """Write the ``ranked_recs`` partition for ``ds``; returns the model_version recorded."""
    version = tracking.champion_version(cfg)
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    if version is None:
        model_version = cfg.publish.model_version
        scored = blend_on_surfaces(union, cfg.candidates.source_priority, cfg.publish.surfaces)
    else:
        model_version = str(version)
        scored = scored_by_champion(spark, cfg, union, ds, version)
    ranked = rank_recommendations(scored, cfg.publish.top_n, model_version, ds)
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id)
    log.info("published %s with model_version %s", ds, model_version)
    return model_version
