"""HetRec 2011 Last.fm-2k (``hetrec2011-lastfm-2k``) -> play counts and dated tag assignments.

Mapping choices:

- ``user_artists.dat`` (tab-separated, header ``userID artistID weight``): ``weight`` is the
  number of times the user played the artist, aggregated over the whole collection period;
  there is no per-play time and no track. So the data is imported as **pre-aggregated play
  counts** (``setlist.importers.play_counts``) and **the artist is the item**:
  ``track_id = artist_id = artistID`` (as a string), ``plays = weight``,
  ``user_id = userID``. Candidate sources then recommend artists; "own artists" degenerates
  to the user's own items and co-listening uses co-occurrence in users' artist sets.
- Reward: ``importers.count_reward`` of the count (log1p by default), see play_counts.
- ``user_taggedartists.dat`` (``userID artistID tagID day month year``) or the
  ``user_taggedartists-timestamps.dat`` variant (``userID artistID tagID timestamp``, Unix
  milliseconds): one row per tag assignment with ``tagged_at`` = that day at 00:00 UTC (or
  the exact time). A date that does not exist on the calendar becomes null; the original
  data has a few implausible years (back to 1956) which are kept as they are.
- Ids stay the data set's own numbers as strings; nothing is renumbered.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.importers.common import check_parsed, existing_file, require_columns

USER_ARTISTS_COLUMNS = ["userID", "artistID", "weight"]
TAGS_BY_DAY_COLUMNS = ["userID", "artistID", "tagID", "day", "month", "year"]
TAGS_BY_TIME_COLUMNS = ["userID", "artistID", "tagID", "timestamp"]
FRIENDS_COLUMNS = ["userID", "friendID"]


def _read_tsv(spark: SparkSession, path: str) -> DataFrame:
    return (spark.read.option("sep", "\t").option("header", "true").option("inferSchema", "false")
            .csv(path))


def read_play_counts(spark: SparkSession, path: str) -> DataFrame:
    """``user_artists.dat`` -> play counts (user_id, track_id, artist_id, plays)."""
    source = existing_file(path, "HetRec user_artists.dat")
    raw = _read_tsv(spark, source)
    require_columns(raw, USER_ARTISTS_COLUMNS, source)
    parsed = raw.select(F.col("userID").try_cast("long").cast("string").alias("user_id"),
                        F.col("artistID").try_cast("long").cast("string").alias("artist_id"),
                        F.col("weight").try_cast("long").alias("plays"))
    parsed = check_parsed(parsed, ["user_id", "artist_id", "plays"], source)
    return parsed.select("user_id", F.col("artist_id").alias("track_id"), "artist_id", "plays")


def read_tag_assignments(spark: SparkSession, path: str) -> DataFrame:
    """``user_taggedartists[-timestamps].dat`` -> (user_id, artist_id, tag_id, tagged_at timestamp)."""
    source = existing_file(path, "HetRec user_taggedartists file")
    raw = _read_tsv(spark, source)
    if all(c in raw.columns for c in TAGS_BY_TIME_COLUMNS):
        tagged_at = F.timestamp_millis(F.col("timestamp").try_cast("long"))
    else:
        require_columns(raw, TAGS_BY_DAY_COLUMNS, source)
        day = F.format_string("%04d-%02d-%02d", F.col("year").try_cast("int"), F.col("month").try_cast("int"),
                              F.col("day").try_cast("int"))
        tagged_at = F.try_to_timestamp(day, F.lit("yyyy-MM-dd"))
    parsed = raw.select(F.col("userID").try_cast("long").cast("string").alias("user_id"),
                        F.col("artistID").try_cast("long").cast("string").alias("artist_id"),
                        F.col("tagID").try_cast("long").cast("string").alias("tag_id"),
                        tagged_at.alias("tagged_at"))
    return check_parsed(parsed, ["user_id", "artist_id", "tag_id"], source)


def read_friends(spark: SparkSession, path: str) -> DataFrame:
    """``user_friends.dat`` (``userID friendID``, directed pairs) -> (user_id, friend_id)."""
    source = existing_file(path, "HetRec user_friends.dat")
    raw = _read_tsv(spark, source)
    require_columns(raw, FRIENDS_COLUMNS, source)
    parsed = raw.select(F.col("userID").try_cast("long").cast("string").alias("user_id"),
                        F.col("friendID").try_cast("long").cast("string").alias("friend_id"))
    return check_parsed(parsed, ["user_id", "friend_id"], source)
