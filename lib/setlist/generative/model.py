"""Generative retrieval: an encoder-decoder transformer that writes the next item's semantic ID.

Tokens: 0 pads; the code ``c`` of level ``l`` is token ``1 + offset[l] + c`` (each level has its
own token range, so "3 at level 0" and "3 at level 1" are different words); the last id is the
decoder's start token. The encoder reads the history, each item as its ``depth`` tokens plus a
level embedding and the item's slot (0 = oldest of the last ``max_items``). The decoder starts
from the start token plus the slot of the item to be written and emits one code per level,
attending to the encoder's tokens; level ``l``'s logits cover level ``l``'s codebook only, so the
loss is one cross-entropy per level.

Training is cheap because the encoder is item-causal: a token attends to the tokens of its own
and earlier items only. The encoder outputs for slots < j are then exactly what encoding the
history ``items[:j]`` alone would give, so one encoder pass over a window serves every target
in it (the decoder hides slots >= j), like SASRec's causal mask, and inference encodes the same
way. With ``relative_slots`` the slot embeddings go: attention gets a learned per-head bias for
the distance in items between two tokens (encoder) and between the item being written and a
history token (decoder's cross-attention), as T5's relative position bias does in TIGER. A
target's context then looks the same wherever it sits in a training window, as at serving.
:func:`beam_search` masks every step with the :class:`~setlist.generative.trie.CodeTrie`,
so each finished beam is an existing item.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from setlist.generative.trie import CodeTrie

PAD_TOKEN = 0


class GenerativeRetriever(nn.Module):
    def __init__(self, codebook_sizes: Sequence[int], num_items: int, max_items: int = 20, dim: int = 128,
                 heads: int = 4, encoder_layers: int = 2, decoder_layers: int = 2, ff_dim: int = 512,
                 dropout: float = 0.1, codes: np.ndarray | None = None, relative_slots: bool = False):
        super().__init__()
        sizes = [int(size) for size in codebook_sizes]
        self.architecture = dict(codebook_sizes=sizes, num_items=num_items, max_items=max_items, dim=dim,
                                 heads=heads, encoder_layers=encoder_layers, decoder_layers=decoder_layers,
                                 ff_dim=ff_dim, dropout=dropout, relative_slots=relative_slots)
        self.sizes, self.depth, self.max_items = sizes, len(sizes), max_items
        self.starts = [1 + int(start) for start in np.cumsum([0] + sizes[:-1])]
        self.bos = 1 + sum(sizes)
        # Item row -> its tokens; a buffer, so a saved state carries the codes it was trained on.
        self.register_buffer("item_tokens", torch.zeros(num_items, self.depth, dtype=torch.long))
        if codes is not None:
            self.item_tokens.copy_(torch.as_tensor(np.asarray(codes) + np.asarray(self.starts)[None]))
        self.tokens = nn.Embedding(self.bos + 1, dim, padding_idx=PAD_TOKEN)
        self.levels = nn.Embedding(self.depth, dim)  # the level of an encoder token
        self.steps = nn.Embedding(self.depth, dim)  # the decoder position (= the level it predicts)
        self.heads, self.relative_slots = heads, relative_slots
        if relative_slots:  # bias by distance in items, 0..max_items
            self.slot_bias = nn.Embedding(max_items + 1, heads)
            self.memory_bias = nn.Embedding(max_items + 1, heads)
        else:
            self.slots = nn.Embedding(max_items + 1, dim)  # item slot; the decoder gets the target's
        self.input_dropout = nn.Dropout(dropout)
        layer = dict(d_model=dim, nhead=heads, dim_feedforward=ff_dim, dropout=dropout, activation="gelu",
                     batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), encoder_layers,
                                             norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), decoder_layers,
                                             norm=nn.LayerNorm(dim))
        self.head = nn.Linear(dim, self.bos + 1)

    def encode(self, history: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, n] item rows (right-padded with -1, n <= max_items) -> ([B, n * depth, dim] memory,
        [n * depth] slot of each memory token)."""
        batch, length = history.shape
        real = history >= 0
        tokens = self.item_tokens[history.clamp(min=0)].masked_fill(~real[..., None], PAD_TOKEN)
        slot = torch.arange(length, device=history.device).repeat_interleave(self.depth)
        level = torch.arange(self.depth, device=history.device).repeat(length)
        x = self.tokens(tokens.reshape(batch, -1)) + self.levels(level)[None]
        # True = hidden: later items. Right padding means a real token never sees a padding one,
        # and a padding token still sees the real ones (no all-hidden row, no NaN).
        later = slot[None, :] > slot[:, None]
        if not self.relative_slots:
            return self.encoder(self.input_dropout(x + self.slots(slot)[None]), mask=later), slot
        distance = (slot[:, None] - slot[None, :]).clamp(0, self.max_items)
        bias = self.slot_bias(distance).permute(2, 0, 1).masked_fill(later[None], float("-inf"))
        # The inference fast path of nn.TransformerEncoder turns a per-head (3-D) float mask into NaN.
        fast_path = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.encoder(self.input_dropout(x), mask=bias.repeat(batch, 1, 1)), slot
        finally:
            torch.backends.mha.set_fastpath_enabled(fast_path)

    def decode(self, memory: torch.Tensor, memory_slots: torch.Tensor, target_slot: torch.Tensor,
               prefix: torch.Tensor) -> torch.Tensor:
        """[B, T, dim] memory, [B, G] slot of the item each of G groups writes (memory at slots
        >= it is hidden from that group), [B, G, s] tokens each group has written -> [B, G, s + 1,
        dim] states; state ``l`` predicts level ``l``.

        A group is one target (training: every target of a window) or one beam (inference). The
        groups of a row share one decoder sequence, each attending only to its own tokens, so
        the memory's keys and values are projected once per row, not once per group: that
        projection dominated the cost when each group had its own copy of the memory."""
        batch, groups, written = prefix.shape
        length = written + 1
        device = prefix.device
        inputs = torch.cat([torch.full((batch, groups, 1), self.bos, dtype=torch.long, device=device), prefix], 2)
        step = torch.arange(length, device=device)
        x = self.tokens(inputs) + self.steps(step)[None, None]
        if not self.relative_slots:
            x = x + self.slots(target_slot)[:, :, None]
        group = torch.arange(groups, device=device).repeat_interleave(length)
        position = step.repeat(groups)
        # True = hidden: another group's tokens, or a later token of the same group.
        own_past = (group[None, :] != group[:, None]) | (position[None, :] > position[:, None])
        writing = target_slot.repeat_interleave(length, 1)[:, :, None]  # [B, G * length, 1]
        hidden = memory_slots[None, None, :] >= writing
        if self.relative_slots:
            back = self.memory_bias((writing - memory_slots[None, None, :]).clamp(0, self.max_items))
            hidden = back.permute(0, 3, 1, 2).masked_fill(hidden[:, None], float("-inf")).flatten(0, 1)
        else:
            hidden = hidden.repeat_interleave(self.heads, 0)
        out = self.decoder(self.input_dropout(x.reshape(batch, groups * length, -1)), memory, tgt_mask=own_past,
                           memory_mask=hidden)
        return out.reshape(batch, groups, length, -1)

    def level_logits(self, states: torch.Tensor, level: int) -> torch.Tensor:
        """[..., dim] states -> [..., codebook_sizes[level]] logits of that level's codes."""
        part = slice(self.starts[level], self.starts[level] + self.sizes[level])
        return F.linear(states, self.head.weight[part], self.head.bias[part])


