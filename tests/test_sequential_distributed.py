"""TorchDistributor runs the same training function with two ranks (DDP over gloo on CPU): the
distributed path a GPU cluster takes, checked here in local mode."""
import pyarrow as pa

from setlist.config import load_config
from setlist.sequential.codes import FIRST_ITEM
from setlist.sequential.data import write_shards
from setlist.sequential.distributed import launch_fit
from setlist.sequential.training import evaluate, load_model, validation_set


def test_two_ranks_train_one_model_that_learns_the_pattern(spark, tmp_path):
    real = 12
    # Item i is always followed by item i + 1 (cyclically); every user starts somewhere else.
    sequences = [[FIRST_ITEM + (start + k) % real for k in range(10)] for start in range(48)]
    records = pa.Table.from_pylist([{"user_id": f"u{u}", "items": s, "surfaces": [0] * 10, "outcomes": [2] * 10,
                                     "gaps": [0.0] * 10} for u, s in enumerate(sequences)])
    files = write_shards(records, tmp_path / "shards", 3)          # uneven: ranks read 2 and 1 files
    held = validation_set([(s[:-1], [0] * 9, [2] * 9, [0.0] * 9, s[-1]) for s in sequences[:12]], 10)
    settings = load_config(overrides=["candidates.sequential.num_processes=2", "candidates.sequential.dim=16",
                                      "candidates.sequential.heads=1", "candidates.sequential.layers=1",
                                      "candidates.sequential.epochs=15", "candidates.sequential.negatives=0",
                                      "candidates.sequential.batch_size=8", "candidates.sequential.threads=1",
                                      "candidates.sequential.learning_rate=0.01", "candidates.sequential.dropout=0.0",
                                      "candidates.sequential.max_len=10", "candidates.sequential.shards=3"]
                           ).candidates.sequential.model_dump()
    result = launch_fit(spark, files, settings, FIRST_ITEM + real, 1, held)
    assert result["processes"] == 2 and len(result["epochs"]) == 15
    model = load_model(result["architecture"], result["state"])
    assert evaluate(model, held, exclude_seen=False)["hr@1"] > 0.9
