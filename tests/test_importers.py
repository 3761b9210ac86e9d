"""Importers on tiny files in the public data sets' formats, written by each test."""
import datetime as dt
import gzip
import math

import pytest
from chispa import assert_df_equality

from setlist import lake
from setlist.config import ImportersConfig
from setlist.events import LISTENS_SCHEMA
from setlist.importers import ImportDataError
from setlist.importers.hetrec import read_play_counts, read_tag_assignments
from setlist.importers.movielens import (
    read_ml1m_genres, read_ml1m_ratings, read_ml100k_ratings, ratings_to_listens)
from setlist.importers.play_counts import INTERACTIONS_COLUMNS, interactions_from_play_counts
from setlist.importers.s3rec import read_sequences, sequences_to_listens
from setlist.pipeline import import_public

CFG = ImportersConfig()


def write(path, text, compress=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def layout(schema):
    return [(f.name, f.dataType) for f in schema.fields]


USER_ARTISTS = "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t1\n7\t51\t0\n"
TAGS = "userID\tartistID\ttagID\tday\tmonth\tyear\n2\t52\t13\t1\t4\t2009\n2\t51\t15\t31\t2\t2009\n"
SEQUENCES = "1 10 11 12\n2 11 13\n"
ML1M = "1::1193::5::978300760\n1::661::3::978302109\n2::914::1::978301968\n"
MOVIES = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's\n"
ML100K = "196\t242\t3\t881250949\n186\t302\t4\t891717742\n"


def test_hetrec_counts_become_interactions_with_the_artist_as_item(spark, tmp_path):
    counts = read_play_counts(spark, str(write(tmp_path / "user_artists.dat", USER_ARTISTS)))
    got = interactions_from_play_counts(counts, CFG, "2011-05-31")
    assert got.columns == INTERACTIONS_COLUMNS
    rows = {(r["user_id"], r["track_id"]): r for r in got.collect()}
    assert set(rows) == {("2", "51"), ("2", "52")}  # a count of 0 is no evidence
    heavy = rows[("2", "51")]
    assert (heavy["artist_id"], heavy["plays"], heavy["listens"], heavy["skips"]) == ("51", 13883, 13883, 0)
    assert heavy["reward"] == pytest.approx(math.log1p(13883))
    assert heavy["last_played_ts"] is None and heavy["ds"] == "2011-05-31"


def test_play_count_reward_shapes_follow_config(spark):
    counts = spark.createDataFrame([("u", "t", "a", 3), ("u", "t", "a", 4)],
                                   "user_id string, track_id string, artist_id string, plays long")
    linear = interactions_from_play_counts(counts, ImportersConfig(count_reward="linear", count_reward_scale=2.0))
    binary = interactions_from_play_counts(counts, ImportersConfig(count_reward="binary"))
    assert linear.first()["reward"] == 14.0 and linear.first()["plays"] == 7
    assert binary.first()["reward"] == 1.0


def test_hetrec_tag_dates_become_timestamps_and_impossible_dates_null(spark, tmp_path):
    tags = read_tag_assignments(spark, str(write(tmp_path / "user_taggedartists.dat", TAGS)))
    got = {r["tag_id"]: r["tagged_at"] for r in tags.collect()}
    assert got == {"13": dt.datetime(2009, 4, 1), "15": None}


def test_hetrec_file_with_other_columns_is_refused(spark, tmp_path):
    path = write(tmp_path / "user_artists.dat", "user\tartist\tcount\n1\t2\t3\n")
    with pytest.raises(ImportDataError, match="missing column"):
        read_play_counts(spark, str(path))
    with pytest.raises(ImportDataError, match="expected a file"):
        read_play_counts(spark, str(tmp_path / "absent.dat"))


def test_s3rec_sequences_get_increasing_synthetic_times(spark, tmp_path):
    listens = sequences_to_listens(read_sequences(spark, str(write(tmp_path / "LastFM.txt", SEQUENCES))), CFG)
    assert layout(listens.schema) == layout(LISTENS_SCHEMA)
    rows = sorted(listens.collect(), key=lambda r: (r["user_id"], r["ts"]))
    start = dt.datetime.fromisoformat(CFG.synthetic_start)
    step = dt.timedelta(seconds=CFG.synthetic_step_seconds)
    assert [(r["user_id"], r["track_id"], r["ts"]) for r in rows] == [
        ("1", "10", start), ("1", "11", start + step), ("1", "12", start + 2 * step),
        ("2", "11", start), ("2", "13", start + step)]
    first = rows[0]
    assert (first["event_id"], first["artist_id"], first["ms_played"], first["reason_end"], first["ds"]) == (
        "s3rec-1-0", "10", CFG.track_duration_ms, "trackdone", "2011-01-01")


def test_movielens_ratings_map_to_completed_listens_partial_listens_and_skips(spark, tmp_path):
    ratings = read_ml1m_ratings(spark, str(write(tmp_path / "ratings.dat.gz", ML1M, compress=True)))
    genres = read_ml1m_genres(spark, str(write(tmp_path / "movies.dat", MOVIES)))
    listens = ratings_to_listens(ratings, CFG, genres)
    assert layout(listens.schema) == layout(LISTENS_SCHEMA)
    actual = listens.select("event_id", "track_id", "artist_id", "ts", "ms_played", "reason_end", "skipped")
    duration = CFG.track_duration_ms
    wanted = listens.sparkSession.createDataFrame([
        ("ml-1-1193", "1193", "Drama", dt.datetime(2000, 12, 31, 22, 12, 40), duration, "trackdone", False),
        ("ml-1-661", "661", "Animation", dt.datetime(2000, 12, 31, 22, 35, 9), duration // 2, "endplay", False),
        ("ml-2-914", "914", "914", dt.datetime(2000, 12, 31, 22, 32, 48), CFG.skip_ms_played, "fwdbtn", True)],
        actual.schema)
    assert_df_equality(actual, wanted, ignore_row_order=True, ignore_nullable=True)


def test_movielens_100k_reads_tab_separated_ratings(spark, tmp_path):
    ratings = read_ml100k_ratings(spark, str(write(tmp_path / "u.data", ML100K)))
    got = {(r["user_id"], r["movie_id"]): (r["rating"], r["ts"]) for r in ratings.collect()}
    assert got == {("196", "242"): (3, dt.datetime(1997, 12, 4, 15, 55, 49)),
                   ("186", "302"): (4, dt.datetime(1998, 4, 4, 19, 22, 22))}


def test_a_malformed_line_is_refused_with_its_content(spark, tmp_path):
    path = write(tmp_path / "u.data", ML100K + "oops\tline\n")
    with pytest.raises(ImportDataError, match="does not match"):
        read_ml100k_ratings(spark, str(path))


def test_import_job_writes_hetrec_interactions_and_tags_and_reruns_in_place(spark, tmp_path, make_cfg):
    cfg = make_cfg()
    folder = tmp_path / "hetrec"
    write(folder / "user_artists.dat", USER_ARTISTS)
    write(folder / "user_taggedartists.dat", TAGS)
    import_public.run(spark, cfg, "hetrec", str(folder), "r1")
    import_public.run(spark, cfg, "hetrec", str(folder), "r2")
    interactions = lake.read_table(spark, cfg, cfg.tables.interactions)
    assert interactions.columns == INTERACTIONS_COLUMNS and interactions.count() == 2
    assert lake.read_table(spark, cfg, cfg.importers.tag_assignments_table).count() == 2
    assert lake.history(spark, cfg, cfg.tables.interactions).count() == 2


def test_import_job_writes_movielens_listens_by_day(spark, tmp_path, make_cfg):
    cfg = make_cfg()
    folder = tmp_path / "ml1m"
    write(folder / "ratings.dat.gz", ML1M, compress=True)
    import_public.run(spark, cfg, "movielens1m", str(folder), "r1")
    listens = lake.read_table(spark, cfg, cfg.tables.listens)
    assert listens.count() == 3 and set(listens.columns) == set(LISTENS_SCHEMA.fieldNames())
    assert {r["ds"] for r in listens.select("ds").distinct().collect()} == {"2000-12-31"}
    with pytest.raises(ImportDataError, match="expected ratings.dat"):
        import_public.run(spark, cfg, "movielens1m", str(tmp_path), "r2")
