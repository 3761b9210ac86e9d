"""The sequential transformer (setlist.sequential): causal mask, metrics, losses, learning, streaming."""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

# Set-up installs the sequential extra: a missing torch is a failure here, never a skip.
import torch  # noqa: E402

from setlist.sequential import metrics  # noqa: E402
from setlist.sequential.data import SHARD_SCHEMA, SequenceShards, training_examples, write_shards  # noqa: E402
from setlist.sequential.model import FIRST_ITEM, LISTENED, PAD, SKIPPED, SequentialRecommender, sequence_loss  # noqa: E402
from setlist.sequential.training import fit, length_batches, load_model, target_ranks, validation_set  # noqa: E402


# (1) The causal mask ---------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [{"relative_bias": False}, {"relative_bias": True},
                                    # BSARec's: post-norm, 4 x dim feed-forward, the (causal) filter branch
                                    {"post_norm": True, "feed_forward_multiplier": 4, "frequency_mix": 0.5}])
def test_a_later_item_never_changes_an_earlier_output(layout):
    torch.manual_seed(0)
    model = SequentialRecommender(num_items=40, max_len=12, dim=16, heads=2, layers=2, dropout=0.3,
                                  time_buckets=8, num_surfaces=3, **layout).eval()
    items = torch.randint(FIRST_ITEM, 40, (3, 12))
    items[0, :4] = PAD  # left padding
    surfaces = torch.randint(1, 4, (3, 12))
    outcomes = torch.randint(1, 3, (3, 12))
    times = torch.cumsum(torch.rand(3, 12) * 1000, dim=1)
    with torch.no_grad():
        base = model.encode(items, surfaces, outcomes, times)
        for position in (5, 8, 11):
            changed_items, changed_times = items.clone(), times.clone()
            changed_items[:, position] = FIRST_ITEM + (items[:, position] - FIRST_ITEM + 7) % (40 - FIRST_ITEM)
            changed_times[:, position:] += 5e4  # a later play, later still
            changed = model.encode(changed_items, surfaces, outcomes, changed_times)
            assert torch.allclose(changed[:, :position], base[:, :position], atol=1e-6)
            # The change does reach its own position: the check above could fail.
            assert (changed[:, position] - base[:, position]).abs().max() > 1e-3


@pytest.mark.parametrize("post_norm", [False, True])
def test_padding_does_not_change_the_outputs_of_real_positions(post_norm):
    torch.manual_seed(1)
    model = SequentialRecommender(num_items=30, max_len=10, dim=16, heads=2, layers=2, dropout=0.0,
                                  post_norm=post_norm, frequency_mix=0.5).eval()
    real = torch.randint(FIRST_ITEM, 30, (1, 6))
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), real], dim=1)
    with torch.no_grad():
        assert torch.allclose(model.encode(padded)[:, 4:], model.encode(real), atol=1e-5)


# (2) Metric parity ------------------------------------------------------------------------------------

def _loop_metrics(ranks):
    out = {}
    for k in metrics.KS:
        out[f"hr@{k}"] = sum(1.0 for r in ranks if r <= k) / len(ranks)
    for k in metrics.NDCG_KS:
        out[f"ndcg@{k}"] = sum(1 / math.log2(r + 1) for r in ranks if r <= k) / len(ranks)
    out["mrr"] = sum(1 / r for r in ranks) / len(ranks)
    return out


def test_rank_metrics_match_a_direct_computation():
    ranks = np.random.default_rng(3).integers(1, 30, size=500)
    ranks[:5] = [1, 1, 5, 10, 11]
    got, want = metrics.rank_metrics(ranks), _loop_metrics(list(ranks))
    assert got["users"] == 500
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert metrics.rank_metrics([1])["ndcg@10"] == 1.0 and metrics.rank_metrics([2])["hr@1"] == 0.0


class FixedScores:
    """A stand-in model whose catalogue scores are given: user u's row is scores[u]."""

    def __init__(self, scores):
        self.scores = torch.as_tensor(scores, dtype=torch.float32)

    def eval(self):
        return self

    def last_state(self, batch):
        return batch["times"][:, -1].long()  # the test puts the user's row number there

    def catalogue_scores(self, state):
        out = self.scores[state].clone()
        out[:, :FIRST_ITEM] = float("-inf")
        return out


