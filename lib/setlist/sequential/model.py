"""The SASRec-class causal transformer (Kang & McAuley, ICDM 2018) and its losses.

Each position of a left-padded item sequence attends to itself and the earlier, non-padding
positions only (the causal mask), so a position's output never depends on a later item.
Inputs are the item, its absolute position and, where the data has them, the play's surface
and outcome (skipped / listened). With ``relative_bias`` the attention logits also get a
learned per-head bias for the distance between two positions and for the time between the
two plays (log2 buckets of seconds): the relative attention bias of HSTU (Zhai et al., ICML 2024).

Losses (:func:`sequence_loss`) score each position's output against its next item:

- ``gbce`` (gSASRec, Petrov & Macdonald, RecSys 2023): the positive's log-sigmoid raised to
  beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = negatives / (catalogue - 1), plus the
  negatives' log(1 - sigmoid). It corrects the overconfidence of sampled BCE.
- ``softmax``: cross-entropy over the positive and the sampled negatives, or over the whole
  catalogue with ``negatives = 0``.

Negatives are drawn uniformly from the catalogue once per batch and shared by its positions;
a negative equal to the position's positive is masked out.

``dropout`` applies to the inputs, the residual branches and inside the feed-forward layer;
dropout on the attention weights (``attention_dropout``) is off by default: on CPU drawing its
[B, H, L, L] mask costs as much as the rest of a training step.

Item indices: 0 pads, 1 is the reserved index of an item the model's vocabulary does not know,
real items start at 2 (:data:`FIRST_ITEM`).

Frequency mixing (BSARec's filter branch, ``frequency_mix``) and the pre- or post-norm block
layout (``post_norm``): :mod:`setlist.sequential.blocks`. With ``post_norm`` the model is
BSARec's throughout: the input embeddings are LayerNorm-ed (not scaled by sqrt(dim)), the
output is the last block's, and every weight starts N(0, 0.02).

Item attributes (a track's artist; a public set's tags), when given: an item's vector is its own
embedding plus the mean of its attributes' embeddings, on the input and the output side alike
(:meth:`SequentialRecommender.item_table`). A rarely played item borrows what its artist's other
tracks taught the model (as FDSA / S3-Rec's attribute signals; on S3-Rec's LastFM it lifted
test NDCG@10 from 0.0281 to 0.0344). The (item, attribute) pairs are buffers: they travel in the
state dict with the weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from setlist.sequential.blocks import CausalBlock
from setlist.sequential.codes import FIRST_ITEM, LISTENED, PAD, SKIPPED, UNKNOWN  # noqa: F401 (re-exported)


def log2_bucket(values: torch.Tensor, buckets: int) -> torch.Tensor:
    """Non-negative values -> floor(log2(1 + v)) capped at ``buckets - 1``."""
    return torch.log2(1 + values.clamp(min=0)).floor().long().clamp(max=buckets - 1)


class SequentialRecommender(nn.Module):
    def __init__(self, num_items: int, max_len: int = 50, dim: int = 64, heads: int = 2, layers: int = 2,
                 dropout: float = 0.2, relative_bias: bool = False, time_buckets: int = 32,
                 num_surfaces: int = 1, attention_dropout: float = 0.0, num_attributes: int = 0,
                 attribute_pairs: int = 0, frequency_mix: float = 0.0, frequency_cutoff: int = 3,
                 absolute_positions: bool = True, bidirectional_filter: bool = False,
                 feed_forward_multiplier: int = 1, post_norm: bool = False):
        super().__init__()
        self.architecture = dict(num_items=num_items, max_len=max_len, dim=dim, heads=heads, layers=layers,
                                 dropout=dropout, relative_bias=relative_bias, time_buckets=time_buckets,
                                 num_surfaces=num_surfaces, attention_dropout=attention_dropout,
                                 num_attributes=num_attributes, attribute_pairs=attribute_pairs,
                                 frequency_mix=frequency_mix, frequency_cutoff=frequency_cutoff,
                                 absolute_positions=absolute_positions, bidirectional_filter=bidirectional_filter,
                                 feed_forward_multiplier=feed_forward_multiplier, post_norm=post_norm)
        self.max_len, self.dim, self.time_buckets = max_len, dim, time_buckets
        self.items = nn.Embedding(num_items, dim, padding_idx=PAD)
        self.positions = nn.Embedding(max_len, dim) if absolute_positions else None
        self.surfaces = nn.Embedding(num_surfaces + 1, dim, padding_idx=PAD)
        self.outcomes = nn.Embedding(3, dim, padding_idx=PAD)
        self.input_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(CausalBlock(dim, heads, dropout, attention_dropout, frequency_mix,
                                                frequency_cutoff, max_len, bidirectional_filter,
                                                feed_forward_multiplier, post_norm)
                                    for _ in range(layers))
        # Post-norm: the embeddings are normalised on the way in and the last block's LayerNorm
        # is the output's; pre-norm: the stream is normalised once on the way out.
        self.post_norm = post_norm
        self.input_norm = nn.LayerNorm(dim) if post_norm else None
        self.output_norm = nn.Identity() if post_norm else nn.LayerNorm(dim)
        self.position_bias = nn.Embedding(max_len, heads) if relative_bias else None
        self.time_bias = nn.Embedding(time_buckets, heads) if relative_bias else None
        nn.init.normal_(self.items.weight, std=1 / math.sqrt(dim))
        with torch.no_grad():
            self.items.weight[PAD].zero_()
        self.attributes = nn.Embedding(num_attributes, dim) if attribute_pairs else None
        if self.attributes is not None:
            nn.init.normal_(self.attributes.weight, std=1 / math.sqrt(dim))
        if post_norm:
            self.apply(_bert_init)
        self.register_buffer("attribute_items", torch.zeros(attribute_pairs, dtype=torch.long))
        self.register_buffer("attribute_ids", torch.zeros(attribute_pairs, dtype=torch.long))
        self.register_buffer("attribute_weights", torch.zeros(attribute_pairs))

    def set_attributes(self, items, attribute_ids) -> "SequentialRecommender":
        """(item index, attribute index) pairs, as many as ``attribute_pairs``; each item's
        attributes are averaged."""
        items = torch.as_tensor(items, dtype=torch.long)
        ids = torch.as_tensor(attribute_ids, dtype=torch.long)
        if items.shape != (len(self.attribute_items),) or ids.shape != items.shape:
            raise ValueError(f"set_attributes: expected {len(self.attribute_items)} pairs, got {tuple(items.shape)}")
        if len(items) and (items.min() < FIRST_ITEM or items.max() >= self.items.num_embeddings
                           or ids.min() < 0 or ids.max() >= self.attributes.num_embeddings):
            raise ValueError("set_attributes: an item or attribute index is out of range")
        counts = torch.bincount(items, minlength=self.items.num_embeddings).float()
        with torch.no_grad():
            self.attribute_items.copy_(items)
            self.attribute_ids.copy_(ids)
            self.attribute_weights.copy_(1.0 / counts[items])
        return self

    def item_table(self) -> torch.Tensor:
        """[num_items, dim]: each item's vector, its attributes' mean embedding added."""
        if self.attributes is None:
            return self.items.weight
        added = self.attributes(self.attribute_ids) * self.attribute_weights[:, None]
        return self.items.weight.index_add(0, self.attribute_items, added)

    def attention_bias(self, items: torch.Tensor, times: torch.Tensor | None) -> torch.Tensor:
        """[B, 1 or H, L, L] additive mask: -inf where a query may not look (later positions,
        padding other than itself), plus the relative position and time biases."""
        length = items.size(1)
        index = torch.arange(length, device=items.device)
        causal = index[None, :] <= index[:, None]
        # A padding query attends to itself only: its output is never used, and a row with no
        # allowed key would be NaN.
        allowed = causal[None] & ((items != PAD)[:, None, :] | torch.eye(length, dtype=torch.bool,
                                                                         device=items.device)[None])
        bias = torch.zeros(allowed.shape, device=items.device).masked_fill(~allowed, float("-inf"))[:, None]
        if self.position_bias is not None:
            distance = (index[:, None] - index[None, :]).clamp(min=0)
            bias = bias + self.position_bias(distance).permute(2, 0, 1)[None]
            if times is not None:
                gap = times[:, :, None] - times[:, None, :]
                bias = bias + self.time_bias(log2_bucket(gap, self.time_buckets)).permute(0, 3, 1, 2)
        return bias

    def encode(self, items: torch.Tensor, surfaces: torch.Tensor | None = None,
               outcomes: torch.Tensor | None = None, times: torch.Tensor | None = None,
               table: torch.Tensor | None = None) -> torch.Tensor:
        """Left-padded [B, L] inputs (L <= max_len) -> [B, L, dim] outputs, one per position.
        ``table``: :meth:`item_table`, when the caller has it already (a training step needs it
        again for the loss; with attributes it is an index_add over every item)."""
        length = items.size(1)
        x = F.embedding(items, self.item_table() if table is None else table)
        if not self.post_norm:
            x = x * math.sqrt(self.dim)
        if self.positions is not None:
            x = x + self.positions(torch.arange(self.max_len - length, self.max_len, device=items.device))[None]
        if surfaces is not None:
            x = x + self.surfaces(surfaces)
        if outcomes is not None:
            x = x + self.outcomes(outcomes)
        if self.input_norm is not None:
            x = self.input_norm(x)
        real = (items != PAD)[..., None].to(x.dtype)
        x = self.input_dropout(x) * real
        bias = self.attention_bias(items, times)
        for block in self.blocks:
            x = block(x, bias, real)
        return self.output_norm(x)

    forward = encode

    def last_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The output at the last position: the user's state after their latest play."""
        return self.encode(batch["items"], batch.get("surfaces"), batch.get("outcomes"), batch.get("times"))[:, -1]

    def catalogue_scores(self, state: torch.Tensor) -> torch.Tensor:
        """[B, dim] states -> [B, num_items] scores; padding and the unknown index score -inf."""
        scores = state @ self.item_table().T
        scores[:, :FIRST_ITEM] = float("-inf")
        return scores


