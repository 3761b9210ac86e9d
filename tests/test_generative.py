"""Generative retrieval with semantic IDs: codes, trie, constrained beam search, a tiny training."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from setlist.generative.model import GenerativeRetriever, beam_search
from setlist.generative.semantic_ids import GenerativeError, content_embeddings, item_embeddings, residual_quantise
from setlist.generative.training import fit, load_model, target_ranks, windows
from setlist.generative.trie import build_trie
from setlist.sequential.metrics import rank_metrics


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_semantic_ids_are_unique_and_collisions_get_distinct_last_codes():
    rng = np.random.default_rng(0)
    groups = rng.normal(size=(5, 8))
    embeddings = np.repeat(groups, 6, axis=0)  # 5 groups of 6 identical items: k-means cannot split them
    ids = residual_quantise(embeddings, np.arange(100, 130), levels=2, codebook_size=4, seed=0)
    assert ids.codes.shape == (30, 3)
    assert len({tuple(row) for row in ids.codes}) == 30
    for group in range(5):
        rows = ids.codes[group * 6:(group + 1) * 6]
        assert len({tuple(row) for row in rows[:, :-1]}) == 1  # same embedding, same k-means tuple
        assert len(set(rows[:, -1])) == 6  # told apart by the disambiguation level only
    distinct_tuples = len({tuple(row) for row in ids.codes[:, :-1]})
    assert ids.collisions == 30 - distinct_tuples >= 25
    assert ids.codebook_sizes[-1] == ids.codes[:, -1].max() + 1
    assert list(ids.rows([129, 100])) == [29, 0]
    with pytest.raises(GenerativeError, match="no code"):
        ids.rows([7])


def test_residual_levels_reduce_the_reconstruction_error():
    embeddings = np.random.default_rng(1).normal(size=(300, 16))
    ids = residual_quantise(embeddings, np.arange(300), levels=4, codebook_size=8, seed=0)
    errors = ids.residual_errors
    assert len(errors) == 4 and errors[0] < 1.0  # unit vectors: 1.0 is the error of no code at all
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert residual_quantise(embeddings, np.arange(300), levels=1, codebook_size=8).residual_errors[0] == \
        pytest.approx(errors[0])


def _sparse_catalogue(num_items=40, widths=(8, 8, 8), seed=0) -> np.ndarray:
    """num_items distinct tuples drawn from the 512-tuple space, disambiguation code 0."""
    space = np.array(list(itertools.product(*map(range, widths))))
    chosen = np.random.default_rng(seed).choice(len(space), num_items, replace=False)
    return np.column_stack([space[chosen], np.zeros(num_items, dtype=np.int64)])


def test_trie_allows_exactly_the_codes_that_continue_to_an_item():
    codes = _sparse_catalogue()
    trie = build_trie(codes, (8, 8, 8, 1))
    for prefix_length in range(4):
        prefixes = {tuple(row[:prefix_length]) for row in codes}
        for prefix in prefixes:
            expected = sorted({int(row[prefix_length]) for row in codes if tuple(row[:prefix_length]) == prefix})
            assert trie.allowed_next(prefix).tolist() == expected
    assert all(trie.item_row(tuple(row)) == index for index, row in enumerate(codes))
    unused = next(t for t in itertools.product(range(8), range(8), range(8), [0]) if t not in {tuple(r) for r in codes})
    assert trie.item_row(unused) is None and trie.allowed_next(unused[:3]).size == 0


@pytest.mark.parametrize("relative_slots", [False, True])
def test_untrained_model_beam_search_returns_only_existing_items(relative_slots):
    torch.manual_seed(0)
    codes = _sparse_catalogue()  # 40 valid tuples out of 512: most greedy choices lead nowhere
    trie = build_trie(codes, (8, 8, 8, 1))
    model = GenerativeRetriever((8, 8, 8, 1), len(codes), max_items=6, dim=16, heads=2, encoder_layers=1,
                                decoder_layers=1, ff_dim=32, dropout=0.0, codes=codes,
                                relative_slots=relative_slots).eval()
    rng = np.random.default_rng(2)
    histories = [rng.integers(0, len(codes), rng.integers(1, 9)).tolist() for _ in range(300)]
    found, scores = beam_search(model, histories, trie, beam_size=10, top_k=10, batch_size=64)
    assert found.shape == (300, 10) and (found >= 0).all() and np.isfinite(scores).all()
    assert all(len(set(row)) == 10 for row in found)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # Every returned row's tuple walks the trie back to that row: a real item, never a made-up one.
    assert all(trie.item_row(tuple(codes[row])) == row for row in found.ravel())
    # A beam wider than the catalogue enumerates every item: the constrained probabilities sum to 1.
    every, every_scores = beam_search(model, histories[:5], trie, beam_size=64, top_k=40)
    assert all(sorted(row) == list(range(40)) for row in every)
    assert np.exp(every_scores).sum(1) == pytest.approx(np.ones(5), abs=1e-4)


def test_beam_search_leaves_out_each_users_excluded_items_and_keeps_the_others_scores():
    torch.manual_seed(0)
    codes = _sparse_catalogue()
    trie = build_trie(codes, (8, 8, 8, 1))
    model = GenerativeRetriever((8, 8, 8, 1), len(codes), max_items=6, dim=16, heads=2, encoder_layers=1,
                                decoder_layers=1, ff_dim=32, dropout=0.0, codes=codes).eval()
    rng = np.random.default_rng(4)
    histories = [rng.integers(0, len(codes), rng.integers(1, 7)).tolist() for _ in range(20)]
    every, every_scores = beam_search(model, histories, trie, beam_size=64, top_k=40)
    kept, kept_scores = beam_search(model, histories, trie, beam_size=64, top_k=30, exclude=histories)
    for user, history in enumerate(histories):
        offered = ~np.isin(every[user], history)
        expected = every[user][offered][:30]
        assert not np.isin(kept[user][kept[user] >= 0], history).any()
        assert kept[user][:len(expected)].tolist() == expected.tolist()
        np.testing.assert_allclose(kept_scores[user][:len(expected)], every_scores[user][offered][:30], rtol=1e-5)
    # Through target_ranks: the target stays rankable even when it was played before, and leaving the
    # other earlier items out can only lift it.
    targets = [history[0] for history in histories]
    with_seen = target_ranks(model, trie, histories, targets, beam_size=64, top_k=40)
    without = target_ranks(model, trie, histories, targets, beam_size=64, top_k=40, exclude_seen=True)
    assert np.isfinite(without).all() and (without <= with_seen).all() and (without < with_seen).any()


@pytest.mark.parametrize("relative_slots", [False, True])
def test_the_encoder_is_item_causal_and_reads_order(relative_slots):
    # Training reads every target of a window from one encoder pass: the outputs of the first j
    # items must be what encoding those j items alone gives.
    torch.manual_seed(1)
    codes = _sparse_catalogue()
    model = GenerativeRetriever((8, 8, 8, 1), len(codes), max_items=6, dim=16, heads=2, encoder_layers=2,
                                decoder_layers=1, ff_dim=32, dropout=0.0, codes=codes,
                                relative_slots=relative_slots).eval()
    window = torch.tensor([[3, 17, 8, 25, 30, 1]])
    with torch.no_grad():
        whole, _ = model.encode(window)
        for j in (1, 3, 5):
            alone, _ = model.encode(window[:, :j])
            assert torch.allclose(whole[:, :j * model.depth], alone, atol=1e-5)
        swapped, _ = model.encode(window[:, [1, 0, 2, 3, 4, 5]])
    # Order matters: the same two items the other way round give other outputs.
    assert not torch.allclose(swapped[:, 2 * model.depth:], whole[:, 2 * model.depth:], atol=1e-4)


@pytest.mark.parametrize("relative_slots,weight_average_decay", [(False, 0.0), (True, 0.0), (False, 0.9)])
def test_tiny_model_learns_that_item_i_is_followed_by_item_i_plus_1(relative_slots, weight_average_decay):
    num_items = 30
    rng = np.random.default_rng(3)
    ids = residual_quantise(rng.normal(size=(num_items, 8)), np.arange(1, num_items + 1), levels=2,
                            codebook_size=4, seed=0)
    def run(start, length):
        return [(start + step) % num_items + 1 for step in range(length)]  # item ids 1..30
    train = [run(int(rng.integers(num_items)), int(rng.integers(3, 9))) for _ in range(400)]
    tests = [run(int(rng.integers(num_items)), int(rng.integers(2, 7))) for _ in range(100)]
    validation = {"histories": [t[:-1] for t in tests], "targets": [t[-1] for t in tests]}
    settings = dict(max_items=5, dim=32, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=64, dropout=0.0,
                    batch_size=32, learning_rate=3e-3, epochs=15, patience=0, beam_size=5, top_n=5,
                    validation_users=100, seed=0, relative_slots=relative_slots,
                    weight_average_decay=weight_average_decay)
    out = fit(train, ids, settings, validation, time_budget_s=30)
    model = load_model(out["architecture"], out["state"])
    trie = build_trie(ids.codes, ids.codebook_sizes)
    ranks = target_ranks(model, trie, [ids.rows(h) for h in validation["histories"]],
                         ids.rows(validation["targets"]), beam_size=5)
    assert (ranks == 1).mean() >= 0.9
    assert out["epochs"][-1]["loss"] < out["epochs"][0]["loss"]
    assert max(r["val_ndcg@10"] for r in out["epochs"]) == \
        pytest.approx(out["epochs"][out["best_epoch"] - 1]["val_ndcg@10"])
    # The returned weights are the ones validated at the best epoch (all 100 users validate).
    assert rank_metrics(ranks)["ndcg@10"] == pytest.approx(out["epochs"][out["best_epoch"] - 1]["val_ndcg@10"])


def test_windows_count_each_transition_once():
    sequence = list(range(11))
    items, counted = windows([sequence, [5]], max_items=4)  # [5] has no transition: no window
    targets = sorted(items[counted].tolist())
    assert targets == list(range(1, 11))
    assert all(items[r, 0] >= 0 and not counted[r, 0] for r in range(len(items)))


def test_content_embedding_falls_back_for_items_without_attributes():
    attributes = {1: [10, 11], 2: [10, 11], 3: [12], 4: [], 6: [11, 12, 13]}  # 4 empty, 5 absent
    items = [1, 2, 3, 4, 5, 6]
    fallback = np.arange(18, dtype=float).reshape(6, 3) + 1
    embeddings, fallbacks = content_embeddings(attributes, items, dim=3, fallback=fallback)
    assert fallbacks == 2
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0)
    assert np.allclose(embeddings[3], fallback[3] / np.linalg.norm(fallback[3]))
    assert np.allclose(embeddings[4], fallback[4] / np.linalg.norm(fallback[4]))
    assert np.allclose(embeddings[0], embeddings[1]) and not np.allclose(embeddings[0], embeddings[2])
    with pytest.raises(GenerativeError, match="no attributes"):
        content_embeddings(attributes, items, dim=3)
    _, none_missing = content_embeddings(attributes, [1, 2, 3, 6], dim=2)
    assert none_missing == 0


def test_an_unplayed_item_is_placed_among_played_items_with_its_tags():
    # Items 1-6 carry tag group a, 7-12 group b; users 0-9 play only group a, 10-19 only b.
    # Items 13 (tags a) and 14 (tags b) were never played.
    attributes = {i: ["a1", "a2"] if i <= 6 or i == 13 else ["b1", "b2"] for i in range(1, 15)}
    attributes.update({1: ["a1"], 7: ["b1"]})  # tags vary a little inside each group
    rng = np.random.default_rng(0)
    sequences = [rng.choice(range(1, 7), 8).tolist() for _ in range(10)] + \
                [rng.choice(range(7, 13), 8).tolist() for _ in range(10)]
    items = list(range(1, 15))
    embeddings, _ = item_embeddings(attributes, sequences, items, dim=2)
    half = embeddings.shape[1] // 2
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0)
    cold_a, cold_b = embeddings[12], embeddings[13]
    assert np.abs(cold_a[half:]).sum() > 0 and np.abs(cold_b[half:]).sum() > 0  # a collaborative half
    played_a, played_b = slice(0, 6), slice(6, 12)  # rows of items 1-6 and 7-12
    similarity = embeddings @ np.stack([cold_a, cold_b]).T
    assert similarity[played_a, 0].min() > similarity[played_b, 0].max()
    assert similarity[played_b, 1].min() > similarity[played_a, 1].max()
    # Each unplayed item's collaborative half points the way its group's played items' do.
    group_a, group_b = embeddings[played_a, half:].mean(0), embeddings[played_b, half:].mean(0)
    assert cold_a[half:] @ group_a > 3 * abs(cold_a[half:] @ group_b)
    assert cold_b[half:] @ group_b > 3 * abs(cold_b[half:] @ group_a)