def _evaluation(histories, targets, candidates=None):
    users = len(targets)
    evaluation = {"items": np.zeros((users, 4), dtype=np.int64), "surfaces": np.zeros((users, 4), dtype=np.int64),
                  "outcomes": np.zeros((users, 4), dtype=np.int64),
                  "times": np.repeat(np.arange(users, dtype=np.float32)[:, None], 4, axis=1),
                  "targets": np.asarray(targets), "history": [np.asarray(h) for h in histories]}
    if candidates is not None:
        evaluation["candidates"] = np.asarray(candidates)
    return evaluation


def _loop_rank(row, target, excluded=()):
    target_score = row[target]
    return 1 + sum(1 for item, score in enumerate(row)
                   if item >= FIRST_ITEM and item not in excluded and score > target_score)


def test_target_ranks_match_a_direct_computation_with_ties_and_seen_items():
    rng = np.random.default_rng(5)
    users, items = 23, 15
    scores = rng.integers(0, 4, size=(users, items)).astype(np.float32)  # many ties
    targets = rng.integers(FIRST_ITEM, items, size=users)
    targets[0] = UNKNOWN_TARGET = 1  # a target the vocabulary does not know: ranks last
    histories = [rng.integers(0, items, size=rng.integers(0, 8)).tolist() for _ in range(users)]
    histories[1] = [int(targets[1]), int(targets[1])]  # a re-played target is never excluded
    model = FixedScores(scores)
    for exclude_seen in (False, True):
        got = target_ranks(model, _evaluation(histories, targets), exclude_seen, batch_size=7)
        for user in range(users):
            if targets[user] == UNKNOWN_TARGET:
                assert got[user] == items
                continue
            seen = {i for i in histories[user] if i != targets[user]} if exclude_seen else set()
            assert got[user] == _loop_rank(scores[user], targets[user], seen), (user, exclude_seen)
    # Seen items above the target do move it up.
    assert (target_ranks(model, _evaluation(histories, targets), True)
            <= target_ranks(model, _evaluation(histories, targets), False)).all()


def test_target_ranks_over_sampled_candidates_put_the_target_first():
    rng = np.random.default_rng(6)
    users, items = 17, 40
    scores = rng.integers(0, 5, size=(users, items)).astype(np.float32)
    candidates = np.stack([rng.choice(np.arange(FIRST_ITEM, items), size=10, replace=False) for _ in range(users)])
    histories = [candidates[u, 1:4].tolist() for u in range(users)]  # seen negatives stay in: no exclusion
    got = target_ranks(FixedScores(scores), _evaluation(histories, candidates[:, 0], candidates), True,
                       batch_size=5)
    want = [1 + sum(1 for c in candidates[u, 1:] if scores[u, c] > scores[u, candidates[u, 0]]) for u in range(users)]
    assert got.tolist() == want
    numpy_ranks = metrics.target_ranks(np.take_along_axis(scores, candidates, 1), np.zeros(users, dtype=np.int64))
    assert numpy_ranks.tolist() == want


# (3) Losses -------------------------------------------------------------------------------------------

