"""Item attributes in the sequential model: a track's vector is its own embedding plus its
artist's (or tags'), on the input and output side, kept causal and carried with the state."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_sequential_model import _settings, _successor_data

from setlist.sequential.model import FIRST_ITEM, PAD, SequentialRecommender
from setlist.sequential.public import attribute_pairs
from setlist.sequential.training import build_model, fit, load_model

# Items 2-4 share attribute 0, item 4 also has attribute 1, items 5.. have none.
ITEMS = np.array([2, 3, 4, 4])
ATTRIBUTES = np.array([0, 0, 0, 1])


def _model(**overrides) -> SequentialRecommender:
    torch.manual_seed(0)
    return build_model(_settings(**overrides), num_items=12, num_surfaces=1, item_attributes=(ITEMS, ATTRIBUTES))


def test_an_item_vector_is_its_embedding_plus_the_mean_of_its_attributes():
    model = _model()
    table, own, shared = model.item_table().detach(), model.items.weight.detach(), model.attributes.weight.detach()
    assert torch.allclose(table[2], own[2] + shared[0]) and torch.allclose(table[3], own[3] + shared[0])
    assert torch.allclose(table[4], own[4] + (shared[0] + shared[1]) / 2)
    assert torch.equal(table[5:], own[5:]) and not table[PAD].any()
    # The output side scores with the same vectors.
    state = torch.randn(1, model.dim)
    assert torch.allclose(model.catalogue_scores(state)[0, FIRST_ITEM:], (state @ table.T)[0, FIRST_ITEM:])


def test_learning_one_item_moves_the_items_that_share_its_attribute():
    model = _model()
    loss = -model.catalogue_scores(torch.ones(1, model.dim))[0, 2]
    loss.backward()
    assert model.attributes.weight.grad[0].abs().sum() > 0  # item 3 and 4's vectors move with item 2's
    assert model.attributes.weight.grad[1].abs().sum() == 0


def test_a_later_item_never_changes_an_earlier_output_with_attributes():
    model = _model(max_len=10, dim=16, layers=2, dropout=0.3).eval()
    items = torch.tensor([[PAD, PAD, 2, 5, 3, 7, 4, 9, 2, 6]])
    with torch.no_grad():
        base = model.encode(items)
        changed = items.clone()
        changed[0, 6] = 3  # a later item with the same attribute as the one it replaces
        out = model.encode(changed)
    assert torch.allclose(out[:, :6], base[:, :6], atol=1e-6)
    assert (out[:, 6] - base[:, 6]).abs().max() > 1e-4


def test_fit_trains_with_attributes_and_the_model_reloads_them(tmp_path):
    files, evaluation = _successor_data(tmp_path, 200, 8, 10, 50, 6, shards=2, seed=7)
    out = fit(files, _settings(epochs=3), FIRST_ITEM + 10, 1, evaluation, item_attributes=(ITEMS, ATTRIBUTES))
    assert out["architecture"]["attribute_pairs"] == 4 and out["architecture"]["num_attributes"] == 2
    model = load_model(out["architecture"], out["state"])
    assert model.attribute_items.tolist() == ITEMS.tolist() and model.attribute_ids.tolist() == ATTRIBUTES.tolist()
    trained = torch.load(__import__("io").BytesIO(out["state"]))
    assert torch.allclose(model.item_table(), trained["items.weight"].index_add(
        0, torch.as_tensor(ITEMS), trained["attributes.weight"][ATTRIBUTES] * torch.tensor([1, 1, .5, .5])[:, None]))


def test_attribute_pairs_number_attributes_densely_and_keep_vocabulary_items_only():
    items, numbers = attribute_pairs({2: [40, 7, 7], 3: [7], 99: [5], 1: [8]}, num_items=10)
    assert items.tolist() == [2, 2, 3] and numbers.tolist() == [0, 1, 0]  # 7 -> 0, 40 -> 1; 99 and UNKNOWN out


def test_out_of_range_attribute_pairs_are_refused():
    model = SequentialRecommender(num_items=6, num_attributes=2, attribute_pairs=1)
    with pytest.raises(ValueError, match="out of range"):
        model.set_attributes([7], [0])
    with pytest.raises(ValueError, match="expected 1 pairs"):
        model.set_attributes([2, 3], [0, 1])


@pytest.mark.parametrize("negatives", [0, 4])
def test_one_shared_item_table_gives_the_same_loss_and_gradients_as_two(negatives):
    from setlist.sequential.model import sequence_loss

    items = torch.tensor([[PAD, 2, 5, 3, 7], [6, 4, 9, 2, 8]])
    targets = torch.tensor([[PAD, 5, 3, 7, 4], [4, 9, 2, 8, 3]])
    where = targets != PAD
    runs = []
    for shared in (False, True):
        model = _model(max_len=5, dim=8, layers=1, dropout=0.0).train()
        table = model.item_table() if shared else None
        out = model.encode(items, table=table)
        loss = sequence_loss(model, out[where], targets[where], "softmax", negatives, 0.75,
                             torch.Generator().manual_seed(3), table=table)
        loss.backward()
        runs.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (loss_two, grads_two), (loss_one, grads_one) = runs
    assert torch.allclose(loss_one, loss_two)
    assert grads_one.keys() == grads_two.keys() and "attributes.weight" in grads_one
    for name in grads_two:
        assert torch.allclose(grads_one[name], grads_two[name], atol=1e-6), name
