"""Publish scores equal the scores the training and benchmark code compute, and discovery
surfaces leave out what the user played."""
import lightgbm as lgb
import numpy as np
import pandas as pd
from chispa import assert_df_equality
from pyspark.sql import functions as F

from setlist import ranking, scoring
from setlist.publish import drop_played


def test_publish_scoring_equals_the_bench_scoring_for_the_same_model_and_rows(spark, tmp_path):
    """Both scorers, LightGBM's own and the lleaves-compiled one, give predict's scores."""
    rng = np.random.default_rng(11)
    features = [f"f{i}" for i in range(6)]
    n = 3000
    frame = pd.DataFrame(rng.normal(size=(n, len(features))), columns=features)
    frame.loc[rng.random(n) < 0.1, "f2"] = np.nan  # missing values take LightGBM's default branch
    # Integer and boolean features, as the feature builder writes them (an int with nulls too).
    frame["f4"] = np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, size=n).astype(float))
    frame["f5"] = rng.random(n) < 0.5
    frame["f3"] = rng.integers(0, 4, size=n)  # a categorical code, as surface_code is
    frame["label"] = (frame["f0"] + rng.normal(scale=0.5, size=n) > 0).astype(int) * 2 + 1
    frame["user_id"] = [f"u{i // 30}" for i in range(n)]
    frame["surface"] = "home"
    frame["track_id"] = [f"t{i % 30}" for i in range(n)]
    train = ranking.sort_groups(frame)
    booster = lgb.train({"objective": "lambdarank", "num_leaves": 15, "verbosity": -1, "seed": 1},
                        lgb.Dataset(train[features], label=train["label"], group=ranking.group_sizes(train),
                                    categorical_feature=["f3"]),
                        num_boost_round=25)
    framed = (spark.createDataFrame(frame[["user_id", "surface", "track_id", *features]]
                                    .assign(sources=[["als"]] * n))
              .withColumn("f4", F.when(~F.isnan("f4"), F.col("f4").cast("int"))))
    assert dict(framed.dtypes)["f4"] == "int" and dict(framed.dtypes)["f5"] == "boolean"
    expected = frame.assign(score=ranking.predict(booster, frame)).sort_values(["user_id", "track_id"])
    text = booster.model_to_string()
    for compiled in (None, scoring.compile_ranker(spark, text, str(tmp_path), None)):
        published = (scoring.score_candidates(framed, text, booster.feature_name(), compiled)
                     .toPandas().sort_values(["user_id", "track_id"]).reset_index(drop=True))
        assert len(published) == n
        np.testing.assert_allclose(published["score"].to_numpy(), expected["score"].to_numpy(),
                                   rtol=0, atol=1e-9)
    assert all(list(s) == ["als"] for s in published["sources"])


def test_discovery_surfaces_drop_played_tracks_and_others_keep_them(spark):
    scored = spark.createDataFrame(
        [("u1", "home", "t1", 0.9, ["als"]), ("u1", "home", "t2", 0.5, ["als"]),
         ("u1", "radio", "t1", 0.9, ["als"]), ("u2", "home", "t1", 0.4, ["ease"])],
        "user_id string, surface string, track_id string, score double, sources array<string>")
    interactions = spark.createDataFrame([("u1", "t1", 3.0), ("u1", "t1", 1.0)],
                                         "user_id string, track_id string, reward double")
    expected = spark.createDataFrame(
        [("u1", "home", "t2", 0.5, ["als"]), ("u1", "radio", "t1", 0.9, ["als"]),
         ("u2", "home", "t1", 0.4, ["ease"])], scored.schema)
    assert_df_equality(drop_played(scored, interactions, ["home"]).select(*scored.columns), expected,
                       ignore_row_order=True)
    assert_df_equality(drop_played(scored, interactions, []), scored, ignore_row_order=True)


def test_a_variant_on_the_champion_alias_gets_the_blend_until_a_champion_exists(make_cfg):
    import pytest

    from setlist.errors import SetlistError
    from setlist.pipeline.publish import served_version
    cfg = make_cfg()
    assert served_version(cfg, cfg.tracking.champion_alias) == cfg.publish.model_version
    with pytest.raises(SetlistError, match="'7'"):
        served_version(cfg, "7")


def test_auto_scorer_compiles_only_when_the_rows_repay_the_compile(spark, make_cfg):
    from setlist.pipeline.publish import compiles
    union = spark.range(100).selectExpr("cast(id as string) as user_id")
    surfaces = 3  # the default publish.surfaces
    assert compiles(make_cfg(f"publish.compile_min_rows={100 * surfaces}"), union)
    assert not compiles(make_cfg(f"publish.compile_min_rows={100 * surfaces + 1}"), union)
    assert compiles(make_cfg("publish.scorer=compiled", "publish.compile_min_rows=1000000000"), union)
    assert not compiles(make_cfg("publish.scorer=lightgbm", "publish.compile_min_rows=0"), union)
