"""Offline evaluation: leakage-free splits, ground truths and per-user ranking metrics.

Splits
    ``global_time_split`` (the default, for timestamped listens): train = events strictly
    before one global cutoff, test = events in [cutoff, cutoff + horizon). A single cut
    keeps every user's future out of training; the per-user chronological and
    leave-last-out families leak other users' future. ``per_user_holdout`` is for count
    data with no time (HetRec): a deterministic share of each user's items is held out.

Ground truths (pairs ``user_id, track_id``)
    ``truth_all_listens``: every test item the user played past the listen threshold.
    ``truth_discovery``: those of them the user had not played in train.

Metrics, per user then averaged over the users of the ground truth (a user with no list
scores 0). Relevance is binary; ``rel`` = the user's relevant items, ranks start at 1.
    Recall@K   = |top-K ∩ rel| / |rel|
    HitRate@K  = 1 if |top-K ∩ rel| > 0 else 0
    NDCG@K     = DCG / IDCG, DCG = sum over hits at rank r <= K of 1 / log2(r + 1),
                 IDCG = sum for r = 1 .. min(K, |rel|) of 1 / log2(r + 1)
                 (binary gains with the standard log2 discount; equals scikit-learn's
                 ``ndcg_score(k=K)`` on the full item row)
    AP@K       = sum over hits at rank r <= K of precision@r, divided by min(K, |rel|)
                 (MAP@K is its mean; with K >= the catalogue it is scikit-learn's
                 ``average_precision_score``)
    coverage@K = distinct items in any user's top-K / distinct items in train
    popularity = mean train-popularity percentile (``percent_rank`` of an item's train
                 user count; 0 least, 1 most popular; items unseen in train score 0) of
                 the top-K items, and of the ground-truth items for comparison.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Callable

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from setlist.config import EvaluationConfig, RewardsConfig
from setlist.errors import SetlistError
from setlist.rewards import listened_past

UNION = "union"
# Hash range the per-user hold-out maps onto [0, 1).
_HASH_BUCKETS = 2 ** 31


class LeakageError(SetlistError):
    """A feature or candidate frame was computed from events at or after the evaluation cutoff."""


# --------------------------------------------------------------------------- splits

def cutoff_at_quantile(events: DataFrame, quantile: float, ts_column: str = "ts") -> dt.datetime:
    """The timestamp at ``quantile`` of ``events[ts_column]`` (an action: one number back)."""
    seconds = events.select(F.col(ts_column).cast("double").alias("_s")).approxQuantile("_s", [quantile], 0.0)
    if not seconds:
        raise SetlistError(f"cutoff_at_quantile: no events with a '{ts_column}' to take a quantile of")
    return dt.datetime.fromtimestamp(seconds[0], dt.timezone.utc).replace(tzinfo=None)


def global_time_split(events: DataFrame, cutoff_ts: dt.datetime, horizon_days: float,
                      ts_column: str = "ts") -> tuple[DataFrame, DataFrame]:
    """(train, test): train = events with ts < cutoff; test = cutoff <= ts < cutoff + horizon.

    ``cutoff_ts`` is a naive UTC datetime (the session time zone is UTC).
    """
    end = cutoff_ts + dt.timedelta(days=horizon_days)
    ts = F.col(ts_column)
    train = events.where(ts < F.lit(cutoff_ts))
    test = events.where((ts >= F.lit(cutoff_ts)) & (ts < F.lit(end)))
    return train, test


def holdout_draw(seed: int, user_column: str = "user_id", item_column: str = "track_id") -> Column:
    """A uniform-looking number in [0, 1) fixed by (seed, user, item): no rand(), so reruns agree."""
    hashed = F.xxhash64(F.lit(str(seed)), F.col(user_column).cast("string"), F.col(item_column).cast("string"))
    return F.pmod(hashed, F.lit(_HASH_BUCKETS)).cast("double") / F.lit(float(_HASH_BUCKETS))


def per_user_holdout(interactions: DataFrame, fraction: float, seed: int,
                     min_items: int = 2) -> tuple[DataFrame, DataFrame]:
    """(train, test): per user, the floor(fraction * n) items with the smallest seeded hash
    (ties by track id) go to test, the rest to train; users with fewer than ``min_items``
    items stay whole in train. Disjoint and deterministic for a seed; same columns as input.
    """
    marked = mark_holdout(interactions, fraction, seed, min_items, "_is_test")
    columns = interactions.columns
    return (marked.where(~F.col("_is_test")).select(*columns),
            marked.where(F.col("_is_test")).select(*columns))


def mark_holdout(interactions: DataFrame, fraction: float, seed: int, min_items: int,
                 column: str) -> DataFrame:
    """``interactions`` + boolean ``column``: True on the items ``per_user_holdout`` holds out."""
    by_user = Window.partitionBy("user_id")
    by_draw = by_user.orderBy(F.col("_draw").asc(), F.col("track_id").asc())
    n_items = F.count(F.lit(1)).over(by_user)
    n_test = F.when(n_items >= min_items, F.floor(n_items * F.lit(fraction))).otherwise(F.lit(0))
    return (interactions.withColumn("_draw", holdout_draw(seed))
            .withColumn(column, F.row_number().over(by_draw) <= n_test)
            .drop("_draw"))


# --------------------------------------------------------------------------- leakage guard

def assert_no_leakage(frame: DataFrame, cutoff_ts: dt.datetime, ts_columns: list[str],
                      name: str = "frame") -> None:
    """Raise LeakageError if any of ``ts_columns`` that ``frame`` has holds a time >= cutoff.

    Features and candidates carry the time of the latest event they were computed from
    (interactions: ``last_played_ts``; a candidate source may add ``source_max_ts``).
    A frame with none of the columns cannot be checked and raises too. An action: one
    aggregate row comes back.
    """
    present = [c for c in ts_columns if c in frame.columns]
    if not present:
        raise LeakageError(f"{name}: none of the timestamp columns {ts_columns} is present "
                           f"(columns: {frame.columns}); cannot check it against the cutoff")
    cutoff = F.lit(cutoff_ts)
    row = frame.agg(*[F.max(c).alias(c) for c in present],
                    *[F.count(F.when(F.col(c) >= cutoff, True)).alias(f"_late_{c}") for c in present]).first()
    late = {c: (row[f"_late_{c}"], row[c]) for c in present if row[f"_late_{c}"] > 0}
    if late:
        detail = "; ".join(f"{n} rows with {c} >= cutoff (max {mx})" for c, (n, mx) in late.items())
        raise LeakageError(f"{name} was computed from events at or after the cutoff {cutoff_ts}: {detail}")


# --------------------------------------------------------------------------- ground truth

def truth_all_listens(test_listens: DataFrame, rewards: RewardsConfig) -> DataFrame:
    """(user_id, track_id): each test item a user played past the listen threshold."""
    return (test_listens.where(listened_past(rewards.listen_threshold_s))
            .select("user_id", "track_id").distinct())


def truth_from_interactions(test_interactions: DataFrame) -> DataFrame:
    """(user_id, track_id) of held-out interactions with at least one listen (count data)."""
    return test_interactions.where(F.col("listens") > 0).select("user_id", "track_id").distinct()


def truth_discovery(truth: DataFrame, train_history: DataFrame) -> DataFrame:
    """The ``truth`` pairs whose item the user never played in train (new to the user)."""
    return truth.join(train_history.select("user_id", "track_id"), on=["user_id", "track_id"], how="left_anti")


def warm_only(truth: DataFrame, train_history: DataFrame) -> DataFrame:
    """The ``truth`` pairs of users who have train history."""
    return truth.join(train_history.select("user_id").distinct(), on="user_id", how="left_semi")


# --------------------------------------------------------------------------- lists

def candidate_lists(candidates: DataFrame) -> DataFrame:
    """Source candidates -> lists ``(list, user_id, track_id, rank)``, ranks 1.. unique per
    (list, user) by ``source_rank`` then track id (a source's ties cannot flip reruns)."""
    by_user = Window.partitionBy("source", "user_id").orderBy(F.col("source_rank").asc(), F.col("track_id").asc())
    return candidates.select(F.col("source").alias("list"), "user_id", "track_id",
                             F.row_number().over(by_user).alias("rank"))


def union_list(candidates: DataFrame, rrf_k: float, name: str = UNION) -> DataFrame:
    """All sources' candidates as one list by reciprocal-rank fusion: score = sum over
    sources of 1 / (rrf_k + source_rank); rank by score, ties by track id."""
    fused = (candidates.groupBy("user_id", "track_id")
             .agg(F.sum(F.lit(1.0) / (F.lit(rrf_k) + F.col("source_rank"))).alias("_score")))
    by_user = Window.partitionBy("user_id").orderBy(F.col("_score").desc(), F.col("track_id").asc())
    return fused.select(F.lit(name).alias("list"), "user_id", "track_id",
                        F.row_number().over(by_user).alias("rank"))


# --------------------------------------------------------------------------- metrics

def _ideal_dcg(n_relevant: Column, k: int) -> Column:
    """sum for r = 1 .. min(k, n_relevant) of 1 / log2(r + 1) (n_relevant >= 1)."""
    positions = F.sequence(F.lit(1), F.least(F.lit(k), n_relevant))
    return F.aggregate(positions, F.lit(0.0), lambda acc, r: acc + F.lit(1.0) / F.log2(r + F.lit(1)))


def per_user_metrics(lists: DataFrame, truth: DataFrame, recall_ks: list[int], ranking_k: int,
                     list_names: list[str] | None = None) -> DataFrame:
    """(list, user_id, n_relevant, recall_at_<K>..., ndcg_at_<k>, hit_rate_at_<k>, map_at_<k>):
    one row per list and ground-truth user; a user a list does not cover scores 0.

    ``lists``: (list, user_id, track_id, rank) with ranks 1.. unique per (list, user).
    ``list_names``: the lists to score (default: those in ``lists``); an empty one scores 0.
    """
    k = ranking_k
    max_k = max([*recall_ks, k])
    n_relevant = truth.groupBy("user_id").agg(F.count(F.lit(1)).alias("n_relevant"))
    hits = (lists.where(F.col("rank") <= max_k)
            .join(truth.select("user_id", "track_id"), on=["user_id", "track_id"], how="inner"))
    # Precision at each hit: the hit's position among hits over its rank.
    hit_order = Window.partitionBy("list", "user_id").orderBy(F.col("rank").asc(), F.col("track_id").asc())
    hits = hits.withColumn("_hit_index", F.row_number().over(hit_order))
    in_top_k = F.col("rank") <= k
    aggregated = (hits.groupBy("list", "user_id")
                  .agg(*[F.count(F.when(F.col("rank") <= kk, True)).alias(f"_hits_{kk}") for kk in recall_ks],
                       F.count(F.when(in_top_k, True)).alias("_hits_k"),
                       F.sum(F.when(in_top_k, F.lit(1.0) / F.log2(F.col("rank") + F.lit(1)))).alias("_dcg"),
                       F.sum(F.when(in_top_k, F.col("_hit_index") / F.col("rank"))).alias("_precision_sum")))
    if list_names is None:
        names = lists.select("list").distinct()
    else:
        names = lists.sparkSession.createDataFrame([(n,) for n in list_names], "list string")
    base = n_relevant.crossJoin(F.broadcast(names))
    joined = base.join(aggregated, on=["list", "user_id"], how="left").na.fill(0)
    n_rel = F.col("n_relevant")
    return joined.select(
        "list", "user_id", "n_relevant",
        *[(F.col(f"_hits_{kk}") / n_rel).alias(f"recall_at_{kk}") for kk in recall_ks],
        (F.col("_dcg") / _ideal_dcg(n_rel, k)).alias(f"ndcg_at_{k}"),
        (F.col("_hits_k") > 0).cast("double").alias(f"hit_rate_at_{k}"),
        (F.col("_precision_sum") / F.least(F.lit(k), n_rel)).alias(f"map_at_{k}"))


def item_popularity_percentile(train_interactions: DataFrame) -> DataFrame:
    """(track_id, popularity_pct): percent_rank of the item's number of train users (0..1)."""
    counts = train_interactions.groupBy("track_id").agg(F.countDistinct("user_id").alias("_users"))
    # percent_rank = items with fewer users / (items - 1), from the histogram of user counts
    # (a few hundred values) joined with itself: a window ordered over the whole catalogue
    # would move it into one partition.
    histogram = counts.groupBy("_users").agg(F.count(F.lit(1)).alias("_items"))
    below = (histogram.alias("h").join(F.broadcast(histogram.alias("l")), F.col("l._users") < F.col("h._users"), "left")
             .groupBy(F.col("h._users").alias("_users")).agg(F.coalesce(F.sum("l._items"), F.lit(0)).alias("_below")))
    total = histogram.agg(F.sum("_items").alias("_total"))
    pct = F.when(F.col("_total") > 1, F.col("_below") / (F.col("_total") - 1)).otherwise(F.lit(0.0))
    return (counts.join(F.broadcast(below), on="_users").crossJoin(F.broadcast(total))
            .select("track_id", pct.cast("double").alias("popularity_pct")))


def list_metrics(lists: DataFrame, truth: DataFrame, train_interactions: DataFrame,
                 cfg: EvaluationConfig, list_names: list[str] | None = None) -> pd.DataFrame:
    """One row per list: the per-user metrics averaged over ground-truth users, plus
    ``coverage_at_<k>``, ``popularity_pct_at_<k>`` (recommended) and ``popularity_pct_truth``.
    Only a few aggregate rows per list are collected."""
    k = cfg.ranking_k
    per_user = per_user_metrics(lists, truth, cfg.recall_ks, k, list_names)
    metric_columns = [c for c in per_user.columns if c not in ("list", "user_id", "n_relevant")]
    averages = (per_user.groupBy("list")
                .agg(F.countDistinct("user_id").alias("users"), *[F.avg(c).alias(c) for c in metric_columns])
                .toPandas())
    popularity = item_popularity_percentile(train_interactions)
    catalogue = train_interactions.select("track_id").distinct().count()
    top_k = lists.where(F.col("rank") <= k)
    shape = (top_k.join(popularity, on="track_id", how="left")
             .groupBy("list")
             .agg(F.countDistinct("track_id").alias("_items"),
                  F.avg(F.coalesce(F.col("popularity_pct"), F.lit(0.0))).alias(f"popularity_pct_at_{k}"))
             .toPandas())
    shape[f"coverage_at_{k}"] = shape.pop("_items") / max(catalogue, 1)
    truth_popularity = (truth.join(popularity, on="track_id", how="left")
                        .agg(F.avg(F.coalesce(F.col("popularity_pct"), F.lit(0.0)))).first()[0])
    result = averages.merge(shape, on="list", how="left").fillna(
        {f"coverage_at_{k}": 0.0, f"popularity_pct_at_{k}": float("nan")})
    result["popularity_pct_truth"] = truth_popularity
    return result.sort_values("list").reset_index(drop=True)


# --------------------------------------------------------------------------- runner

CandidateSource = Callable[[DataFrame], DataFrame]


def evaluate_candidates(spark: SparkSession, train_interactions: DataFrame, truths: dict[str, DataFrame],
                        sources: dict[str, CandidateSource], cfg: EvaluationConfig,
                        cutoff_ts: dt.datetime | None = None,
                        union_of: list[str] | None = None) -> pd.DataFrame:
    """Run each candidate source on the train interactions and score it and the union.

    ``spark``: the session the frames belong to (the runner is called like a step).
    ``sources``: name -> function(train interactions) -> candidates (user_id, track_id,
    source, source_score, source_rank[, source_max_ts]). ``truths``: name (e.g. "all",
    "discovery") -> (user_id, track_id). The union list fuses the sources named in
    ``union_of`` (default: all; leave baselines out of it). With ``cutoff_ts`` the train interactions and
    every source's candidates must pass ``assert_no_leakage`` before anything is scored.
    Returns a pandas frame: one row per (truth, list) with the metrics of ``list_metrics``
    and ``seconds`` (wall time to compute the source's candidates; the union's is the sum).
    """
    if cutoff_ts is not None:
        assert_no_leakage(train_interactions, cutoff_ts, cfg.leakage_ts_columns, "train interactions")
    cached: list[DataFrame] = []
    computed: list[DataFrame] = []
    seconds: dict[str, float] = {}
    for name, source in sources.items():
        start = time.perf_counter()
        candidates = source(train_interactions).withColumn("source", F.lit(name)).cache()
        candidates.count()
        cached.append(candidates)
        seconds[name] = time.perf_counter() - start
        if cutoff_ts is not None and any(c in candidates.columns for c in cfg.leakage_ts_columns):
            assert_no_leakage(candidates, cutoff_ts, cfg.leakage_ts_columns, f"candidates of '{name}'")
        computed.append(candidates.select("user_id", "track_id", "source", "source_score", "source_rank"))
    if not computed:
        raise SetlistError("evaluate_candidates: no candidate sources given")
    all_candidates = computed[0]
    for frame in computed[1:]:
        all_candidates = all_candidates.unionByName(frame)
    lists = candidate_lists(all_candidates)
    fused = list(sources) if union_of is None else union_of
    if len(fused) > 1:
        lists = lists.unionByName(union_list(all_candidates.where(F.col("source").isin(fused)), cfg.rrf_k))
        seconds[UNION] = sum(seconds[name] for name in fused)
    lists = lists.cache()
    tables = []
    for truth_name, truth in truths.items():
        if cfg.warm_users_only:
            truth = warm_only(truth, train_interactions)
        table = list_metrics(lists, truth, train_interactions, cfg, list(seconds))
        table.insert(0, "truth", truth_name)
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)
    result["seconds"] = result["list"].map(seconds)
    lists.unpersist()
    for frame in cached:
        frame.unpersist()
    return result

