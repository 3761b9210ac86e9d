"""train_sequential -> candidates: the transformer trained through TorchDistributor, registered,
gated, and scored into the candidate union (with its bad-input cases)."""
import datetime as dt

import mlflow
import pytest
from pyspark.sql import functions as F

from setlist import lake, tracking
from setlist.interactions import build_interactions
from setlist.pipeline import candidates, train_sequential
from setlist.sequential.registry import champion_files

DAY1, DAY2 = "2026-11-03", "2026-11-04"
# Two cheap sources beside the transformer: the other sources have tests of their own.
SMALL = ["candidates.top_n_per_source=5", "candidates.sources=[popularity,own_artists,sequential]",
         "candidates.sequential.dim=16", "candidates.sequential.epochs=2", "candidates.sequential.negatives=4",
         "candidates.sequential.shards=2", "candidates.sequential.validation_users=3"]
LISTEN_SCHEMA = ("event_id string, user_id string, track_id string, artist_id string, ts timestamp, "
                 "ms_played long, track_duration_ms long, reason_start string, reason_end string, "
                 "surface string, platform string, shuffle boolean, skipped boolean, saved boolean, ds string")
TRACKS = [f"t{i}" for i in range(8)]


def write_day(spark, cfg, ds, tracks, lone_user=None):
    """Six users play 5 consecutive tracks of ``tracks`` each; ``lone_user`` plays one track."""
    start = dt.datetime.fromisoformat(ds) + dt.timedelta(hours=8)
    rows = []
    for u in range(6):
        for i in range(5):
            t = tracks[(u + i) % len(tracks)]
            rows.append((f"{ds}-e{u}-{i}", f"u{u}", t, f"art{t[-1]}", start + dt.timedelta(minutes=4 * i),
                         200_000, 200_000, "clickrow", "trackdone", "now_playing", "mobile", False, False, False, ds))
    if lone_user:
        rows.append((f"{ds}-lone", lone_user, tracks[0], "art0", start, 200_000, 200_000, "clickrow", "trackdone",
                     "home", "mobile", False, False, False, ds))
    listens = spark.createDataFrame(rows, LISTEN_SCHEMA)
    lake.write_partition(listens, cfg, cfg.tables.listens, ds, "test")
    all_listens = lake.read_table(spark, cfg, cfg.tables.listens)
    lake.write_partition(build_interactions(all_listens, ds, cfg.rewards), cfg, cfg.tables.interactions, ds, "test")


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """Day 1 trained on (with a one-play user) and its candidates; day 2 brings two new tracks."""
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("sequential")
    cfg = load_config(overrides=TEST_OVERRIDES + SMALL + [
        f"paths.lake={root / 'lake'}", f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"paths.mlflow_artifacts={root / 'mlartifacts'}", f"paths.checkpoints={root / 'checkpoints'}"])
    write_day(spark, cfg, DAY1, TRACKS, lone_user="solo")
    result = train_sequential.run(spark, cfg, DAY1, "run-1")
    day1 = candidates.run(spark, cfg, DAY1, "run-1")
    write_day(spark, cfg, DAY2, ["new1", "new2", *TRACKS[:3]])        # the catalogue grew overnight
    day2 = candidates.run(spark, cfg, DAY2, "run-2")
    return cfg, result, day1, day2


def test_trained_model_is_registered_and_promoted_with_its_epochs_in_mlflow(spark, trained):
    cfg, result, _, _ = trained
    assert result.status == "promoted" and result.version == 1
    # The one-play user is left out of training and counted; every other user is a training sequence.
    assert result.metrics["users_too_short"] == 1 and result.metrics["users"] == 7
    shards = lake.read_table(spark, cfg, cfg.tables.sequences, DAY1)
    assert shards.count() == 6 and shards.where("user_id = 'solo'").count() == 0
    assert len(shards.inputFiles()) <= 2
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    run_id = tracking.champion_run_id(cfg, cfg.candidates.sequential.model_name)
    history = mlflow.MlflowClient().get_metric_history(run_id, "epoch_loss")
    assert [m.step for m in history] == [1, 2]
    assert champion_files(cfg).key == f"{cfg.candidates.sequential.model_name}/1"


def test_the_champion_proposes_candidates_and_scores_every_candidate(spark, trained):
    cfg, _, day1, _ = trained
    union = lake.read_table(spark, cfg, cfg.tables.candidates, DAY1)
    proposed = union.where("sequential_flag")
    # Serving needs no second play: the lone user gets the model's next tracks after their one play.
    assert proposed.select("user_id").distinct().count() == 7 == day1["sequential_users_scored"]
    assert proposed.where("sequential_rank is null or sequential_score is null").count() == 0
    # The model's score reaches candidates it did not propose (a ranker feature for every row).
    others = union.where(~F.col("sequential_flag") & F.col("track_id").isin(TRACKS))
    assert others.count() > 0 and others.where("sequential_score is null").count() == 0
    # The lone user is served by the other sources too.
    assert union.where("user_id = 'solo' and not sequential_flag").count() > 0


def test_tracks_the_model_never_saw_are_counted_not_fatal(spark, trained):
    cfg, _, _, day2 = trained
    assert day2["sequential_unknown_items"] > 0
    union = lake.read_table(spark, cfg, cfg.tables.candidates, DAY2)
    assert union.where("sequential_flag").count() > 0
    # Unknown tracks are never proposed by the model (it has no vector for them).
    assert union.where("sequential_flag and track_id like 'new%'").count() == 0
