"""The candidate union: one row per (user, track) with a flag, score and rank per source.

``union_candidates`` output, for each configured source s (in the given order):

    user_id string, track_id string,
    {s}_flag boolean (false if s did not propose the track), {s}_score double (null if not),
    {s}_rank int (null if not), ..., n_sources int, sources array<string> (sorted)

These columns become ranking features. ``blend_order`` is the publishing order
until the ranker exists.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS


def union_columns(sources: list[str]) -> list[str]:
    per_source = [f"{s}_{part}" for s in sources for part in ("flag", "score", "rank")]
    return ["user_id", "track_id", *per_source, "n_sources", "sources"]


def union_candidates(per_source: list[DataFrame], sources: list[str]) -> DataFrame:
    """Candidate frames (``CANDIDATE_COLUMNS``) -> one row per (user_id, track_id).

    Rows of a source not in ``sources`` are ignored. A source proposing the same
    track twice for a user keeps its best rank.
    """
    stacked = reduce(DataFrame.unionByName, [df.select(*CANDIDATE_COLUMNS) for df in per_source])
    stacked = stacked.where(F.col("source").isin(sources))
    aggregates: list[Column] = []
    for s in sources:
        mine = F.col("source") == s
        aggregates += [F.coalesce(F.max(mine), F.lit(False)).alias(f"{s}_flag"),
                       F.max(F.when(mine, F.col("source_score"))).cast("double").alias(f"{s}_score"),
                       F.min(F.when(mine, F.col("source_rank"))).cast("int").alias(f"{s}_rank")]
    # ``sources`` and ``n_sources`` come from the flags: a countDistinct or collect_set beside
    # the other aggregates would make Spark expand every row per distinct aggregate or fall back
    # to an object aggregate (together the step's costliest part, measured).
    named = F.filter(F.array(*[F.when(F.col(f"{s}_flag"), F.lit(s)) for s in sources]), lambda x: x.isNotNull())
    return (stacked.groupBy("user_id", "track_id").agg(*aggregates)
            .withColumn("sources", F.array_sort(named))
            .withColumn("n_sources", F.size("sources").cast("int"))
            .select(*union_columns(sources)))


def blend_order(union: DataFrame, source_priority: list[str]) -> DataFrame:
    """The union -> (user_id, track_id, score, source) in publishing order.

    A track's key is its first source in ``source_priority`` that proposed it, then
    its rank in that source, then track_id: all of the first source's tracks by its
    rank, then the next source's remaining tracks, and so on. ``score`` is 1 / position
    (strictly decreasing per user); ``source`` names the source that placed the track.
    Tracks proposed by no source in ``source_priority`` (or sources missing from the
    union) are left out.
    """
    present = [s for s in source_priority if f"{s}_flag" in union.columns]
    placements = [F.when(F.col(f"{s}_flag"), F.struct(F.lit(position).alias("priority"),
                                                      F.col(f"{s}_rank").alias("rank"),
                                                      F.lit(s).alias("source")))
                  for position, s in enumerate(present)]
    first = F.coalesce(*placements)
    by_user = Window.partitionBy("user_id").orderBy("_first.priority", "_first.rank", "track_id")
    return (union.withColumn("_first", first)
            .where(F.col("_first").isNotNull())
            .withColumn("_position", F.row_number().over(by_user))
            .select("user_id", "track_id", (F.lit(1.0) / F.col("_position")).alias("score"),
                    F.col("_first.source").alias("source")))
