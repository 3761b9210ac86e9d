"""setlist run-public on a tiny HetRec-shaped folder: the split, leakage, every user served, bad input."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from setlist import lake
from setlist.importers import ImportDataError
from setlist.label_split import KNOWN, LABELLED
from setlist.pipeline import import_public, run_public, train_on_split

SMALL = ["candidates.als.rank=4", "candidates.als.max_iter=3", "candidates.als.num_blocks=1",
         "candidates.top_n_per_source=15", "ranking.num_boost_round=20", "ranking.early_stopping_rounds=5",
         "ranking.num_threads=1", "ranking.min_data_in_leaf=5", "ranking.tuning_grid={}", "publish.top_n=12",
         "ranking.split.valid_user_share=0.3"]


def hetrec_folder(root, n_users=24, n_artists=40, seed=3, extra_tag_rows=None, plays_scale=None):
    """user_artists, user_taggedartists and user_friends files in HetRec's layout; user 999 has one artist."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, n_users + 1):
        taste = rng.integers(0, 4)
        for artist in rng.choice(np.arange(n_artists) + 1, size=rng.integers(6, 14), replace=False):
            artist = int((artist + taste * 10) % n_artists) + 1
            rows.append((user, artist, int(rng.integers(1, 500))))
    plays = pd.DataFrame(rows, columns=["userID", "artistID", "weight"]).drop_duplicates(["userID", "artistID"])
    plays = pd.concat([plays, pd.DataFrame([(999, 1, 7)], columns=plays.columns)])
    if plays_scale is not None:
        plays = plays_scale(plays)
    root.mkdir(parents=True, exist_ok=True)
    plays.to_csv(root / "user_artists.dat", sep="\t", index=False)
    tags = plays.sample(frac=0.5, random_state=seed)[["userID", "artistID"]].assign(
        tagID=lambda d: d["artistID"] % 5 + 1, day=1, month=4, year=2009)
    if extra_tag_rows is not None:
        tags = pd.concat([tags, extra_tag_rows])
    tags.to_csv(root / "user_taggedartists.dat", sep="\t", index=False)
    friends = pd.DataFrame({"userID": range(1, n_users + 1), "friendID": [u % n_users + 1 for u in range(1, n_users + 1)]})
    friends.to_csv(root / "user_friends.dat", sep="\t", index=False)
    return root, plays


@pytest.fixture(scope="module")
def published(spark, tmp_path_factory):
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("public")
    folder, plays = hetrec_folder(root / "hetrec")
    paths = [f"paths.lake={root / 'lake'}", f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
             f"paths.mlflow_artifacts={root / 'art'}", f"paths.checkpoints={root / 'ck'}"]
    cfg = load_config(run_public.config_files("hetrec", None), TEST_OVERRIDES + SMALL + paths)
    location = run_public.run(spark, cfg, "hetrec", str(folder), "test")
    return cfg, plays, location


def test_every_user_gets_a_full_list_with_the_source_ids(spark, published):
    cfg, plays, location = published
    recs = spark.read.format("delta").load(location).toPandas()
    assert location == lake.table_path(cfg, cfg.tables.ranked_recs)
    assert set(recs["user_id"]) == {str(u) for u in plays["userID"]}
    assert (recs.groupby("user_id").size() == cfg.publish.top_n).all()
    assert set(recs["surface"]) == {"library"}
    assert recs["model_version"].str.isdigit().all()  # the trained champion, not the blend
    known = set(zip(plays["userID"].astype(str), plays["artistID"].astype(str)))
    assert not any(pair in known for pair in zip(recs["user_id"], recs["track_id"]))
    assert set(recs["track_id"]) <= {str(a) for a in plays["artistID"]}


def test_the_split_is_persisted_disjoint_and_graded(spark, published):
    cfg, plays, _ = published
    split = lake.read_table(spark, cfg, cfg.tables.ranker_split).toPandas()
    assert len(split) == len(plays) and not split.duplicated(["user_id", "track_id"]).any()
    labelled = split[split["part"] == LABELLED]
    assert set(split["part"]) == {KNOWN, LABELLED}
    assert labelled["label"].between(cfg.ranking.grade_listen, cfg.ranking.grade_saved).all()
    assert split[split["part"] == KNOWN]["label"].isna().all()
    assert "999" not in set(labelled["user_id"])  # below split.min_items: stays whole in known