def window_loss(model: GenerativeRetriever, windows: torch.Tensor,
                counted: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Teacher-forced loss of [B, W] windows of item rows (right-padded with -1): every item at
    a ``counted`` slot j >= 1 is written given the items before it. Returns the mean over
    levels of each level's cross-entropy, and the per-level values."""
    memory, slots = model.encode(windows[:, :-1])
    targets = windows[:, 1:]
    tokens = model.item_tokens[targets.clamp(min=0)]
    target_slot = torch.arange(1, windows.size(1), device=windows.device).expand_as(targets)
    states = model.decode(memory, slots, target_slot, tokens[:, :, :-1])
    wanted = counted[:, 1:]
    states, tokens = states[wanted], tokens[wanted]
    losses = [F.cross_entropy(model.level_logits(states[:, level], level), tokens[:, level] - model.starts[level])
              for level in range(model.depth)]
    return torch.stack(losses).mean(), [float(loss.detach()) for loss in losses]


def history_tensor(histories: Sequence[Sequence[int]], max_items: int, device) -> torch.Tensor:
    """Item-row histories -> [B, n] of each one's last ``max_items`` rows, right-padded with -1."""
    kept = [list(history)[-max_items:] for history in histories]
    if any(not history for history in kept):
        raise ValueError("beam_search: every user needs at least one item in their history")
    out = np.full((len(kept), max(map(len, kept))), -1, dtype=np.int64)
    for row, history in enumerate(kept):
        out[row, :len(history)] = history
    return torch.as_tensor(out, device=device)


@torch.no_grad()
def beam_search(model: GenerativeRetriever, histories: Sequence[Sequence[int]], trie: CodeTrie,
                beam_size: int = 20, top_k: int = 10, batch_size: int = 256,
                device: torch.device | str = "cpu",
                exclude: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``top_k`` most likely next items, by trie-constrained beam search.

    ``histories``: item rows, oldest first. ``exclude`` (optional, one per user): item rows the
    user must not be offered; they are masked at the last level, so no beam is spent on them,
    and the others keep their scores (the leave-one-out protocols rank a user's earlier items out).
    Returns ([users, top_k] item rows, -1 where fewer
    than ``top_k`` items exist, and their sequence log-probabilities, best first). At every
    level the codes no item continues are masked before the softmax, so scores are log-
    probabilities under the model restricted to real items and every returned row is an item."""
    if top_k > beam_size:
        raise ValueError(f"beam_search: top_k={top_k} exceeds beam_size={beam_size}")
    model.eval()
    tables = trie.tensors(device)
    all_items, all_scores = [], []
    for start in range(0, len(histories), batch_size):
        history = history_tensor(histories[start:start + batch_size], model.max_items, device)
        users = history.size(0)
        memory, slots = model.encode(history)
        banned = None
        if exclude is not None:
            banned = torch.zeros(users, model.item_tokens.size(0), dtype=torch.bool, device=device)
            for row, rows in enumerate(exclude[start:start + batch_size]):
                banned[row, torch.as_tensor(list(rows), dtype=torch.long, device=device)] = True
        target_slot = (history >= 0).sum(1)
        scores = torch.zeros(users, 1, device=device)
        nodes = torch.zeros(users, 1, dtype=torch.long, device=device)  # prefix ids, -1 = dead beam
        prefix = torch.zeros(users, 1, 0, dtype=torch.long, device=device)
        for level in range(model.depth):
            beams = scores.size(1)
            states = model.decode(memory, slots, target_slot[:, None].expand(users, beams), prefix)
            logits = model.level_logits(states[:, :, -1], level).reshape(users * beams, -1)
            width = logits.size(1)
            child = tables[level][nodes.clamp(min=0).reshape(-1)][:, :width]
            allowed = (child >= 0) & (nodes.reshape(-1, 1) >= 0)
            log_p = F.log_softmax(logits.masked_fill(~allowed, float("-inf")), -1).masked_fill(~allowed, float("-inf"))
            if banned is not None and level == model.depth - 1:  # the last level's children are item rows
                # Masked after the softmax: an offered item keeps the score it has without exclusion.
                owner = torch.arange(users, device=device).repeat_interleave(beams)
                log_p = log_p.masked_fill(banned[owner[:, None], child.clamp(min=0)], float("-inf"))
            total = (scores.reshape(-1, 1) + log_p).reshape(users, beams * width)
            scores, flat = total.topk(min(beam_size, beams * width), dim=1)
            beam, code = flat // width, flat % width
            picked = torch.arange(users, device=device)[:, None]
            nodes = child.reshape(users, beams, width)[picked, beam, code].masked_fill(scores == float("-inf"), -1)
            prefix = torch.cat([prefix[picked, beam], (code + model.starts[level])[..., None]], 2)
        nodes, scores = nodes[:, :top_k], scores[:, :top_k]
        if nodes.size(1) < top_k:  # a catalogue smaller than top_k
            pad = top_k - nodes.size(1)
            nodes = F.pad(nodes, (0, pad), value=-1)
            scores = F.pad(scores, (0, pad), value=float("-inf"))
        all_items.append(nodes.cpu().numpy())
        all_scores.append(scores.cpu().numpy())
    return np.concatenate(all_items), np.concatenate(all_scores)
