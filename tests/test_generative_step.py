"""train_generative -> candidates: semantic IDs written per day, the decoder trained, registered and
gated, and its constrained beam search proposing only real tracks into the union."""
import mlflow
import pytest
from pyspark.sql import functions as F
from test_sequential_step import TRACKS, write_day

from setlist import lake, tracking
from setlist.generative.registry import champion_files
from setlist.pipeline import candidates, train_generative

DAY1, DAY2 = "2026-11-03", "2026-11-04"
# A tiny decoder on a fixed cycle of tracks (t_k is always followed by t_k+1): it learns it in seconds.
SMALL = ["candidates.top_n_per_source=5", "candidates.sources=[popularity,generative]",
         "candidates.generative.dim=16", "candidates.generative.heads=2", "candidates.generative.ff_dim=32",
         "candidates.generative.levels=2", "candidates.generative.codebook_size=3",
         "candidates.generative.embedding_dim=4", "candidates.generative.beam_size=10",
         "candidates.generative.validation_users=3", "candidates.generative.epochs=40",
         "candidates.generative.patience=0", "candidates.generative.learning_rate=0.01",
         "candidates.generative.threads=1"]


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    """Day 1 trained on (with a one-play user) and its candidates; a worse model refused on day 1;
    day 2 brings two new tracks."""
    from conftest import TEST_OVERRIDES
    from setlist.config import load_config
    root = tmp_path_factory.mktemp("generative")
    paths = [f"paths.lake={root / 'lake'}", f"paths.mlflow_tracking_uri=sqlite:///{root / 'mlflow.db'}",
             f"paths.mlflow_artifacts={root / 'mlartifacts'}", f"paths.checkpoints={root / 'checkpoints'}"]
    cfg = load_config(overrides=TEST_OVERRIDES + SMALL + paths)
    write_day(spark, cfg, DAY1, TRACKS, lone_user="solo")
    result = train_generative.run(spark, cfg, DAY1, "run-1")
    day1 = candidates.run(spark, cfg, DAY1, "run-1")
    untrained = load_config(overrides=TEST_OVERRIDES + SMALL + paths + [
        "candidates.generative.epochs=1", "candidates.generative.learning_rate=0.000000001"])
    refused = train_generative.run(spark, untrained, DAY1, "run-1b")
    write_day(spark, cfg, DAY2, ["new1", "new2", *TRACKS[:3]])        # the catalogue grew overnight
    day2 = candidates.run(spark, cfg, DAY2, "run-2")
    return cfg, result, refused, day1, day2


def test_semantic_ids_are_one_unique_tuple_per_track_of_the_day(spark, trained):
    cfg, result, _, _, _ = trained
    ids = lake.read_table(spark, cfg, cfg.tables.semantic_ids, DAY1)
    rows = ids.collect()
    assert sorted(r["track_id"] for r in rows) == sorted(TRACKS)
    assert len({tuple(r["codes"]) for r in rows}) == len(rows)
    assert all(len(r["codes"]) == 3 for r in rows)  # two k-means levels and the disambiguation code
    assert result.metrics["catalogue"] == len(TRACKS) and result.metrics["content_fallbacks"] == 0


def test_the_decoder_is_registered_and_promoted_with_its_epochs_in_mlflow(spark, trained):
    cfg, result, _, _, _ = trained
    assert result.status == "promoted" and result.version == 1
    assert result.metrics["users_too_short"] == 1 and result.metrics["users"] == 7
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    run_id = tracking.champion_run_id(cfg, cfg.candidates.generative.model_name)
    assert [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "epoch_loss")] == list(range(1, 41))


def test_the_gate_refuses_a_worse_decoder_and_keeps_the_champion(trained):
    cfg, result, refused, _, _ = trained
    assert refused.status == "refused" and refused.version == 2
    assert refused.metrics["val_ndcg_at_10"] < refused.metrics["champion_val_ndcg_at_10"]
    # The champion, re-ranked through its own stored IDs, scores what it scored when it was trained.
    assert refused.metrics["champion_val_ndcg_at_10"] == pytest.approx(result.metrics["val_ndcg_at_10"])
    assert champion_files(cfg).key == f"{cfg.candidates.generative.model_name}/1"


def test_the_champion_proposes_only_real_tracks_with_score_and_rank(spark, trained):
    cfg, _, _, day1, _ = trained
    union = lake.read_table(spark, cfg, cfg.tables.candidates, DAY1)
    proposed = union.where("generative_flag")
    assert proposed.select("user_id").distinct().count() == 7 == day1["generative_users_decoded"]
    assert proposed.where("generative_rank is null or generative_score is null").count() == 0
    assert {r["track_id"] for r in proposed.select("track_id").distinct().collect()} <= set(TRACKS)
    # Ranks 1..top_n per user, in the order of the tuples' log-probabilities.
    for user in proposed.select("user_id").distinct().collect():
        rows = proposed.where(F.col("user_id") == user["user_id"]).orderBy("generative_rank").collect()
        assert [r["generative_rank"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) == 5
        scores = [r["generative_score"] for r in rows]
        assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)


def test_tracks_the_model_has_no_id_for_are_counted_not_fatal(spark, trained):
    cfg, _, _, _, day2 = trained
    assert day2["generative_unknown_items"] > 0
    union = lake.read_table(spark, cfg, cfg.tables.candidates, DAY2)
    assert union.where("generative_flag").count() > 0
    assert union.where(F.col("generative_flag") & F.col("track_id").like("new%")).count() == 0
