"""The candidates step: every source into the union partition, logged to MLflow."""
import datetime as dt

import mlflow
from pyspark.sql import functions as F

from setlist import lake
from setlist.candidates.union import union_columns
from setlist.interactions import build_interactions
from setlist.pipeline import candidates, publish
from setlist.publish import RANKED_RECS_COLUMNS

DS = "2026-11-03"
SMALL = ["candidates.top_n_per_source=5", "candidates.als.rank=4", "candidates.als.max_iter=3",
         "candidates.als.num_blocks=1", "candidates.colisten.min_pair_count=1", "publish.top_n=8",
         # The sequential source needs a trained champion: tests/test_sequential_step.py.
         "candidates.sources=[als,popularity,colisten,own_artists,ease,continuation]"]
LISTEN_SCHEMA = ("event_id string, user_id string, track_id string, artist_id string, ts timestamp, "
                 "ms_played long, track_duration_ms long, reason_start string, reason_end string, "
                 "surface string, platform string, shuffle boolean, skipped boolean, saved boolean, ds string")


def write_listens(spark, cfg):
    start = dt.datetime(2026, 11, 3, 8)
    rows = []
    for u in range(4):
        for i, t in enumerate(["a", "b", "c", "d"][u % 2:u % 2 + 3]):
            rows.append((f"e{u}{i}", f"u{u}", f"t{t}", f"art{t in 'ab'}", start + dt.timedelta(minutes=4 * i),
                         200_000, 200_000, "clickrow", "trackdone", "home", "mobile", False, False, False, DS))
    listens = spark.createDataFrame(rows, LISTEN_SCHEMA)
    lake.write_partition(listens, cfg, cfg.tables.listens, DS, "test")
    interactions = build_interactions(listens, DS, cfg.rewards)
    lake.write_partition(interactions, cfg, cfg.tables.interactions, DS, "test")


def test_step_writes_the_union_and_logs_the_run(spark, make_cfg):
    cfg = make_cfg(*SMALL)
    write_listens(spark, cfg)
    metrics = candidates.run(spark, cfg, DS, "run-1")

    union = lake.read_table(spark, cfg, cfg.tables.candidates, DS)
    assert union.columns == union_columns(cfg.candidates.sources) + ["ds"]
    assert union.groupBy("user_id", "track_id").count().where("count > 1").count() == 0
    assert {r.user_id for r in union.select("user_id").distinct().collect()} == {"u0", "u1", "u2", "u3"}
    for source in cfg.candidates.sources:
        assert union.where(F.col(f"{source}_flag")).count() == metrics[f"{source}_rows"] > 0

    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    runs = mlflow.search_runs(experiment_names=[cfg.tracking.experiment_name], output_format="list")
    assert [r.data.tags["ds"] for r in runs] == [DS]
    run = runs[0]
    assert run.data.metrics["union_rows"] == union.count()
    assert run.data.params["als.rank"] == "4"
    artifacts = [a.path for a in mlflow.artifacts.list_artifacts(run_id=run.info.run_id)]
    assert artifacts == [candidates.ALS_ARTIFACT]

    publish.run(spark, cfg, DS, "run-1")
    recs = lake.read_table(spark, cfg, cfg.tables.ranked_recs, DS)
    assert recs.columns == RANKED_RECS_COLUMNS
    first = recs.where("user_id = 'u0' and surface = 'home'").orderBy("rank").collect()
    assert [r.rank for r in first] == list(range(1, len(first) + 1)) and len(first) <= 8
    assert "als" in first[0].sources and set(first[0].asDict()) >= {"surface", "model_version"}
