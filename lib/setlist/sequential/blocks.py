"""The transformer block of the sequential model (setlist.sequential.model), in two layouts.

- Pre-norm (the default; SASRec's PyTorch ports, GPT): each branch reads a LayerNorm of the
  residual stream and is added back to it; the model normalises its output once at the end.
- Post-norm (``post_norm``; BSARec's and BERT's layout): each branch reads the stream itself
  and a LayerNorm follows each residual sum: ``LN(x + dropout(attention(x)))``, the filter
  branch the same with its own LayerNorm, then ``LN(h + dropout(feed_forward(h)))`` with no
  dropout inside the feed-forward layer.

Frequency mixing (BSARec, Shin et al., AAAI 2024), with ``frequency_mix`` alpha > 0: each block's
attention branch is blended with a filter branch, ``alpha * filtered + (1 - alpha) * attention``.
BSARec low-passes the whole window in the Fourier domain (its ``c // 2 + 1`` lowest frequencies,
``frequency_cutoff`` = c) and adds back the high frequencies scaled by a learned beta^2 per
channel. That filter sees later positions, so here it is made causal: a position gets what
BSARec computes at the last position of a window that ends there. A circular filter's last row
depends only on the distance back, so this is a causal convolution whose kernel is the low-pass
filter's impulse response (:func:`low_pass_kernel`), and the output at the last position, the
one served, is BSARec's own. With ``bidirectional_filter`` (for training on prefix examples,
each trained at its last position only: nothing later is in the input) the filter is BSARec's
own over the whole window, so earlier positions' deeper inputs see the whole prefix too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def low_pass_kernel(length: int, cutoff: int, causal: bool = True) -> torch.Tensor:
    """[length, length] lower-triangular T, T[t, s] = h[t - s]: BSARec's low-pass (rfft over
    ``length`` positions, the ``cutoff // 2 + 1`` lowest frequencies kept, irfft) read at the last
    position of a window ending at t. ``T @ x`` at the last row equals the Fourier filter's.
    ``causal=False``: the filter's own (circulant) matrix, ``M @ x`` = the filtered window."""
    spectrum = torch.fft.rfft(torch.eye(length, dtype=torch.float64), dim=0, norm="ortho")
    spectrum[cutoff // 2 + 1:] = 0
    full = torch.fft.irfft(spectrum, n=length, dim=0, norm="ortho")
    if not causal:
        return full.float()
    last_row = full[-1]  # response at L-1 to each s
    response = last_row.flip(0)  # h[d]: weight of the play d positions back
    distance = torch.arange(length)[:, None] - torch.arange(length)[None, :]
    return torch.where(distance >= 0, response[distance.clamp(min=0)], 0.0).float()


class CausalBlock(nn.Module):
    """Self-attention and a point-wise feed-forward layer, both residual, pre- or post-norm; with
    ``frequency_mix`` > 0 the attention branch is blended with BSARec's (causal) filter branch."""

    def __init__(self, dim: int, heads: int, dropout: float, attention_dropout: float = 0.0,
                 frequency_mix: float = 0.0, frequency_cutoff: int = 3, max_len: int = 50,
                 bidirectional_filter: bool = False, feed_forward_multiplier: int = 1, post_norm: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"sequential.dim={dim} is not a multiple of sequential.heads={heads}")
        self.heads, self.dropout, self.post_norm = heads, attention_dropout, post_norm
        self.attention_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.feed_forward_norm = nn.LayerNorm(dim)
        inner = dim * feed_forward_multiplier
        self.feed_forward = nn.Sequential(nn.Linear(dim, inner), nn.GELU(), nn.Dropout(0.0 if post_norm else dropout),
                                          nn.Linear(inner, dim))
        self.residual_dropout = nn.Dropout(dropout)
        self.frequency_mix = frequency_mix
        if frequency_mix:
            self.frequency_beta = nn.Parameter(torch.randn(dim))  # BSARec's sqrt_beta
            self.filter_norm = nn.LayerNorm(dim) if post_norm else None
            self.register_buffer("low_pass", low_pass_kernel(max_len, frequency_cutoff, not bidirectional_filter),
                                 persistent=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``real``: [B, L, 1], 1 at real positions; padding is left out of the filter."""
        batch, length, dim = x.shape
        normed = x if self.post_norm else self.attention_norm(x)
        q, k, v = self.qkv(normed).view(batch, length, 3, self.heads, dim // self.heads).unbind(2)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=bias, dropout_p=self.dropout if self.training else 0.0)
        branch = self.projection(attended.transpose(1, 2).reshape(batch, length, dim))
        if self.post_norm:
            branch = self.attention_norm(x + self.residual_dropout(branch))
        if self.frequency_mix:
            signal = normed * real
            # A batch cut to its last ``length`` columns: the columns cut are padding (zero
            # signal), so the bottom-right block is the whole window's filter on what is left.
            low = torch.einsum("ts,bsd->btd", self.low_pass[-length:, -length:], signal)
            filtered = low + self.frequency_beta ** 2 * (signal - low)
            if self.post_norm:
                filtered = self.filter_norm(x + self.residual_dropout(filtered))
            branch = self.frequency_mix * filtered + (1 - self.frequency_mix) * branch
        if self.post_norm:
            return self.feed_forward_norm(branch + self.residual_dropout(self.feed_forward(branch)))
        x = x + self.residual_dropout(branch)
        return x + self.residual_dropout(self.feed_forward(self.feed_forward_norm(x)))
