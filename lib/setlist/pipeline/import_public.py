"""Import step: a public data set in a folder -> Setlist's tables in the configured lake.

- ``hetrec``: ``user_artists.dat`` -> the ``interactions`` partition ``importers.counts_ds``
  (pre-aggregated play counts), and ``user_taggedartists[-timestamps].dat`` when present ->
  the ``importers.tag_assignments_table`` table, ``user_friends.dat`` when present -> the
  ``tables.user_friends`` table (whole tables replaced). Every file is read and checked before
  the first write, so a bad file leaves the lake as it was.
- ``s3rec``: ``LastFM.txt`` -> ``listens`` (synthetic times, whole table replaced).
- ``movielens1m``: ``ratings.dat[.gz]`` (+ ``movies.dat`` for genres when present) -> ``listens``.
- ``movielens100k``: ``u.data`` -> ``listens``.

Point ``paths.lake`` at a lake of its own for each data set: listens are replaced whole.
"""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from setlist import lake
from setlist.config import SetlistConfig
from setlist.importers import ImportDataError, hetrec, movielens, s3rec
from setlist.importers.play_counts import interactions_from_play_counts

DATASETS = ["hetrec", "s3rec", "movielens1m", "movielens100k"]
HETREC_TAG_FILES = ["user_taggedartists-timestamps.dat", "user_taggedartists.dat"]


def _first_existing(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def run(spark: SparkSession, cfg: SetlistConfig, dataset: str, folder: str, run_id: str) -> None:
    if dataset not in DATASETS:
        raise ImportDataError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    folder = Path(folder)
    if not folder.is_dir():
        raise ImportDataError(f"--path {folder}: expected the folder of the {dataset} data set")
    imp = cfg.importers
    if dataset == "hetrec":
        counts = hetrec.read_play_counts(spark, str(folder / "user_artists.dat"))
        tags_file = _first_existing(folder, HETREC_TAG_FILES)
        tags = hetrec.read_tag_assignments(spark, str(tags_file)) if tags_file is not None else None
        friends_file = folder / "user_friends.dat"
        friends = hetrec.read_friends(spark, str(friends_file)) if friends_file.is_file() else None
        lake.write_partition(interactions_from_play_counts(counts, imp), cfg, cfg.tables.interactions,
                             imp.counts_ds, run_id)
        if tags is not None:
            lake.overwrite_table(tags, cfg, imp.tag_assignments_table)
        if friends is not None:
            lake.overwrite_table(friends, cfg, cfg.tables.user_friends)
        return
    if dataset == "s3rec":
        listens = s3rec.sequences_to_listens(s3rec.read_sequences(spark, str(folder / "LastFM.txt")), imp)
    elif dataset == "movielens1m":
        ratings_file = _first_existing(folder, ["ratings.dat.gz", "ratings.dat"])
        if ratings_file is None:
            raise ImportDataError(f"{folder}: expected ratings.dat or ratings.dat.gz (MovieLens-1M)")
        movies = folder / "movies.dat"
        genres = movielens.read_ml1m_genres(spark, str(movies)) if movies.is_file() else None
        listens = movielens.ratings_to_listens(movielens.read_ml1m_ratings(spark, str(ratings_file)), imp, genres)
    elif dataset == "movielens100k":
        listens = movielens.ratings_to_listens(movielens.read_ml100k_ratings(spark, str(folder / "u.data")), imp)
    else:
        raise ImportDataError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    lake.replace_table(listens, cfg, cfg.tables.listens, run_id)
