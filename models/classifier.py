"""3-D CNN extreme classifier: a joint head over all variables' codes plus one head per variable.

Each head is ``log2(T)`` convolutions with kernel (2, 3, 3), stride (2, 1, 1),
padding (0, 1, 1), ReLU between them, so T halves at every layer down to 1; the
last layer outputs one channel. For T = 8 this is the published
``conv1 -> conv2 -> conv3`` with the published names and shapes. The V
per-variable heads run as one grouped convolution over the same input.

``monotone_heads`` (off in the published model) makes each per-variable head an
evidence head: it reads the variable's flag coordinate (0 = normal code, 1 = the
driver code; straight-through in training) through non-negative weights (the
absolute values of its parameters) and leaky ReLUs, so a flag can only raise that
head's extreme logit, and every flag gets a gradient. A head of free sign gives a
switched-off variable a push of random sign, and a ReLU head whose units are off
gives none; an evidence head pushes the flags on where extremes are and off
elsewhere (docs/results/recipe.md, section 4). Parameter names and shapes are unchanged: conv1's
input channels are summed, as all D carry the same flag.

When the quantizer hands over its code channels (``AffineCodes``: z_q = W c + b with
c of k channels, k = 1 for the binary LFQ), the first layer's weights are folded with
W and b and convolve the k + 1 channels [c, 1] per variable instead of z_q's D: the
same linear map (zero padding included, as the constant channel is padded with zeros
too), so the outputs agree to float rounding and every parameter, W and b included,
gets the same gradient; on CPU the classifier's step is about half as long.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.codebook import AffineCodes
from models.encoder.common import stacked

SUPPORTED_T = (2, 4, 8, 16, 32)
EVIDENCE_SLOPE = 0.1  # leaky ReLU of the evidence heads: monotone, and no unit is ever without gradient
_K, _S, _P = (2, 3, 3), (2, 1, 1), (0, 1, 1)


def _n_layers(delta_t: int) -> int:
    if delta_t not in SUPPORTED_T:
        raise ValueError(
            f"option 'delta_t' is {delta_t}; the classifier halves time at every layer and takes "
            f"{', '.join(map(str, SUPPORTED_T))}"
        )
    return delta_t.bit_length() - 1


class _Head(nn.Module):
    """conv1..conv<k>: in -> hidden -> ... -> 1 (parameter holder with the published names)."""

    def __init__(self, in_dim: int, hidden: int, n_layers: int) -> None:
        super().__init__()
        self.n_layers = n_layers
        for i in range(n_layers):
            c_in = in_dim if i == 0 else hidden
            c_out = 1 if i == n_layers - 1 else hidden
            self.add_module(f"conv{i + 1}", nn.Conv3d(c_in, c_out, _K, stride=_S, padding=_P))


class ExtremeClassifier(nn.Module):
    """z_q [N, V, D, T, H, W] -> (logits [N, 1, H, W], heads [N, V, H, W])."""

    def __init__(
        self, n_vars: int, dim: int, hidden: int, delta_t: int, drop_rate: float = 0.0, monotone_heads: bool = False
    ) -> None:
        super().__init__()
        k = _n_layers(delta_t)
        self.n_vars, self.delta_t, self.n_conv, self.drop_rate = n_vars, delta_t, k, drop_rate
        self.monotone_heads = monotone_heads
        joint = _Head(n_vars * dim, n_vars * hidden, k)
        for i in range(k):  # published layout: cls.conv1.., cls.layers.<v>.conv1..
            self.add_module(f"conv{i + 1}", joint.get_submodule(f"conv{i + 1}"))
        self.layers = nn.ModuleList(_Head(dim, hidden, k) for _ in range(n_vars))

    def forward(
        self, z_q: Tensor, flags: Tensor | None = None, codes: AffineCodes | None = None,
        z_joint: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``flags`` [N, V, T, H, W] or [N, V, 1, T, H, W]: the flag coordinate, needed with ``monotone_heads``.
        ``codes``: z_q's code channels (the quantizer's ``quantize_with_codes``), used by the first layer.
        ``z_joint`` (shaped like z_q): what the joint head reads instead of z_q (the heads still read z_q)."""
        n, v, d, t, h, w = z_q.shape
        if t != self.delta_t:
            raise ValueError(f"classifier built for delta_t={self.delta_t} got T={t}")
        if self.monotone_heads and flags is None:
            raise ValueError("monotone_heads: the classifier needs the flag coordinate")
        x = z_q.reshape(n, v * d, t, h, w)
        fold = None
        if codes is not None:
            x, fold = _code_channels(codes)  # x [N, V*(k+1), T, H, W], fold [D, k+1]
        joint, heads = x, (flags.reshape(n, v, t, h, w) if self.monotone_heads else x)
        if z_joint is not None:
            joint = z_joint.reshape(n, v * d, t, h, w)
        for i in range(1, self.n_conv + 1):
            conv = self.get_submodule(f"conv{i}")
            wj = conv.weight
            if i == 1 and fold is not None and z_joint is None:
                wj = _fold(wj.unflatten(1, (v, d)), fold).flatten(1, 2)
            joint = F.conv3d(joint, wj, conv.bias, _S, _P)
            wh = stacked(self.layers, f"conv{i}.weight")
            if self.monotone_heads:
                wh = _evidence_weight(wh, first=i == 1)
            elif i == 1 and fold is not None:
                wh = _fold(wh, fold)
            wh = wh.flatten(0, 1)
            bh = stacked(self.layers, f"conv{i}.bias").flatten(0, 1)
            heads = F.conv3d(heads, wh, bh, _S, _P, groups=v)
            if i < self.n_conv:
                joint = F.relu(joint)
                heads = F.leaky_relu(heads, EVIDENCE_SLOPE) if self.monotone_heads else F.relu(heads)
                if self.drop_rate > 0:
                    joint = F.dropout(joint, self.drop_rate, self.training)
                    heads = F.dropout(heads, self.drop_rate, self.training)
        return joint[:, :, 0], heads[:, :, 0]


def _code_channels(codes: AffineCodes) -> tuple[Tensor, Tensor]:
    """[c, 1] per variable as [N, V*(k+1), T, H, W] and the map [W | b] [D, k+1] (just [N, V*k, ...]
    and W without a bias)."""
    c, weight, bias = codes
    n, v, k, t, h, w = c.shape
    if bias is None:
        return c.reshape(n, v * k, t, h, w), weight
    ones = c.new_ones(n, v, 1, t, h, w)
    return torch.cat([c, ones], 2).reshape(n, v * (k + 1), t, h, w), torch.cat([weight, bias[:, None]], 1)


def _fold(w: Tensor, fold: Tensor) -> Tensor:
    """Weights [A, B, D, kernel...] acting on z_q channels -> [A, B, k+1, kernel...] acting on [c, 1]."""
    return torch.einsum("abd...,dj->abj...", w, fold.to(w.dtype))


def _evidence_weight(w: Tensor, first: bool) -> Tensor:
    """Stacked head weights [V, out, in, k...] -> non-negative weights; conv1's D inputs summed to one.

    Scaled by 2 / sqrt(fan_in) so that at PyTorch's default initialisation (uniform within
    1 / sqrt(fan_in)) each layer's weights sum to about 1: the head starts near logit 0
    instead of a large positive one.
    """
    fan_in = w[0, 0].numel()
    w = w.abs() * (2.0 / fan_in**0.5)
    return w.sum(dim=2, keepdim=True) if first else w


def check_delta_t(delta_t: int) -> None:
    """Raise the classifier's clear error for an unsupported window length."""
    _n_layers(delta_t)
