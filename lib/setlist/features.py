"""Ranking features of (user, surface, candidate track), all from events before a cutoff.

Every function that reads events takes the ``cutoff`` (a naive UTC datetime) and keeps
only events with ``ts < cutoff`` (and within ``features.history_days`` before it) itself,
so a feature cannot see what happened after the candidates were made. Output groups:

- user (``user_``): plays per window, skip / save / listen rates, distinct artists and
  artists per play, share of plays on each surface, days since the first listen seen;
- track (``track_``): plays per window, trend (short- over long-window daily plays),
  completion / skip / save rates, distinct listeners, days since first seen; the
  artist's plays (``artist_plays``);
- user-track (``ut_``): earlier plays, listens, skips, reward, days since the last play;
  user-artist (``ua_``): the artist's share of the user's plays, the user's skip rate on it;
- candidate: each source's ``{s}_flag`` (0/1), ``{s}_score``, ``{s}_rank``, ``{s}_norm`` (the
  score over the user's best score of that source: scores of one source are comparable within
  a user, not across users or history sizes) and ``n_sources``;
- side information (``setlist.side_features``, when ``features.tags`` / ``features.friends``);
- session context (``ctx_``), from the user's last play before the cutoff: whether the candidate
  is by that play's artist (``ctx_same_artist``), the directed transition score from that track
  to the candidate (``ctx_next_score``, ``setlist.candidates.continuation``) and the hour of day
  the play stopped (``ctx_hour``);
- surface history (``us_``): the candidate artist's share of the user's plays on the row's surface
  and the user's plays of the track there;
- surface: ``surface_code`` = the surface's index in ``events.surfaces``.

Counts of nothing are 0; rates and ages of nothing are null (LightGBM's missing value).
Events may carry a ``weight`` column (pre-aggregated play counts); otherwise each counts 1.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.continuation import next_tracks
from setlist.config import ContinuationConfig, FeaturesConfig, RewardsConfig, SetlistConfig
from setlist import rewards as reward
from setlist.interactions import SECONDS_PER_DAY
from setlist.side_features import side_feature_columns

SURFACE_CODE = "surface_code"
KEYS = ["user_id", "surface", "track_id"]


def _ratio(numerator: Column, denominator: Column) -> Column:
    return F.when(denominator > 0, numerator / denominator)


def _weighted(condition: Column) -> Column:
    return F.sum(F.when(condition, F.col("weight")).otherwise(F.lit(0.0)))


def events_before(listens: DataFrame, cutoff: dt.datetime, cfg: FeaturesConfig,
                  rewards: RewardsConfig) -> DataFrame:
    """Listens in [cutoff - history_days, cutoff) -> (user_id, track_id, artist_id, surface,
    ts, weight, age_days, is_listen, is_completed, is_skip, is_saved, credit)."""
    start = cutoff - dt.timedelta(days=cfg.history_days)
    ts = F.col("ts")
    weight = F.col("weight") if "weight" in listens.columns else F.lit(1.0)
    age_days = (F.lit(cutoff).cast("double") - ts.cast("double")) / SECONDS_PER_DAY
    listen = reward.is_listen(rewards)
    completed = listen & reward.is_completed(rewards)
    return (listens.where((ts < F.lit(cutoff)) & (ts >= F.lit(start)))
            .select("user_id", "track_id", "artist_id", "surface", "ts",
                    weight.cast("double").alias("weight"), age_days.alias("age_days"),
                    listen.alias("is_listen"), completed.alias("is_completed"),
                    reward.is_early_skip(rewards).alias("is_skip"), reward.is_saved().alias("is_saved"),
                    reward.event_reward(rewards).alias("credit")))


def user_features(events: DataFrame, cfg: FeaturesConfig, surfaces: list[str]) -> DataFrame:
    """``events_before`` rows -> one row per user (``user_feature_columns``)."""
    plays = F.sum("weight")
    return (events.groupBy("user_id")
            .agg(*[_weighted(F.col("age_days") < w).alias(f"user_plays_{w}d") for w in cfg.windows_days],
                 _ratio(_weighted(F.col("is_skip")), plays).alias("user_skip_rate"),
                 _ratio(_weighted(F.col("is_saved")), plays).alias("user_save_rate"),
                 _ratio(_weighted(F.col("is_listen")), plays).alias("user_listen_rate"),
                 F.countDistinct("artist_id").cast("double").alias("user_artists"),
                 _ratio(F.countDistinct("artist_id").cast("double"), plays).alias("user_artists_per_play"),
                 *[_ratio(_weighted(F.col("surface") == s), plays).alias(f"user_share_{s}") for s in surfaces],
                 F.max("age_days").alias("user_days_since_first"))
            .select("user_id", *user_feature_columns(cfg, surfaces)))


def user_feature_columns(cfg: FeaturesConfig, surfaces: list[str]) -> list[str]:
    return [*[f"user_plays_{w}d" for w in cfg.windows_days], "user_skip_rate", "user_save_rate",
            "user_listen_rate", "user_artists", "user_artists_per_play",
            *[f"user_share_{s}" for s in surfaces], "user_days_since_first"]


def track_artists(events: DataFrame) -> DataFrame:
    """(track_id, artist_id): the artist of each track's latest event (ties by artist id)."""
    return (events.groupBy("track_id")
            .agg(F.max_by("artist_id", F.struct("ts", "artist_id")).alias("artist_id"))
            .select("track_id", "artist_id"))


