"""Publish step: the day's candidate union -> ``ranked_recs`` for that day, atomically.

The step resolves ``models:/<tracking.model_name>@<tracking.champion_alias>`` to a version
number once, scores every candidate on each of ``publish.surfaces`` with that version in Spark
(``ranking.score_candidates``: ``mapInPandas``, the booster built once per task) and records
the version as ``model_version``. With no champion yet (a fresh lake) the order is
``blend_order`` and ``model_version`` is ``publish.model_version`` ("candidate-blend").
On the surfaces ``publish.exclude_played`` names, what the user already played is left out.

A lake of pre-aggregated play counts (HetRec) has no ``listens``: its features come from the
day's interactions as one weighted event per (user, item) (``label_split.pseudo_listens``).
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
from setlist.label_split import pseudo_listens
from setlist.publish import blend_on_surfaces, drop_played, rank_recommendations
from setlist.ranking import score_candidates
from setlist.side_features import side_features

log = logging.getLogger(__name__)


def feature_listens(spark: SparkSession, cfg: SetlistConfig, ds: str, interactions: DataFrame) -> DataFrame:
    """Events of the feature history up to ``ds`` (``pair_features`` cuts them at the cutoff
    itself): the listens, or the interactions as weighted events in a lake of play counts."""
    if not lake.table_exists(spark, cfg, cfg.tables.listens):
        return pseudo_listens(interactions, as_of_end(ds), cfg.importers)
    first = (as_of_end(ds) - dt.timedelta(days=cfg.features.history_days + 1)).date().isoformat()
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    return listens.where((F.col("ds") >= first) & (F.col("ds") <= ds))


def side_frame(spark: SparkSession, cfg: SetlistConfig, pairs: DataFrame, known: DataFrame,
               hidden_pairs: DataFrame | None = None) -> DataFrame | None:
    """``side_features`` of ``pairs`` from the lake's tag and friend tables (when configured and
    present), seeing only ``known``; tag assignments on ``hidden_pairs`` (label items) are left out."""
    tags = friends = None
    if cfg.features.tags and lake.table_exists(spark, cfg, cfg.importers.tag_assignments_table):
        tags = lake.read_table(spark, cfg, cfg.importers.tag_assignments_table)
        if hidden_pairs is not None:
            hidden = hidden_pairs.select("user_id", F.col("track_id").alias("artist_id"))
            tags = tags.join(hidden, on=["user_id", "artist_id"], how="left_anti")
    if cfg.features.friends and lake.table_exists(spark, cfg, cfg.tables.user_friends):
        friends = lake.read_table(spark, cfg, cfg.tables.user_friends)
    return side_features(pairs, known, cfg.features, tags, friends)


def champion_features(spark: SparkSession, cfg: SetlistConfig, union: DataFrame, interactions: DataFrame,
                      ds: str) -> DataFrame:
    """Model features of every candidate on each publishing surface, as of the end of ``ds``."""
    side = side_frame(spark, cfg, union, interactions)
    pairs = pair_features(union, feature_listens(spark, cfg, ds, interactions), as_of_end(ds), cfg, side)
    return with_context(pairs, every_surface(union, cfg.publish.surfaces), cfg.events.surfaces)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> str:
    """Write the ``ranked_recs`` partition for ``ds``; returns the model_version recorded."""
    version = tracking.champion_version(cfg)
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    if version is None:
        model_version = cfg.publish.model_version
        scored = blend_on_surfaces(union, cfg.candidates.source_priority, cfg.publish.surfaces)
    else:
        model_version = str(version)
        booster = tracking.load_ranker(cfg, version)
        scored = score_candidates(champion_features(spark, cfg, union, interactions, ds),
                                  booster.model_to_string(), booster.feature_name())
    excluding = [s for s in cfg.publish.surfaces if cfg.publish.excludes_played(s)]
    scored = drop_played(scored, interactions, excluding)
    ranked = rank_recommendations(scored, cfg.publish.top_n, model_version, ds)
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id)
    log.info("published %s with model_version %s", ds, model_version)
    return model_version
