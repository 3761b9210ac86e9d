"""Publish step: the day's candidate union -> ``ranked_recs`` for that day, atomically.

The step resolves ``models:/<tracking.model_name>@<tracking.champion_alias>`` to a version
number once, scores every candidate on each of ``publish.surfaces`` with that version in Spark
(``scoring.score_candidates``: an Arrow UDF over the features, the ranker compiled by lleaves
once per model with ``publish.scorer=compiled`` and loaded once per Python worker) and records
the version as ``model_version``. With no champion yet (a fresh lake) the order is
``blend_order`` and ``model_version`` is ``publish.model_version`` ("candidate-blend").

A/B tests are served for real: a user assigned (``experiment_assignments`` of the day) to a
variant of a running experiment is scored with that variant's model (``models`` in the
experiment's config: a registry alias or version, each resolved to a version once), and every
row records ``model_version``, ``experiment`` and ``variant``. A user in several running
experiments is served by the first of them in config order.

With ``publish.exploration`` on, each list is served under the exploration policy instead of in
score order and every row records its ``propensity`` (``setlist.ope``), what ``setlist ope``
values another ranker with.

On the surfaces ``publish.exclude_played`` names, what the user already played is left out.
A lake of pre-aggregated play counts (HetRec) has no ``listens``: its features come from the
day's interactions as one weighted event per (user, item) (``label_split.pseudo_listens``).
"""
from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.config import SetlistConfig
from setlist.errors import LakeError
from setlist.features import every_surface, pair_features, with_context
from setlist.interactions import as_of_end
from setlist.label_split import pseudo_listens
from setlist.pipeline.experiments import is_active
from setlist.publish import blend_on_surfaces, drop_played, explore_recommendations, rank_recommendations
from setlist.scoring import compile_ranker, score_candidates
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


def compiles(cfg: SetlistConfig, union: DataFrame) -> bool:
    """Whether publish scores with the compiled ranker: always with ``publish.scorer=compiled``;
    with ``auto`` once the rows to score (candidates x surfaces; Delta answers the count from its
    file statistics) repay the compile, ``publish.compile_min_rows``."""
    if cfg.publish.scorer != "auto":
        return cfg.publish.scorer == "compiled"
    return union.count() * len(cfg.publish.surfaces) >= cfg.publish.compile_min_rows


def served_version(cfg: SetlistConfig, ref: str) -> str:
    """The version a variant's model reference serves; the champion alias before any champion
    exists serves what everyone else gets then, the candidate blend (``publish.model_version``)."""
    if ref == cfg.tracking.champion_alias and tracking.champion_version(cfg) is None:
        return cfg.publish.model_version
    return str(tracking.resolve_model_ref(cfg, ref))


def variant_serving(spark: SparkSession, cfg: SetlistConfig, ds: str) -> DataFrame | None:
    """(user_id, experiment, variant, model_version) of the users in an experiment running on
    ``ds``, each model reference resolved to a registry version once; None when none runs."""
    running = [e for e in cfg.experiments.experiments if is_active(e, ds)]
    if not running:
        return None
    table = cfg.tables.experiment_assignments
    if not lake.table_exists(spark, cfg, table) or lake.read_table(spark, cfg, table, ds).limit(1).count() == 0:
        raise LakeError(f"publish {ds}: experiment(s) {[e.name for e in running]} run on this day but "
                        f"'{table}' has no ds={ds}; run assign_experiments for {ds} first")
    refs = {str(ref) for e in running for ref in e.models.values()}
    versions = {ref: served_version(cfg, ref) for ref in sorted(refs)}
    order = F.create_map(*[F.lit(x) for i, e in enumerate(running) for x in (e.name, i)])
    first = Window.partitionBy("user_id").orderBy(order[F.col("experiment")].asc())
    version = F.create_map(*[F.lit(x) for pair in versions.items() for x in pair])[F.col("model_ref")]
    return (lake.read_table(spark, cfg, table, ds)
            .where(F.col("experiment").isin([e.name for e in running]))
            .withColumn("_order", F.row_number().over(first)).where(F.col("_order") == 1)
            .select("user_id", "experiment", "variant", version.alias("model_version")))


def score_by_model(spark: SparkSession, cfg: SetlistConfig, union: DataFrame, interactions: DataFrame,
                   ds: str, champion: int | None, serving: DataFrame | None) -> DataFrame:
    """Every user's candidates scored by their model: the variant's, else the champion's, else
    the candidate blend. Output: (user_id, surface, track_id, score, sources, model_version,
    experiment, variant)."""
    serving = serving if serving is not None else spark.createDataFrame(
        [], "user_id string, experiment string, variant string, model_version string")
    default = cfg.publish.model_version if champion is None else str(champion)
    versions = sorted({row[0] for row in serving.select("model_version").distinct().collect()} | {default})
    features = None
    compiled_scoring = None  # decided once, for the first version that is a model
    parts = []
    for version in versions:
        assigned = serving.where(F.col("model_version") == version).drop("model_version")
        users = union.join(assigned, on="user_id", how="inner")
        if version == default:  # the default model also serves everyone in no experiment
            others = union.join(serving.select("user_id"), on="user_id", how="left_anti")
            users = users.unionByName(others.withColumn("experiment", F.lit(None).cast("string"))
                                      .withColumn("variant", F.lit(None).cast("string")))
        who = users.select("user_id", "experiment", "variant").distinct()
        if version == cfg.publish.model_version:
            scored = blend_on_surfaces(users.drop("experiment", "variant"), cfg.candidates.source_priority,
                                       cfg.publish.surfaces)
        else:
            if features is None:
                features = champion_features(spark, cfg, union, interactions, ds)
            booster = tracking.load_ranker(cfg, int(version))
            text = booster.model_to_string()
            if compiled_scoring is None:
                compiled_scoring = compiles(cfg, union)
            compiled = (compile_ranker(spark, text, cfg.paths.compiled_models, cfg.publish.compiled_target_cpu)
                        if compiled_scoring else None)
            scored = score_candidates(features.join(who.select("user_id"), on="user_id", how="left_semi"),
                                      text, booster.feature_name(), compiled)
        parts.append(scored.join(who, on="user_id", how="inner").withColumn("model_version", F.lit(version)))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> str:
    """Write the ``ranked_recs`` partition for ``ds``; returns the default model_version recorded
    (the champion's version, or ``publish.model_version`` before there is one)."""
    champion = tracking.champion_version(cfg)
    union = lake.read_table(spark, cfg, cfg.tables.candidates, ds)
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions, ds)
    scored = score_by_model(spark, cfg, union, interactions, ds, champion, variant_serving(spark, cfg, ds))
    excluding = [s for s in cfg.publish.surfaces if cfg.publish.excludes_played(s)]
    scored = drop_played(scored, interactions, excluding)
    model_version = cfg.publish.model_version if champion is None else str(champion)
    exploration = cfg.publish.exploration
    if exploration.policy == "none":
        ranked = rank_recommendations(scored, cfg.publish.top_n, model_version, ds)
    else:
        ranked = explore_recommendations(scored, exploration, cfg.publish.top_n, model_version, ds)
    # add_columns: lakes written before ranked_recs recorded experiment and variant gain them.
    lake.write_partition(ranked, cfg, cfg.tables.ranked_recs, ds, run_id, add_columns=True)
    log.info("published %s with model_version %s", ds, model_version)
    return model_version
