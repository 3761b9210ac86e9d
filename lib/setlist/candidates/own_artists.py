"""Own-artist candidates: more by the artists a user rewards most, minus worn-out tracks.

Artist affinity = the user's summed positive reward over the artist's tracks; the
user's ``top_artists`` artists are kept. A candidate track's score is
affinity x its share of its artist's popularity (summed positive reward over all
users), from the artist's ``tracks_per_artist`` most popular tracks. A track the
user has worn out (more than ``worn_out_plays`` plays in the interactions'
lookback, or ``worn_out_skips`` skips or more) is never a candidate.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from setlist.candidates.common import CANDIDATE_COLUMNS, played_pairs, top_n_per_user
from setlist.config import OwnArtistsConfig

SOURCE = "own_artists"


def positive_reward() -> Column:
    return F.greatest(F.col("reward"), F.lit(0.0))


def is_worn_out(cfg: OwnArtistsConfig) -> Column:
    played_too_often = F.col("plays") > cfg.worn_out_plays
    skipped_too_often = F.col("skips") >= cfg.worn_out_skips
    return played_too_often | skipped_too_often


def artist_affinity(interactions: DataFrame, cfg: OwnArtistsConfig) -> DataFrame:
    """(user_id, artist_id, affinity): each user's ``top_artists`` by summed positive reward."""
    by_user = Window.partitionBy("user_id").orderBy(F.desc("affinity"), F.asc("artist_id"))
    return (interactions.groupBy("user_id", "artist_id").agg(F.sum(positive_reward()).alias("affinity"))
            .where(F.col("affinity") > 0)
            .withColumn("_rank", F.row_number().over(by_user))
            .where(F.col("_rank") <= cfg.top_artists)
            .select("user_id", "artist_id", "affinity"))


def artist_top_tracks(interactions: DataFrame, cfg: OwnArtistsConfig) -> DataFrame:
    """(artist_id, track_id, share): an artist's most popular tracks and their share of it."""
    track_pop = (interactions.groupBy("artist_id", "track_id")
                 .agg(F.sum(positive_reward()).alias("popularity"))
                 .where(F.col("popularity") > 0))
    by_artist = Window.partitionBy("artist_id")
    by_artist_ranked = by_artist.orderBy(F.desc("popularity"), F.asc("track_id"))
    return (track_pop.withColumn("share", F.col("popularity") / F.sum("popularity").over(by_artist))
            .withColumn("_rank", F.row_number().over(by_artist_ranked))
            .where(F.col("_rank") <= cfg.tracks_per_artist)
            .select("artist_id", "track_id", "share"))


def own_artists_candidates(interactions: DataFrame, cfg: OwnArtistsConfig) -> DataFrame:
    """Top ``cfg.top_n`` tracks per user from their favourite artists. Output: ``CANDIDATE_COLUMNS``."""
    scored = (artist_affinity(interactions, cfg)
              .join(artist_top_tracks(interactions, cfg), on="artist_id", how="inner")
              .select("user_id", "track_id", (F.col("affinity") * F.col("share")).alias("score")))
    worn_out = interactions.where(is_worn_out(cfg)).select("user_id", "track_id")
    scored = scored.join(worn_out, on=["user_id", "track_id"], how="left_anti")
    if cfg.exclude_played:
        scored = scored.join(played_pairs(interactions), on=["user_id", "track_id"], how="left_anti")
    return top_n_per_user(scored, SOURCE, cfg.top_n).select(*CANDIDATE_COLUMNS)
