"""The valid semantic-ID tuples as a prefix trie stored as one dense table per level.

``children[l][p, c]`` is what follows prefix ``p`` (of length ``l``) with code ``c``: the id of
the longer prefix, or, at the last level, the item's row in :class:`SemanticIds`; -1 where no
item continues that way. Dense tables let beam search look up a whole batch of beams with one
tensor index per step (no Python per beam), and ``children[l] >= 0`` is the allowed-token mask.
Their size is prefixes x codebook per level, at most items x codebook: fine for catalogues of
up to a few hundred thousand items.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from setlist.generative.semantic_ids import GenerativeError


@dataclass(frozen=True)
class CodeTrie:
    children: tuple[np.ndarray, ...]  # per level: [prefixes of that length, codebook size] int64

    @property
    def depth(self) -> int:
        return len(self.children)

    def _walk(self, prefix: Sequence[int]) -> int:
        """Prefix id of ``prefix`` (-1 if no item starts with it)."""
        node = 0
        for level, code in enumerate(prefix):
            table = self.children[level]
            if node < 0 or not 0 <= code < table.shape[1]:
                return -1
            node = int(table[node, code])
        return node

    def allowed_next(self, prefix: Sequence[int]) -> np.ndarray:
        """Codes that extend ``prefix`` towards at least one item (empty for a dead or full prefix)."""
        if len(prefix) >= self.depth:
            return np.zeros(0, dtype=np.int64)
        node = self._walk(prefix)
        return np.zeros(0, dtype=np.int64) if node < 0 else np.flatnonzero(self.children[len(prefix)][node] >= 0)

    def item_row(self, codes: Sequence[int]) -> int | None:
        """Full tuple -> the item's row in the semantic IDs, or None if no item has it."""
        if len(codes) != self.depth:
            return None
        row = self._walk(codes)
        return None if row < 0 else row

    def tensors(self, device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [torch.as_tensor(table, device=device) for table in self.children]


def build_trie(codes: np.ndarray, widths: Sequence[int] = ()) -> CodeTrie:
    """[num_items, depth] unique code tuples (row = item row) -> the trie of those tuples.
    ``widths``: per-level table widths (the codebook sizes), so a mask lines up with the
    model's logits even where the largest code of a level is unused."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or not len(codes) or codes.min() < 0:
        raise GenerativeError(f"build_trie: expected [num_items, depth] non-negative codes, got shape {codes.shape}")
    if len(np.unique(codes, axis=0)) != len(codes):
        raise GenerativeError("build_trie: two items share a code tuple (disambiguate first)")
    depth = codes.shape[1]
    parent = np.zeros(len(codes), dtype=np.int64)  # every item starts at the root, prefix id 0
    tables = []
    for level in range(depth):
        if level == depth - 1:
            child, count = np.arange(len(codes)), int(parent.max()) + 1
        else:
            _, child = np.unique(codes[:, :level + 1], axis=0, return_inverse=True)
            child, count = child.reshape(-1), int(parent.max()) + 1
        width = max(int(codes[:, level].max()) + 1, widths[level] if level < len(widths) else 0)
        table = np.full((count, width), -1, dtype=np.int64)
        table[parent, codes[:, level]] = child
        tables.append(table)
        parent = child
    return CodeTrie(tuple(tables))