def test_no_label_item_reaches_a_feature_or_candidate(spark, tmp_path, make_cfg):
    """Label items' plays scaled 1000x and tag assignments added on them: the split and every
    feature and candidate score of the training frame stay the same; only labels may move."""
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    frames = {}
    for variant in ("plain", "perturbed"):
        root = tmp_path / variant
        paths = [f"paths.lake={root / 'lake'}", f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
                 f"paths.mlflow_artifacts={root / 'art'}", f"paths.checkpoints={root / 'ck'}"]
        cfg = load_config(run_public.config_files("hetrec", None), TEST_OVERRIDES + SMALL + paths)
        folder, _ = hetrec_folder(root / "data")
        import_public.run(spark, cfg, "hetrec", str(folder), "t")
        info = train_on_split.write_split(spark, cfg, cfg.importers.counts_ds, "t")
        if variant == "perturbed":
            split = lake.read_table(spark, cfg, cfg.tables.ranker_split).toPandas()
            label_pairs = set(zip(split.loc[split["part"] == LABELLED, "user_id"].astype(int),
                                  split.loc[split["part"] == LABELLED, "track_id"].astype(int)))
            extra = pd.DataFrame([(u, a, 99, 1, 4, 2009) for u, a in label_pairs],
                                 columns=["userID", "artistID", "tagID", "day", "month", "year"])

            def scale(p):
                is_label = [(u, a) in label_pairs for u, a in zip(p["userID"], p["artistID"])]
                return p.assign(weight=np.where(is_label, p["weight"] * 1000, p["weight"]))
            folder, _ = hetrec_folder(root / "data2", extra_tag_rows=extra, plays_scale=scale)
            import_public.run(spark, cfg, "hetrec", str(folder), "t2")
            info = train_on_split.write_split(spark, cfg, cfg.importers.counts_ds, "t2")
        frames[variant] = (lake.read_table(spark, cfg, cfg.tables.ranker_split).drop("label").toPandas(),
                           train_on_split.labelled_frame(spark, cfg, cfg.importers.counts_ds, info["cutoff_ts"]))
    (split_a, frame_a), (split_b, frame_b) = frames["plain"], frames["perturbed"]
    keys = ["user_id", "surface", "track_id"]
    pd.testing.assert_frame_equal(split_a.sort_values(keys).reset_index(drop=True),
                                  split_b.sort_values(keys).reset_index(drop=True))
    features = [c for c in frame_a.columns if c not in ("label", "sources")]
    assert "tag_affinity" in features and "friend_share" in features and "ease_score" in features
    pd.testing.assert_frame_equal(frame_a[features].sort_values(keys).reset_index(drop=True),
                                  frame_b[features].sort_values(keys).reset_index(drop=True))
    assert (frame_a["label"] > 1).any()


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ImportDataError, match="hetrec.*movielens1m"):
        run_public.config_files("lastfm-1b", None)


@pytest.mark.parametrize("breakage, expected", [
    ("missing_file", "user_artists.dat"),
    ("missing_column", "weight"),
    ("wrong_delimiter", "userID"),
])
def test_bad_input_names_the_file_and_column_and_writes_nothing(spark, tmp_path, make_cfg, breakage, expected):
    folder, plays = hetrec_folder(tmp_path / "data")
    if breakage == "missing_file":
        (folder / "user_artists.dat").unlink()
    elif breakage == "missing_column":
        plays.drop(columns=["weight"]).to_csv(folder / "user_artists.dat", sep="\t", index=False)
    else:
        plays.to_csv(folder / "user_artists.dat", sep=",", index=False)
    cfg = make_cfg(*SMALL)
    with pytest.raises(ImportDataError, match=expected):
        run_public.run(spark, cfg, "hetrec", str(folder), "bad")
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").iterdir())


def test_setlist_command_rejects_an_unknown_dataset(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "setlist.cli", "run-public", "nope", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "hetrec" in proc.stderr and "movielens1m" in proc.stderr
