"""MovieLens ratings (1M ``ratings.dat[.gz]``, 100k ``u.data``) -> listens-like events with real times.

Formats: ML-1M ``UserID::MovieID::Rating::Timestamp``; ML-100k ``user item rating timestamp``
tab-separated; ratings 1-5, Unix seconds. Gzip is read transparently.

Mapping choices (a rating is read as how a play of the film ended):

- One event per rating: ``event_id`` = ``ml-<user>-<movie>`` (a user rates a film once),
  ``user_id`` = UserID, ``track_id`` = MovieID, ``ts`` = the rating's own timestamp (UTC),
  so a global time split is a real cut in time.
- rating >= ``importers.rating_completed_min`` (4): a **completed listen**,
  ``ms_played = track_duration_ms``, ``reason_end = trackdone``.
- rating <= ``importers.rating_skip_max`` (2): an **early skip**, ``ms_played =
  importers.skip_ms_played`` (10 s, before the 30 s threshold), ``skipped = true``,
  ``reason_end = fwdbtn``: it counts against the item in the reward.
- in between (3): a **listen past the threshold** that is not completed: ``ms_played =
  importers.partial_listen_ratio * track_duration_ms``, ``reason_end = endplay``.
- ``track_duration_ms`` = ``importers.track_duration_ms`` for every film (length unknown).
- ``artist_id``: films have no artist. With ML-1M ``movies.dat`` given, the film's **first
  listed genre** stands in (so "own artists" becomes "own genres"); without it, the
  MovieID (each film its own "artist").
- ``reason_start``/``surface``/``platform`` from ``importers``; not shuffled, not saved.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from setlist.config import ImportersConfig
from setlist.importers.common import as_listens, check_parsed, existing_file

RATINGS_COLUMNS = ["user_id", "movie_id", "rating", "ts"]


def _ratings(spark: SparkSession, path: str, separator: str, what: str) -> DataFrame:
    source = existing_file(path, what)
    fields = F.split(F.trim("value"), separator)
    raw = spark.read.text(source).where(F.trim("value") != "")
    parsed = raw.select(F.get(fields, 0).try_cast("long").cast("string").alias("user_id"),
                        F.get(fields, 1).try_cast("long").cast("string").alias("movie_id"),
                        F.get(fields, 2).try_cast("int").alias("rating"),
                        F.timestamp_seconds(F.get(fields, 3).try_cast("long")).alias("ts"))
    return check_parsed(parsed, RATINGS_COLUMNS, source)


def read_ml1m_ratings(spark: SparkSession, path: str) -> DataFrame:
    """ML-1M ``ratings.dat[.gz]`` -> (user_id, movie_id, rating, ts)."""
    return _ratings(spark, path, "::", "MovieLens-1M ratings.dat")


def read_ml100k_ratings(spark: SparkSession, path: str) -> DataFrame:
    """ML-100k ``u.data`` -> (user_id, movie_id, rating, ts)."""
    return _ratings(spark, path, r"\t", "MovieLens-100k u.data")


def read_ml1m_genres(spark: SparkSession, path: str) -> DataFrame:
    """ML-1M ``movies.dat`` (``MovieID::Title::Genres``) -> (movie_id, genre): the first genre."""
    source = existing_file(path, "MovieLens-1M movies.dat")
    fields = F.split("value", "::")
    parsed = (spark.read.text(source).where(F.trim("value") != "")
              .select(F.get(fields, 0).try_cast("long").cast("string").alias("movie_id"),
                      F.split(F.element_at(fields, -1), r"\|")[0].alias("genre")))
    return check_parsed(parsed, ["movie_id", "genre"], source)


def ratings_to_listens(ratings: DataFrame, cfg: ImportersConfig, genres: DataFrame | None = None) -> DataFrame:
    """(user_id, movie_id, rating, ts) [+ (movie_id, genre)] -> the ``listens`` layout."""
    duration = F.lit(cfg.track_duration_ms)
    completed = F.col("rating") >= cfg.rating_completed_min
    skipped = F.col("rating") <= cfg.rating_skip_max
    ms_played = (F.when(completed, duration)
                 .when(skipped, F.lit(cfg.skip_ms_played))
                 .otherwise((duration * F.lit(cfg.partial_listen_ratio)).cast("long")))
    reason_end = F.when(completed, F.lit("trackdone")).when(skipped, F.lit("fwdbtn")).otherwise(F.lit("endplay"))
    if genres is not None:
        ratings = ratings.join(F.broadcast(genres), on="movie_id", how="left")
        artist = F.coalesce(F.col("genre"), F.col("movie_id"))
    else:
        artist = F.col("movie_id")
    events = ratings.select(
        F.concat_ws("-", F.lit("ml"), "user_id", "movie_id").alias("event_id"),
        "user_id", F.col("movie_id").alias("track_id"), artist.alias("artist_id"), "ts",
        ms_played.alias("ms_played"), duration.alias("track_duration_ms"),
        F.lit(cfg.reason_start).alias("reason_start"), reason_end.alias("reason_end"),
        F.lit(cfg.surface).alias("surface"), F.lit(cfg.platform).alias("platform"),
        F.lit(False).alias("shuffle"), skipped.alias("skipped"), F.lit(False).alias("saved"))
    return as_listens(events)