def track_features(events: DataFrame, cfg: FeaturesConfig) -> DataFrame:
    """``events_before`` rows -> one row per track (``track_feature_columns``), artist included."""
    plays = F.sum("weight")
    short = _weighted(F.col("age_days") < cfg.trend_short_days) / F.lit(float(cfg.trend_short_days))
    long = _weighted(F.col("age_days") < cfg.trend_long_days) / F.lit(float(cfg.trend_long_days))
    tracks = (events.groupBy("track_id")
              .agg(*[_weighted(F.col("age_days") < w).alias(f"track_plays_{w}d") for w in cfg.windows_days],
                   _ratio(short, long).alias("track_trend"),
                   _ratio(_weighted(F.col("is_completed")), plays).alias("track_completion_rate"),
                   _ratio(_weighted(F.col("is_skip")), plays).alias("track_skip_rate"),
                   _ratio(_weighted(F.col("is_saved")), plays).alias("track_save_rate"),
                   F.countDistinct("user_id").cast("double").alias("track_users"),
                   F.max("age_days").alias("track_days_since_first")))
    artists = (events.groupBy("artist_id")
               .agg(F.sum("weight").alias("artist_plays"), F.countDistinct("user_id").cast("double")
                    .alias("artist_users")))
    return (tracks.join(track_artists(events), on="track_id", how="left")
            .join(artists, on="artist_id", how="left")
            .select("track_id", "artist_id", *track_feature_columns(cfg)))


def track_feature_columns(cfg: FeaturesConfig) -> list[str]:
    return [*[f"track_plays_{w}d" for w in cfg.windows_days], "track_trend", "track_completion_rate",
            "track_skip_rate", "track_save_rate", "track_users", "track_days_since_first",
            "artist_plays", "artist_users"]


def user_track_features(events: DataFrame) -> DataFrame:
    """``events_before`` rows -> (user_id, track_id, ut_plays, ut_listens, ut_skips, ut_saves,
    ut_reward, ut_days_since_last)."""
    return (events.groupBy("user_id", "track_id")
            .agg(F.sum("weight").alias("ut_plays"), _weighted(F.col("is_listen")).alias("ut_listens"),
                 _weighted(F.col("is_skip")).alias("ut_skips"), _weighted(F.col("is_saved")).alias("ut_saves"),
                 F.sum(F.col("credit") * F.col("weight")).alias("ut_reward"),
                 F.min("age_days").alias("ut_days_since_last"))
            .select("user_id", "track_id", *USER_TRACK_COLUMNS))


CONTEXT_COLUMNS = ["ctx_same_artist", "ctx_next_score", "ctx_hour"]
# The user's history on the surface being scored: the candidate artist's share of the user's plays
# there and the user's plays of the track there (a surface's own taste: what one plays on radio
# is not what one plays from the library). A list shared by every surface cannot use them.
SURFACE_HISTORY_COLUMNS = ["us_artist_share", "us_track_plays"]
_BY_SURFACE = {"us_artist_share": "_artist_share_by_surface", "us_track_plays": "_track_plays_by_surface"}


