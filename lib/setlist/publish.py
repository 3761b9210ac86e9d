"""Turning scored candidates into the published ``ranked_recs`` layout (pure transforms)."""
from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.union import blend_order
from setlist.config import ExplorationConfig
from setlist.ope.exposures import list_key, serve_list

# propensity: P(this track at this rank) under publish.exploration; null when it is off.
RANKED_RECS_COLUMNS = ["user_id", "surface", "rank", "track_id", "score", "sources", "model_version",
                       "experiment", "variant", "propensity", "ds"]
SERVING_COLUMNS = ["model_version", "experiment", "variant"]


def rank_recommendations(scored: DataFrame, top_n: int, model_version: str, ds: str) -> DataFrame:
    """(user_id, surface, track_id, score, sources[, model_version, experiment, variant]) -> top
    ``top_n`` per (user, surface) with a dense 1..n rank (``RANKED_RECS_COLUMNS``).

    Rows without their own ``model_version`` get ``model_version``; ``experiment`` and
    ``variant`` are null for users in no running experiment. Ties in score are broken by
    track_id so a rerun gives identical ranks.
    """
    serving = _serving(scored, model_version)
    by_list = Window.partitionBy("user_id", "surface").orderBy(F.desc("score"), F.asc("track_id"))
    ranked = (scored.withColumn("rank", F.row_number().over(by_list)).where(F.col("rank") <= top_n)
              .withColumn("propensity", F.lit(None).cast("double")))
    return _layout(ranked, serving, ds)


def _serving(scored: DataFrame, model_version: str) -> list:
    """The serving columns: the row's own, else ``model_version`` and no experiment."""
    defaults = {"model_version": F.lit(model_version), "experiment": F.lit(None).cast("string"),
                "variant": F.lit(None).cast("string")}
    return [(F.col(c) if c in scored.columns else defaults[c]).cast("string").alias(c) for c in SERVING_COLUMNS]


def _layout(ranked: DataFrame, serving: list, ds: str) -> DataFrame:
    return ranked.select("user_id", "surface", F.col("rank").cast("int").alias("rank"), "track_id",
                         F.col("score").cast("double").alias("score"), "sources", *serving,
                         F.col("propensity").cast("double").alias("propensity"), F.lit(ds).alias("ds"))


def explore_recommendations(scored: DataFrame, exploration: ExplorationConfig, top_n: int,
                            model_version: str, ds: str) -> DataFrame:
    """As :func:`rank_recommendations`, but each (user, surface) list is served under
    ``exploration`` (``setlist.ope.policies``, seeded by day, user and surface, so a rerun serves
    the same lists) and every row records its propensity."""
    def serve(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values("track_id", kind="stable")
        user, surface = frame["user_id"].iloc[0], frame["surface"].iloc[0]
        served = serve_list(list_key(ds, user, surface), frame["track_id"].to_numpy(),
                            frame["score"].to_numpy(), exploration, top_n)
        return served.drop(columns="list_id").assign(user_id=user, surface=surface)

    schema = "track_id string, position long, propensity double, user_id string, surface string"
    served = (scored.select("user_id", "surface", "track_id", F.col("score").cast("double").alias("score"))
              .groupBy("user_id", "surface").applyInPandas(serve, schema)
              .withColumnRenamed("position", "rank"))
    serving = _serving(scored, model_version)
    return _layout(served.join(scored, on=["user_id", "surface", "track_id"], how="inner"), serving, ds)


def blend_on_surfaces(union: DataFrame, source_priority: list[str], surfaces: list[str]) -> DataFrame:
    """The candidate union -> (user_id, surface, track_id, score, sources) in ``blend_order``,
    the same list on every surface (the fallback while no ranker is champion)."""
    return (blend_order(union, source_priority)
            .join(union.select("user_id", "track_id", "sources"), on=["user_id", "track_id"], how="inner")
            .select("user_id", F.explode(F.array(*[F.lit(s) for s in surfaces])).alias("surface"),
                    "track_id", "score", "sources"))


def drop_played(scored: DataFrame, interactions: DataFrame, surfaces: list[str]) -> DataFrame:
    """``scored`` without the (user, track) pairs in ``interactions`` on ``surfaces`` (the
    discovery surfaces); other surfaces keep every row."""
    if not surfaces:
        return scored
    played = interactions.select("user_id", "track_id").distinct().withColumn("_played", F.lit(True))
    on_discovery = F.col("surface").isin(surfaces)
    return (scored.join(played, on=["user_id", "track_id"], how="left")
            .where(~(on_discovery & F.coalesce(F.col("_played"), F.lit(False))))
            .drop("_played"))
