"""BSARec's frequency branch, made causal (setlist.sequential.blocks.low_pass_kernel), and the
model without absolute positions."""
from __future__ import annotations

import pytest
import torch

from setlist.sequential.blocks import low_pass_kernel
from setlist.sequential.model import FIRST_ITEM, PAD, SequentialRecommender


def fourier_low_pass(x: torch.Tensor, cutoff: int) -> torch.Tensor:
    """BSARec's filter as its paper writes it: rfft over the window, keep the c // 2 + 1 lowest
    frequencies, irfft."""
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    spectrum[:, cutoff // 2 + 1:] = 0
    return torch.fft.irfft(spectrum, n=x.size(1), dim=1, norm="ortho")


@pytest.mark.parametrize("cutoff", [1, 3, 5])
def test_each_position_gets_the_fourier_filter_of_the_window_ending_there(cutoff):
    length = 10
    x = torch.randn(2, length, 3, dtype=torch.float64)
    causal = low_pass_kernel(length, cutoff).double() @ x
    for end in range(length):
        window = torch.zeros_like(x)
        window[:, length - 1 - end:] = x[:, :end + 1]  # left-padded, as the model's inputs are
        assert torch.allclose(causal[:, end], fourier_low_pass(window, cutoff)[:, -1], atol=1e-5)


def test_keeping_every_frequency_is_the_identity():
    assert torch.allclose(low_pass_kernel(8, 2 * 8), torch.eye(8), atol=1e-6)


def test_a_later_item_never_changes_an_earlier_output_with_the_frequency_branch():
    torch.manual_seed(3)
    model = SequentialRecommender(num_items=40, max_len=12, dim=16, heads=1, layers=2, dropout=0.3,
                                  frequency_mix=0.9, frequency_cutoff=3).eval()
    items = torch.randint(FIRST_ITEM, 40, (3, 12))
    items[0, :4] = PAD
    with torch.no_grad():
        base = model.encode(items)
        for position in (5, 8, 11):
            changed = items.clone()
            changed[:, position] = FIRST_ITEM + (items[:, position] - FIRST_ITEM + 7) % (40 - FIRST_ITEM)
            out = model.encode(changed)
            assert torch.allclose(out[:, :position], base[:, :position], atol=1e-6)
            assert (out[:, position] - base[:, position]).abs().max() > 1e-3


def test_cutting_leading_padding_does_not_change_the_outputs():
    # length_batches cuts a batch to its longest sequence; the filter must not notice.
    torch.manual_seed(4)
    model = SequentialRecommender(num_items=30, max_len=12, dim=16, heads=2, layers=2,
                                  frequency_mix=0.7, frequency_cutoff=5).eval()
    items = torch.randint(FIRST_ITEM, 30, (2, 12))
    items[:, :5] = PAD
    with torch.no_grad():
        assert torch.allclose(model.encode(items)[:, 5:], model.encode(items[:, 5:]), atol=1e-5)


@pytest.mark.parametrize("frequency_mix", [0.0, 0.9])
def test_without_absolute_positions_each_position_is_the_last_of_its_prefix(frequency_mix):
    # What training at every position teaches is then what serving the last position asks.
    torch.manual_seed(5)
    model = SequentialRecommender(num_items=30, max_len=10, dim=16, heads=2, layers=2, relative_bias=True,
                                  frequency_mix=frequency_mix, absolute_positions=False).eval()
    items = torch.randint(FIRST_ITEM, 30, (2, 10))
    times = torch.cumsum(torch.rand(2, 10) * 500, dim=1)
    with torch.no_grad():
        whole = model.encode(items, times=times)
        for end in (3, 6):
            prefix = torch.full_like(items, PAD)
            prefix[:, 10 - 1 - end:] = items[:, :end + 1]
            shifted = torch.zeros_like(times)
            shifted[:, 10 - 1 - end:] = times[:, :end + 1]
            assert torch.allclose(model.encode(prefix, times=shifted)[:, -1], whole[:, end], atol=1e-5)
    with_positions = SequentialRecommender(num_items=30, max_len=10, dim=16, relative_bias=True).eval()
    with torch.no_grad():
        prefix = torch.full_like(items, PAD)
        prefix[:, 10 - 1 - 3:] = items[:, :4]
        # With absolute positions the same prefix differs: the check above could fail.
        assert not torch.allclose(with_positions.encode(prefix)[:, -1], with_positions.encode(items)[:, 3], atol=1e-3)


@pytest.mark.parametrize("cutoff", [1, 3, 5])
def test_the_bidirectional_filter_is_the_fourier_filter_of_the_whole_window(cutoff):
    x = torch.randn(2, 10, 3, dtype=torch.float64)
    assert torch.allclose(low_pass_kernel(10, cutoff, causal=False).double() @ x, fourier_low_pass(x, cutoff),
                          atol=1e-5)


def test_with_the_bidirectional_filter_the_last_output_is_the_whole_windows_and_padding_cut_changes_nothing():
    torch.manual_seed(6)
    model = SequentialRecommender(num_items=30, max_len=12, dim=16, heads=1, layers=2, frequency_mix=0.7,
                                  frequency_cutoff=5, bidirectional_filter=True).eval()
    items = torch.randint(FIRST_ITEM, 30, (2, 12))
    items[:, :4] = PAD
    with torch.no_grad():
        base = model.encode(items)
        assert torch.allclose(base[:, 4:], model.encode(items[:, 4:]), atol=1e-5)
        changed = items.clone()
        changed[:, 9] = FIRST_ITEM + (items[:, 9] - FIRST_ITEM + 5) % (30 - FIRST_ITEM)
        out = model.encode(changed)
    # Earlier positions now see later plays (so this model must train on prefix examples only).
    assert (out[:, 5] - base[:, 5]).abs().max() > 1e-4