def _bert_init(module: nn.Module) -> None:
    """BSARec's (and BERT's) initialisation: weights N(0, 0.02), biases 0; padding stays 0."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def sequence_loss(model: SequentialRecommender, states: torch.Tensor, targets: torch.Tensor, loss: str,
                  negatives: int, gbce_t: float, generator: torch.Generator | None = None,
                  table: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss of [N, dim] position outputs against their [N] next items (all real items);
    ``table``: the step's :meth:`~SequentialRecommender.item_table`, if the caller has it."""
    weights = model.item_table() if table is None else table
    catalogue = weights.size(0) - FIRST_ITEM
    if negatives == 0 or negatives >= catalogue:
        if loss != "softmax":
            raise ValueError("gbce needs sampled negatives: set sequential.negatives below the catalogue size")
        return _CatalogueSoftmax.apply(states, weights[FIRST_ITEM:], targets - FIRST_ITEM)
    sampled = torch.randint(FIRST_ITEM, weights.size(0), (negatives,), device=states.device, generator=generator)
    positive = (states * weights[targets]).sum(-1)
    negative = (states @ weights[sampled].T).masked_fill(sampled[None, :] == targets[:, None], float("-inf"))
    if loss == "softmax":
        logits = torch.cat([positive[:, None], negative], dim=1)
        return F.cross_entropy(logits, torch.zeros_like(targets))
    alpha = negatives / (catalogue - 1)
    beta = alpha * (gbce_t * (1 - 1 / alpha) + 1 / alpha)
    return (-beta * F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)).mean()


