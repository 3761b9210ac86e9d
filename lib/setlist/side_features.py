"""Side-information features where the data has them (HetRec: artist tags and friends).

Both are computed from a *known* history (``user_id, track_id, artist_id`` rows): the caller
passes the known part of the ranker split when training and the whole history when publishing,
so a label item never shapes a feature.

- ``tag_affinity``: cosine between the candidate artist's tag profile and the user's (the sum
  of the profiles of the artists they played). An artist's profile is its ``top_tags`` most
  used tags, counted over the tag assignments given (the caller leaves out assignments on
  label pairs), L2-normalised.
- ``friend_plays`` / ``friend_share``: how many of the user's friends played the candidate in
  the known history, and that over the user's number of friends.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from setlist.config import FeaturesConfig

TAG_COLUMNS = ["tag_affinity"]
FRIEND_COLUMNS = ["friend_plays", "friend_share"]
TOP_TAGS = 20


def side_feature_columns(cfg: FeaturesConfig) -> list[str]:
    return [*(TAG_COLUMNS if cfg.tags else []), *(FRIEND_COLUMNS if cfg.friends else [])]


def artist_tag_profiles(tag_assignments: DataFrame, top_tags: int = TOP_TAGS) -> DataFrame:
    """(artist_id, tag_id, weight): each artist's most used tags, L2-normalised."""
    counts = tag_assignments.groupBy("artist_id", "tag_id").agg(F.count(F.lit(1)).cast("double").alias("_n"))
    by_artist = Window.partitionBy("artist_id").orderBy(F.desc("_n"), F.asc("tag_id"))
    top = counts.withColumn("_rank", F.row_number().over(by_artist)).where(F.col("_rank") <= top_tags)
    norm = F.sqrt(F.sum(F.col("_n") * F.col("_n")).over(Window.partitionBy("artist_id")))
    return top.select("artist_id", "tag_id", (F.col("_n") / norm).alias("weight"))


def tag_affinity(pairs: DataFrame, known: DataFrame, track_artists: DataFrame,
                 tag_assignments: DataFrame) -> DataFrame:
    """(user_id, track_id) pairs -> (user_id, track_id, tag_affinity); pairs without tags are absent."""
    profiles = artist_tag_profiles(tag_assignments).cache()
    user_profile = (known.select("user_id", "artist_id").distinct()
                    .join(profiles, on="artist_id", how="inner")
                    .groupBy("user_id", "tag_id").agg(F.sum("weight").alias("_u")))
    user_norm = user_profile.groupBy("user_id").agg(F.sqrt(F.sum(F.col("_u") * F.col("_u"))).alias("_norm"))
    return (pairs.join(track_artists, on="track_id", how="inner")
            .join(profiles, on="artist_id", how="inner")
            .join(user_profile, on=["user_id", "tag_id"], how="inner")
            .groupBy("user_id", "track_id").agg(F.sum(F.col("weight") * F.col("_u")).alias("_dot"))
            .join(user_norm, on="user_id", how="inner")
            .select("user_id", "track_id", (F.col("_dot") / F.col("_norm")).alias("tag_affinity")))


def friend_signal(pairs: DataFrame, known: DataFrame, friends: DataFrame) -> DataFrame:
    """(user_id, track_id) pairs -> (user_id, track_id, friend_plays, friend_share) for users with friends."""
    n_friends = friends.groupBy("user_id").agg(F.countDistinct("friend_id").cast("double").alias("_friends"))
    played = known.select(F.col("user_id").alias("friend_id"), "track_id").distinct()
    plays = (pairs.join(friends.select("user_id", "friend_id").distinct(), on="user_id", how="inner")
             .join(played, on=["friend_id", "track_id"], how="inner")
             .groupBy("user_id", "track_id").agg(F.count(F.lit(1)).cast("double").alias("friend_plays")))
    return (pairs.join(n_friends, on="user_id", how="inner")
            .join(plays, on=["user_id", "track_id"], how="left")
            .select("user_id", "track_id", F.coalesce("friend_plays", F.lit(0.0)).alias("friend_plays"),
                    (F.coalesce("friend_plays", F.lit(0.0)) / F.col("_friends")).alias("friend_share")))


def side_features(pairs: DataFrame, known: DataFrame, cfg: FeaturesConfig,
                  tag_assignments: DataFrame | None, friends: DataFrame | None) -> DataFrame | None:
    """(user_id, track_id, *side_feature_columns) for ``pairs``, or None when none is configured.

    ``known``: (user_id, track_id, artist_id) of the history the features may see.
    """
    columns = side_feature_columns(cfg)
    if not columns:
        return None
    pairs = pairs.select("user_id", "track_id").distinct()
    out = pairs
    if cfg.tags and tag_assignments is not None:
        track_artists = known.select("track_id", "artist_id").distinct()
        out = out.join(tag_affinity(pairs, known, track_artists, tag_assignments),
                       on=["user_id", "track_id"], how="left")
    if cfg.friends and friends is not None:
        out = out.join(friend_signal(pairs, known, friends), on=["user_id", "track_id"], how="left")
    for column in columns:
        if column not in out.columns:
            out = out.withColumn(column, F.lit(None).cast("double"))
    return out.select("user_id", "track_id", *columns)
