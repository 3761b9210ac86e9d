"""Own-artist candidates: a favourite artist's tracks, never the worn-out ones."""
from chispa import assert_df_equality

from setlist.candidates.own_artists import own_artists_candidates
from setlist.config import OwnArtistsConfig

SCHEMA = "user_id string, track_id string, artist_id string, plays long, skips long, reward double"
CFG = OwnArtistsConfig(top_artists=1, tracks_per_artist=10, worn_out_plays=20, worn_out_skips=2, top_n=5)


def test_favourite_artists_unplayed_track_is_recommended_and_worn_out_one_is_not(spark):
    rows = [("u", "fav1", "fav", 3, 0, 4.0),          # the user's favourite artist ...
            ("u", "worn", "fav", 40, 0, 1.0),          # ... a track played to death
            ("u", "skipped", "fav", 3, 2, -1.0),       # ... a track the user keeps skipping
            ("u", "other1", "other", 1, 0, 1.0),       # a lesser artist: not in the top 1
            ("v", "fav2", "fav", 5, 0, 3.0),           # fav's track the user never played
            ("v", "worn", "fav", 1, 0, 1.0), ("v", "skipped", "fav", 1, 0, 0.5),
            ("v", "other2", "other", 1, 0, 9.0)]
    interactions = spark.createDataFrame(rows, SCHEMA)
    actual = own_artists_candidates(interactions, CFG).where("user_id = 'u'")
    # fav popularity: fav1 4, fav2 3, worn 2, skipped 0.5 -> total 9.5; u's affinity to fav = 5.
    wanted = spark.createDataFrame([("u", "fav1", "own_artists", 5 * 4 / 9.5, 1),
                                    ("u", "fav2", "own_artists", 5 * 3 / 9.5, 2)],
                                   "user_id string, track_id string, source string, source_score double, "
                                   "source_rank int")
    assert_df_equality(actual, wanted, ignore_nullable=True, ignore_row_order=True)