class _CatalogueSoftmax(torch.autograd.Function):
    """Mean cross-entropy of [N, dim] states over all [V, dim] items, targets in 0..V-1.

    Same value and gradients as ``F.cross_entropy(states @ weights.T, targets)``, computed
    ``CHUNK`` rows at a time with the gradients formed in the forward pass: the [N, V] logits
    never exist at once, and each chunk's softmax stays in cache (about 2 x faster on CPU)."""

    CHUNK = 256

    @staticmethod
    def forward(ctx, states, weights, targets):
        rows = states.size(0)
        wanted = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        grad_states = torch.empty_like(states) if wanted else None
        grad_weights = torch.zeros_like(weights) if wanted else None
        total = states.new_zeros((), dtype=torch.float64)
        for start in range(0, rows, _CatalogueSoftmax.CHUNK):
            part = slice(start, start + _CatalogueSoftmax.CHUNK)
            chunk, chunk_targets = states[part], targets[part]
            logits = chunk @ weights.T
            top = logits.max(1, keepdim=True).values
            probabilities = logits.sub_(top).exp_()
            norm = probabilities.sum(1, keepdim=True)
            target_logits = (chunk * weights[chunk_targets]).sum(1)
            total += (norm.log() + top).squeeze(1).sub(target_logits).sum().double()
            if wanted:
                probabilities.div_(norm)
                probabilities[torch.arange(len(chunk_targets), device=states.device), chunk_targets] -= 1
                grad_states[part] = probabilities @ weights
                grad_weights.addmm_(probabilities.T, chunk)
        if wanted:
            ctx.save_for_backward(grad_states.div_(rows), grad_weights.div_(rows))
        return (total / max(rows, 1)).to(states.dtype)

    @staticmethod
    def backward(ctx, grad):
        grad_states, grad_weights = ctx.saved_tensors
        return grad_states * grad, grad_weights * grad, None
