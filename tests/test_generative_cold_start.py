"""Cold start: tracks with an ID but no training plays enter decoded lists by code prefix."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from setlist.candidates.generative import _decode_batches
from setlist.config import GenerativeConfig
from setlist.errors import ConfigError
from setlist.generative.cold_start import UnseenIndex, mix_unseen
from setlist.generative.model import GenerativeRetriever
from setlist.generative.registry import load_model_files, save_model_files
from setlist.generative.semantic_ids import GenerativeError
from setlist.generative.training import state_bytes

# Rows 0-3 are played; 4 shares row 0's first code, 5 shares rows 1's first two, 6 shares nobody's.
CODES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [2, 0, 0],
                  [0, 1, 0], [1, 0, 1], [3, 0, 0]])
UNSEEN = np.array([False] * 4 + [True] * 3)


def test_unseen_items_sharing_more_codes_with_the_beam_item_come_first():
    index = UnseenIndex(np.array([[0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 2], [1, 0, 0]]),
                        np.array([False, True, True, True, True]), prefix_levels=1)
    assert index.matches(0).tolist() == [2, 3, 1]  # rows 2, 3 agree on two codes, row 1 on one
    assert index.matches(4).tolist() == [4]         # an unseen item matches itself: the caller skips taken rows


def test_unseen_items_follow_the_beam_item_they_match_within_the_share():
    rows = np.array([[1, 0, 2, 3], [3, 2, -1, -1]])
    scores = np.array([[-1.0, -2.0, -3.0, -4.0], [-0.5, -1.5, -np.inf, -np.inf]])
    out, out_scores = mix_unseen(rows, scores, UnseenIndex(CODES, UNSEEN, 1), top_k=4, share=0.5)
    # User 0: quota 2. Row 1 brings row 5 (code 1), row 0 brings row 4 (code 0); they push out
    # the beam's last two items and sit right after the item they matched.
    assert out[0].tolist() == [1, 5, 0, 4]
    assert out_scores[0].tolist() == [-1.0, -1.0, -2.0, -2.0]
    # User 1: row 3 (code 2) matches no unseen item; row 2 (code 1) brings row 5. Row 6 never comes:
    # no generated item starts with code 3.
    assert out[1].tolist() == [3, 2, 5, -1]
    assert 6 not in out


def test_a_longer_prefix_is_stricter_and_a_zero_share_keeps_the_beam():
    rows = np.array([[1, 0, 2, 3]])
    scores = np.array([[-1.0, -2.0, -3.0, -4.0]])
    out, _ = mix_unseen(rows, scores, UnseenIndex(CODES, UNSEEN, 2), top_k=4, share=0.5)
    assert out[0].tolist() == [1, 5, 0, 2]  # row 4 (0, 1) does not share row 0's (0, 0)
    same, same_scores = mix_unseen(rows, scores, UnseenIndex(CODES, UNSEEN, 1), top_k=4, share=0.0)
    assert same.tolist() == rows.tolist() and same_scores.tolist() == scores.tolist()


def test_bad_cold_start_settings_are_named():
    with pytest.raises(GenerativeError, match="prefix_levels must be 1..3"):
        UnseenIndex(CODES, UNSEEN, 4)
    with pytest.raises(GenerativeError, match="share must be within"):
        mix_unseen(np.zeros((1, 2), dtype=int), np.zeros((1, 2)), UnseenIndex(CODES, UNSEEN, 1), 2, 1.5)
    with pytest.raises(ConfigError, match="cold_prefix_levels"):
        GenerativeConfig(levels=2, cold_prefix_levels=3)


def test_the_daily_decoder_serves_untrained_tracks_registered_with_the_model(tmp_path):
    """The registered IDs carry which tracks were trained; decoding a batch of users mixes the
    untrained ones in, and a model registered before the flag existed serves only its beam."""
    torch.manual_seed(0)
    model = GenerativeRetriever((4, 2, 2), len(CODES), max_items=4, dim=16, heads=2, encoder_layers=1,
                                decoder_layers=1, ff_dim=32, dropout=0.0, codes=CODES)
    ids = pd.DataFrame({"track_id": [f"t{i}" for i in range(len(CODES))], "item_index": np.arange(len(CODES)),
                        "codes": [list(c) for c in CODES], "trained": ~UNSEEN})
    folder = save_model_files(tmp_path / "v1", model.architecture, state_bytes(model), ids, {})
    files = load_model_files(folder, "m/1")
    assert files.untrained().tolist() == UNSEEN.tolist()

    class Broadcast:  # what a Spark broadcast hands the worker
        value = (files.key, files.architecture, files.state, files.codes(), files.untrained())

    users = pd.DataFrame({"user_id": ["a", "b", "c"], "rows": [[0, 1, 2], [3, 2], [1]]})

    def decode(**settings):
        cfg = GenerativeConfig(beam_size=7, top_n=3, cold_prefix_levels=1, **settings)
        decoded = pd.concat(_decode_batches(iter([users]), Broadcast, cfg))
        return np.stack(decoded["top_rows"]), np.stack(decoded["top_scores"])

    beam_rows, beam_scores = decode(cold_share=0.0)
    rows, scores = decode(cold_share=0.34)
    expected_rows, expected_scores = mix_unseen(beam_rows, beam_scores, UnseenIndex(CODES, UNSEEN, 1), 3, 0.34)
    assert rows.tolist() == expected_rows.tolist() and np.allclose(scores, expected_scores)
    added = [set(r) - set(b) for r, b in zip(rows.tolist(), beam_rows.tolist())]
    assert any(added) and all(extra <= {4, 5} and len(extra) <= 1 for extra in added)

    # A version registered before the flag existed: every track counts as trained.
    ids.drop(columns="trained").to_parquet(folder / "semantic_ids.parquet", index=False)
    assert not load_model_files(folder, "m/1").untrained().any()