def test_gbce_matches_its_formula():
    torch.manual_seed(2)
    model = SequentialRecommender(num_items=60, max_len=5, dim=8, heads=2, layers=1)
    states = torch.randn(9, 8, dtype=torch.float64)
    model = model.double()
    targets = torch.randint(FIRST_ITEM, 60, (9,))
    negatives, t = 20, 0.75
    loss = sequence_loss(model, states, targets, "gbce", negatives, t, torch.Generator().manual_seed(4))
    sampled = torch.randint(FIRST_ITEM, 60, (negatives,), generator=torch.Generator().manual_seed(4)).tolist()
    weights = model.items.weight.detach().numpy()
    catalogue = 60 - FIRST_ITEM
    alpha = negatives / (catalogue - 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    total = 0.0
    for row in range(9):
        s, target = states[row].numpy(), int(targets[row])
        total -= math.log(sigmoid(float(s @ weights[target])) ** beta)
        for negative in sampled:
            if negative != target:
                total -= math.log(1 - sigmoid(float(s @ weights[negative])))
    assert float(loss.detach()) == pytest.approx(total / 9, rel=1e-9)


def test_full_softmax_matches_cross_entropy_in_value_and_gradients():
    torch.manual_seed(3)
    model = SequentialRecommender(num_items=700, max_len=5, dim=8, heads=2, layers=1)
    states = torch.randn(600, 8, requires_grad=True)  # more rows than one chunk
    targets = torch.randint(FIRST_ITEM, 700, (600,))
    loss = sequence_loss(model, states, targets, "softmax", 0, 0.75)
    grads = torch.autograd.grad(loss, [states, model.items.weight])
    weights = model.items.weight
    logits = states @ weights.T
    logits = logits.masked_fill(torch.arange(700) < FIRST_ITEM, float("-inf"))
    want = torch.nn.functional.cross_entropy(logits, targets)
    want_grads = torch.autograd.grad(want, [states, weights])
    assert float(loss) == pytest.approx(float(want), rel=1e-5)
    for got, expected in zip(grads, want_grads):
        assert torch.allclose(got, expected, atol=1e-6)
    assert float(grads[1][:FIRST_ITEM].abs().sum()) == 0.0


# (4) Learning a deterministic sequence task ----------------------------------------------------------

def _successor_records(users, length, real_items, rng):
    rows = []
    for user in range(users):
        start = int(rng.integers(real_items))
        items = [FIRST_ITEM + (start + i) % real_items for i in range(length)]
        rows.append({"user_id": str(user), "items": items, "surfaces": [0] * length,
                     "outcomes": [LISTENED] * length, "gaps": [0.0] * length})
    return rows


def _successor_data(folder, users, length, real_items, held_users, held_length, shards, seed):
    """Successor sequences -> (shard files of ``users`` of them, a validation set of ``held_users``
    more: each history's last item held out)."""
    rng = np.random.default_rng(seed)
    rows = _successor_records(users, length, real_items, rng)
    files = write_shards(pa.Table.from_pylist(rows, schema=SHARD_SCHEMA), folder, shards)
    held = _successor_records(held_users, held_length, real_items, rng)
    evaluation = validation_set([(r["items"][:-1], r["surfaces"][:-1], r["outcomes"][:-1], r["gaps"][:-1],
                                  r["items"][-1]) for r in held], max_len=8)
    return files, evaluation


def _settings(**overrides):
    """The config's settings (every field, its defaults) with a small, fast model."""
    from setlist.config import SequentialConfig

    settings = SequentialConfig().model_dump()
    settings.update(dict(max_len=8, dim=32, heads=2, layers=1, dropout=0.0, relative_bias=False, time_buckets=8,
                         loss="softmax", negatives=0, gbce_t=0.75, epochs=12, patience=0, batch_size=32,
                         learning_rate=5e-3, weight_decay=0.0, shuffle_buffer=256, seed=3, threads=1, device="cpu"))
    settings.update(overrides)
    return settings


@pytest.mark.parametrize("loss,negatives,epochs,extra", [
    ("softmax", 0, 12, {}), ("gbce", 16, 30, {}),
    ("softmax", 0, 12, {"prefix_examples": True, "frequency_mix": 0.5, "frequency_cutoff": 3,
                        "feed_forward_multiplier": 4}),
    ("softmax", 0, 12, {"prefix_examples": True, "frequency_mix": 0.5, "frequency_cutoff": 3,
                        "feed_forward_multiplier": 4, "post_norm": True}),
    ("softmax", 0, 12, {"weight_average_decay": 0.9})])
def test_fit_learns_that_item_i_is_followed_by_i_plus_1(tmp_path, loss, negatives, epochs, extra):
    real_items = 30
    files, evaluation = _successor_data(tmp_path, 400, 10, real_items, 100, 7, shards=3, seed=7)
    out = fit(files, _settings(loss=loss, negatives=negatives, epochs=epochs, **extra), FIRST_ITEM + real_items, 1,
              evaluation)
    assert out["epochs"][-1]["loss"] < out["epochs"][0]["loss"]
    model = load_model(out["architecture"], out["state"])
    # The saved architecture rebuilds the trained widths (BSARec's 4 x dim feed-forward, or dim).
    assert model.blocks[0].feed_forward[0].out_features == 32 * extra.get("feed_forward_multiplier", 1)
    ranks = target_ranks(model, evaluation, exclude_seen=False)
    assert metrics.rank_metrics(ranks)["hr@1"] >= 0.9
    assert out["best_epoch"] == max(out["epochs"], key=lambda r: r["val_ndcg@10"])["epoch"]
    # The returned weights are the ones validated at the best epoch (the moving average's, with
    # weight_average_decay), not the last raw ones.
    assert metrics.rank_metrics(ranks)["ndcg@10"] == pytest.approx(out["epochs"][out["best_epoch"] - 1]["val_ndcg@10"])


def test_fit_returns_the_validated_moving_average_of_the_weights(tmp_path):
    # A slow average (decay 0.995 over ~40 steps) lags the raw weights: the figures validated
    # and the model returned must both be the average's.
    files, evaluation = _successor_data(tmp_path, 400, 10, 30, 100, 7, shards=3, seed=9)
    raw = fit(files, _settings(epochs=3), FIRST_ITEM + 30, 1, evaluation)
    averaged = fit(files, _settings(epochs=3, weight_average_decay=0.995), FIRST_ITEM + 30, 1, evaluation)
    model = load_model(averaged["architecture"], averaged["state"])
    returned = metrics.rank_metrics(target_ranks(model, evaluation, exclude_seen=False))["ndcg@10"]
    assert returned == pytest.approx(averaged["epochs"][averaged["best_epoch"] - 1]["val_ndcg@10"])
    assert max(r["val_ndcg@10"] for r in averaged["epochs"]) < max(r["val_ndcg@10"] for r in raw["epochs"])


def test_fit_stops_at_its_time_budget(tmp_path):
    rows = _successor_records(64, 10, 20, np.random.default_rng(8))
    files = write_shards(pa.Table.from_pylist(rows, schema=SHARD_SCHEMA), tmp_path, 1)
    seen = []
    out = fit(files, _settings(epochs=50), FIRST_ITEM + 20, 1, None, time_budget_s=0.0, on_epoch=seen.append)
    assert len(out["epochs"]) == 1 and seen == out["epochs"]


# (5) Streaming ----------------------------------------------------------------------------------------

def _tagged_records(users):
    """Record u's first item is FIRST_ITEM + u: every example says which record it came from.
    Every 7th record has no listened next play (no example); every 11th has one play only."""
    rows = []
    for user in range(users):
        length = 1 if user % 11 == 5 else 3 + user % 5
        outcomes = [SKIPPED] * length if user % 7 == 3 else [LISTENED] * length
        rows.append({"user_id": str(user), "items": [FIRST_ITEM + user] + [FIRST_ITEM] * (length - 1),
                     "surfaces": [0] * length, "outcomes": outcomes, "gaps": [1.0] * length})
    return rows


def _source(example):
    items = example["items"]
    return int(items[items != PAD][0]) - FIRST_ITEM


def test_shards_yield_every_example_once_per_epoch_with_a_bounded_buffer(tmp_path):
    users, buffer = 300, 16
    rows = _tagged_records(users)
    expected = sorted(u for u, r in enumerate(rows) if any(True for _ in training_examples(
        r["items"], r["surfaces"], r["outcomes"], r["gaps"], 6)))
    assert 0 < len(expected) < users
    files = write_shards(pa.Table.from_pylist(rows, schema=SHARD_SCHEMA), tmp_path, 4)
    assert len(files) == 4
    dataset = SequenceShards(files, max_len=6, seed=1, shuffle_buffer=buffer, batch_rows=7)
    orders = []
    for epoch in (1, 2):
        dataset.set_epoch(epoch)
        read = [_source(e) for e in dataset._examples()]  # the order the shards are read in
        yielded = [_source(e) for e in dataset]
        assert sorted(yielded) == expected and sorted(read) == expected  # each exactly once
        position = {user: index for index, user in enumerate(read)}
        # The i-th example out was among the first i + buffer read: at most `buffer` held back.
        assert all(position[user] <= index + buffer - 1 for index, user in enumerate(yielded))
        assert yielded != read  # it does shuffle
        orders.append(yielded)
    assert orders[0] != orders[1]  # and reshuffles per epoch


def test_a_long_sequence_trains_every_transition_once():
    """Windows of max_len + 1 plays from the newest back: each next play is a target once,
    with the max_len plays (or all there are) before it as input."""
    items = list(range(FIRST_ITEM, FIRST_ITEM + 23))
    outcomes = [LISTENED] * 23
    outcomes[9] = SKIPPED  # a skip is input, never a target
    examples = list(training_examples(items, [0] * 23, outcomes, [1.0] * 23, max_len=5))
    pairs = []
    for example in examples:
        for position in np.flatnonzero(example["targets"] != PAD):
            pairs.append((int(example["items"][position]), int(example["targets"][position])))
        assert list(example["items"][example["items"] != PAD]) == sorted(example["items"][example["items"] != PAD])
    expected = [(items[i], items[i + 1]) for i in range(22) if i + 1 != 9]
    assert sorted(pairs) == expected
    assert int((examples[0]["items"] != PAD).sum()) == 5 and examples[0]["targets"][-1] == items[-1]
    assert len(examples) == 5  # ends 23, 18, 13, 8, 3
    assert list(training_examples(items[:1], [0], [LISTENED], [1.0], max_len=5)) == []


def test_prefix_examples_train_each_transition_once_at_the_last_position():
    items = list(range(FIRST_ITEM, FIRST_ITEM + 13))
    outcomes = [LISTENED] * 13
    outcomes[4] = SKIPPED
    times = [float(3 * i) for i in range(13)]
    windows = list(training_examples(items, [1] * 13, outcomes, times, max_len=5))
    examples = list(training_examples(items, [1] * 13, outcomes, times, max_len=5, prefixes=True))
    assert len(examples) == sum(int((w["targets"] != PAD).sum()) for w in windows) == 11
    for example in examples:
        assert set(example) == {"items", "surfaces", "outcomes", "times", "targets"}
        assert (example["targets"][:-1] == PAD).all() and example["targets"][-1] >= FIRST_ITEM
        real = example["items"][example["items"] != PAD]
        assert list(real) == list(range(real[0], example["targets"][-1]))  # the plays just before it
        assert example["items"][-1] == example["targets"][-1] - 1 and len(real) <= 5
        assert (example["surfaces"] != PAD).sum() == len(real)
    assert sorted(int(e["targets"][-1]) for e in examples) == [i for j, i in enumerate(items) if j and j != 4]


def _examples_of_random_lengths(count: int, seed: int) -> list[dict]:
    """``count`` left-padded examples of 1-8 plays, example i's plays all item FIRST_ITEM + i."""
    rng = np.random.default_rng(seed)
    examples = []
    for index in range(count):
        length = int(rng.integers(1, 9))
        items = np.zeros(10, dtype=np.int64)
        items[10 - length:] = FIRST_ITEM + index
        examples.append({"items": items, "targets": items.copy(), "times": np.zeros(10, dtype=np.float32)})
    return examples


def test_length_batches_keep_every_example_and_cut_padding():
    examples = _examples_of_random_lengths(203, 9)
    seen = []
    for batch in length_batches(examples, batch_size=16, seed=0, pool_batches=4):
        width = batch["items"].shape[1]
        assert batch["items"].shape[0] <= 16 and batch["targets"].shape == batch["items"].shape
        assert int((batch["items"] != PAD).sum(1).max()) == width  # no all-padding column left
        seen += [int(row[-1]) - FIRST_ITEM for row in batch["items"]]
    assert sorted(seen) == list(range(203))


def test_length_batches_of_one_pool_keep_the_stream_order_and_its_mix_of_lengths():
    examples = _examples_of_random_lengths(40, 10)
    batches = [sorted(int(row[-1]) - FIRST_ITEM for row in batch["items"])
               for batch in length_batches(examples, batch_size=8, seed=0, pool_batches=1)]
    # Each batch is the next 8 examples of the (already shuffled) stream, whatever their lengths.
    assert batches == [list(range(begin, begin + 8)) for begin in range(0, 40, 8)]
