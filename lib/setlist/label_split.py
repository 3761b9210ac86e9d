"""Labels for data without daily history: the split the ranker trains on in ``setlist run-public``.

The daily ranker labels day D's candidates with what users did on D + 1. Public data has no
such days, so the known history itself is split once, and the split is persisted
(``tables.ranker_split``) before it is used, so its halves cannot overlap:

- **count data** (HetRec play counts, no time): per user, a seeded ``holdout_fraction`` of the
  items (users with at least ``min_items``; the seeded hash of ``setlist.evaluation``) are
  **label** rows, the rest **known**. A label's grade comes from its play count among all
  label rows: from the ``saved_quantile`` a save, from the ``completed_quantile`` a completed
  listen, below it a listen (a play count has no skips).
- **timestamped data** (MovieLens ratings as listens): one global cut at ``cutoff``; known =
  the (user, item) pairs with an event before it, label = the best event grade
  (``setlist.ranking.event_grade``) of each pair in [cutoff, cutoff + horizon).

Candidates and features are computed from the known part only (``known_interactions``,
``known_listens``), so no label item reaches a feature or a candidate score.

Split rows: ``user_id, surface, track_id, part ("known" | "label"), label (null on known), ds``.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from setlist.config import ImportersConfig, RankerSplitConfig, RankingConfig, RewardsConfig
from setlist.evaluation import mark_holdout
from setlist.ranking import LABEL, graded_labels

KNOWN, LABELLED = "known", "label"
SPLIT_COLUMNS = ["user_id", "surface", "track_id", "part", LABEL, "ds"]


def count_grade(plays: Column, completed_min: float, saved_min: float, cfg: RankingConfig) -> Column:
    """The grade of a held-out play count (thresholds: the label rows' count quantiles)."""
    return (F.when(plays >= F.lit(saved_min), F.lit(cfg.grade_saved))
            .when(plays >= F.lit(completed_min), F.lit(cfg.grade_completed))
            .otherwise(F.lit(cfg.grade_listen)))


def count_split(interactions: DataFrame, cfg: RankerSplitConfig, surface: str, ds: str) -> DataFrame:
    """Interactions (one row per user, item; ``plays``) -> split rows without grades, plus ``plays``."""
    marked = mark_holdout(interactions, cfg.holdout_fraction, cfg.seed, cfg.min_items, "_held_out")
    return marked.select("user_id", F.lit(surface).alias("surface"), "track_id",
                         F.when(F.col("_held_out"), F.lit(LABELLED)).otherwise(F.lit(KNOWN)).alias("part"),
                         F.lit(None).cast("int").alias(LABEL), F.lit(ds).alias("ds"), "plays")


def grade_counts(split: DataFrame, completed_min: float, saved_min: float, cfg: RankingConfig) -> DataFrame:
    """``count_split`` rows -> ``SPLIT_COLUMNS``: label rows graded by their play count."""
    grade = F.when(F.col("part") == LABELLED,
                   count_grade(F.col("plays"), completed_min, saved_min, cfg)).cast("int")
    return split.withColumn(LABEL, grade).select(*SPLIT_COLUMNS)


def time_split(listens: DataFrame, cutoff: dt.datetime, horizon_days: int, ranking: RankingConfig,
               rewards: RewardsConfig, ds: str) -> DataFrame:
    """Listens -> ``SPLIT_COLUMNS``: known pairs before ``cutoff``, graded pairs in the horizon."""
    known = (listens.where(F.col("ts") < F.lit(cutoff))
             .select("user_id", "surface", "track_id").distinct()
             .select("user_id", "surface", "track_id", F.lit(KNOWN).alias("part"),
                     F.lit(None).cast("int").alias(LABEL)))
    horizon = ranking.model_copy(update={"label_days": horizon_days})
    labelled = (graded_labels(listens, cutoff, horizon, rewards)
                .select("user_id", "surface", "track_id", F.lit(LABELLED).alias("part"), LABEL))
    return known.unionByName(labelled).withColumn("ds", F.lit(ds)).select(*SPLIT_COLUMNS)


def labels_of(split: DataFrame) -> DataFrame:
    """(user_id, surface, track_id, label) of the split's label rows."""
    return split.where(F.col("part") == LABELLED).select("user_id", "surface", "track_id", LABEL)


def known_interactions(interactions: DataFrame, split: DataFrame) -> DataFrame:
    """The interactions of the count split's known part (same columns as ``interactions``)."""
    label_pairs = split.where(F.col("part") == LABELLED).select("user_id", "track_id").distinct()
    return interactions.join(label_pairs, on=["user_id", "track_id"], how="left_anti")


def known_listens(listens: DataFrame, cutoff: dt.datetime) -> DataFrame:
    """The listens before the time split's cutoff."""
    return listens.where(F.col("ts") < F.lit(cutoff))


def pseudo_listens(interactions: DataFrame, cutoff: dt.datetime, cfg: ImportersConfig) -> DataFrame:
    """Count data as events for the features: one completed, ``weight``-ed (by the play count)
    listen per (user, item), stamped an hour before ``cutoff`` (counts carry no time)."""
    duration = cfg.track_duration_ms
    return interactions.select(
        "user_id", "track_id", "artist_id", F.lit(cutoff - dt.timedelta(hours=1)).alias("ts"),
        F.lit(duration).cast("long").alias("ms_played"), F.lit(duration).cast("long").alias("track_duration_ms"),
        F.lit("trackdone").alias("reason_end"), F.lit(cfg.surface).alias("surface"),
        F.lit(False).alias("skipped"), F.lit(False).alias("saved"), F.col("plays").cast("double").alias("weight"))