def surface_history(events: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``events_before`` rows -> (user_id, artist_id, surface -> artist share) and
    (user_id, track_id, surface -> plays), maps that ``with_context`` reads at the row's surface."""
    per_surface = events.groupBy("user_id", "surface").agg(F.sum("weight").alias("_surface_plays"))
    artists = (events.groupBy("user_id", "artist_id", "surface").agg(F.sum("weight").alias("_plays"))
               .join(per_surface, on=["user_id", "surface"], how="inner")
               .groupBy("user_id", "artist_id")
               .agg(F.map_from_entries(F.collect_list(F.struct("surface", F.col("_plays") / F.col("_surface_plays"))))
                    .alias(_BY_SURFACE["us_artist_share"])))
    tracks = (events.groupBy("user_id", "track_id", "surface").agg(F.sum("weight").alias("_plays"))
              .groupBy("user_id", "track_id")
              .agg(F.map_from_entries(F.collect_list(F.struct("surface", "_plays")))
                   .alias(_BY_SURFACE["us_track_plays"])))
    return artists, tracks


def session_context(events: DataFrame, listens: DataFrame, continuation: ContinuationConfig) -> DataFrame:
    """``events_before`` rows (and the raw ``listens`` already cut at the cutoff, for the
    transitions) -> (user_id, _last_track, _last_artist, ctx_hour) and the transition scores
    (_last_track, track_id, ctx_next_score) to join per candidate."""
    last = (events.groupBy("user_id")
            .agg(F.max_by(F.struct("track_id", "artist_id", "ts"), "ts").alias("_last"))
            .select("user_id", F.col("_last.track_id").alias("_last_track"),
                    F.col("_last.artist_id").alias("_last_artist"),
                    F.hour(F.col("_last.ts")).cast("double").alias("ctx_hour")))
    transitions = (next_tracks(listens, continuation)
                   .select(F.col("seed_track_id").alias("_last_track"), "track_id",
                           F.col("score").alias("ctx_next_score")))
    return last, transitions


USER_TRACK_COLUMNS = ["ut_plays", "ut_listens", "ut_skips", "ut_saves", "ut_reward", "ut_days_since_last"]
USER_ARTIST_COLUMNS = ["ua_play_share", "ua_skip_rate"]


def user_artist_features(events: DataFrame) -> DataFrame:
    """``events_before`` rows -> (user_id, artist_id, ua_play_share, ua_skip_rate): the artist's
    share of the user's plays and the user's skip rate on that artist."""
    by_artist = (events.groupBy("user_id", "artist_id")
                 .agg(F.sum("weight").alias("_plays"), _weighted(F.col("is_skip")).alias("_skips")))
    totals = events.groupBy("user_id").agg(F.sum("weight").alias("_user_plays"))
    return (by_artist.join(totals, on="user_id", how="inner")
            .select("user_id", "artist_id", _ratio(F.col("_plays"), F.col("_user_plays")).alias("ua_play_share"),
                    _ratio(F.col("_skips"), F.col("_plays")).alias("ua_skip_rate")))


SOURCE_PARTS = ("flag", "score", "rank", "norm")


def candidate_feature_columns(sources: list[str]) -> list[str]:
    return [*[f"{s}_{part}" for s in sources for part in SOURCE_PARTS], "n_sources"]


def feature_columns(cfg: SetlistConfig) -> list[str]:
    """The model's input columns, in order (``build_features`` output minus keys and ``sources``)."""
    surfaces = cfg.events.surfaces
    return [*user_feature_columns(cfg.features, surfaces), *track_feature_columns(cfg.features),
            *USER_TRACK_COLUMNS, *USER_ARTIST_COLUMNS, *candidate_feature_columns(cfg.candidates.sources),
            *side_feature_columns(cfg.features), *CONTEXT_COLUMNS, *SURFACE_HISTORY_COLUMNS, SURFACE_CODE]


COUNT_PREFIXES = ("ctx_next_score", "user_plays_", "track_plays_", "ut_plays", "ut_listens", "ut_skips", "ut_saves", "ut_reward",
                  "artist_plays", "artist_users", "track_users", "user_artists", "ua_play_share", "friend_plays",
                  "friend_share")


def _source_column(source: str, part: str) -> Column:
    if part == "flag":
        return F.col(f"{source}_flag").cast("int").alias(f"{source}_flag")
    if part == "norm":
        best = F.max(f"{source}_score").over(Window.partitionBy("user_id"))
        return F.when(best > 0, F.col(f"{source}_score") / best).cast("double").alias(f"{source}_norm")
    return F.col(f"{source}_{part}").cast("double").alias(f"{source}_{part}")


def pair_features(candidates: DataFrame, listens: DataFrame, cutoff: dt.datetime,
                  cfg: SetlistConfig, side: DataFrame | None = None) -> DataFrame:
    """The candidate union (one row per user, track) -> (user_id, track_id, sources, features
    without the context), from ``listens`` before ``cutoff`` only. ``side``: the
    ``setlist.side_features`` frame (from the same known history) when they are configured."""
    events = events_before(listens, cutoff, cfg.features, cfg.rewards)
    surfaces = cfg.events.surfaces
    sources = cfg.candidates.sources
    source_columns = [_source_column(s, part) for s in sources for part in SOURCE_PARTS]
    joined = (candidates.select("user_id", "track_id", "sources", *source_columns,
                                F.col("n_sources").cast("double").alias("n_sources"))
              .join(user_features(events, cfg.features, surfaces), on="user_id", how="left")
              .join(track_features(events, cfg.features), on="track_id", how="left")
              .join(user_track_features(events), on=["user_id", "track_id"], how="left")
              .join(user_artist_features(events), on=["user_id", "artist_id"], how="left"))
    history = listens.where((F.col("ts") < F.lit(cutoff))
                            & (F.col("ts") >= F.lit(cutoff - dt.timedelta(days=cfg.features.history_days))))
    last, transitions = session_context(events, history, cfg.candidates.continuation)
    joined = joined.join(last, on="user_id", how="left")
    if "weight" not in listens.columns:  # pre-aggregated play counts have no order to continue
        joined = joined.join(transitions, on=["_last_track", "track_id"], how="left")
    else:
        joined = joined.withColumn("ctx_next_score", F.lit(None).cast("double"))
    joined = joined.withColumn("ctx_same_artist", (F.col("artist_id") == F.col("_last_artist")).cast("double"))
    by_artist, by_track = surface_history(events)
    joined = (joined.join(by_artist, on=["user_id", "artist_id"], how="left")
              .join(by_track, on=["user_id", "track_id"], how="left"))
    side_columns = side_feature_columns(cfg.features)
    if side_columns:
        if side is None:
            side = candidates.select("user_id", "track_id",
                                     *[F.lit(None).cast("double").alias(c) for c in side_columns])
        joined = joined.join(side, on=["user_id", "track_id"], how="left")
    columns = [c for c in feature_columns(cfg) if c not in (SURFACE_CODE, *SURFACE_HISTORY_COLUMNS)]
    filled = [F.coalesce(F.col(c).cast("double"), F.lit(0.0)).alias(c) if c.startswith(COUNT_PREFIXES)
              else F.col(c).cast("double").alias(c) for c in columns]
    return joined.select("user_id", "track_id", "sources", *filled, *_BY_SURFACE.values())


def surface_code(surfaces: list[str]) -> Column:
    """The surface's 0-based index in ``surfaces`` (-1 if absent)."""
    return (F.array_position(F.array(*[F.lit(s) for s in surfaces]), F.col("surface")) - 1).cast("double")


def with_context(pairs: DataFrame, contexts: DataFrame, surfaces: list[str]) -> DataFrame:
    """``pair_features`` x (user_id, surface) contexts -> one row per (user, surface, track) with
    ``surface``, the user's history on that surface (``SURFACE_HISTORY_COLUMNS``, 0 where none)
    and ``surface_code``; users without a context are dropped."""
    history = [F.coalesce(F.col(m)[F.col("surface")].cast("double"), F.lit(0.0)).alias(c)
               if m in pairs.columns else F.lit(0.0).alias(c) for c, m in _BY_SURFACE.items()]
    return (pairs.join(contexts.select("user_id", "surface").distinct(), on="user_id", how="inner")
            .withColumn(SURFACE_CODE, surface_code(surfaces))
            .select("user_id", "surface", "track_id",
                    *[c for c in pairs.columns if c not in ("user_id", "track_id", *_BY_SURFACE.values())],
                    *history, SURFACE_CODE))


def every_surface(candidates: DataFrame, surfaces: list[str]) -> DataFrame:
    """(user_id, surface): every candidate user on each of ``surfaces`` (the publishing contexts)."""
    return (candidates.select("user_id").distinct()
            .select("user_id", F.explode(F.array(*[F.lit(s) for s in surfaces])).alias("surface")))
