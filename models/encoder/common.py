"""Pieces shared by the three encoders.

Every variable owns its own layers (published parameter names
``layers_var.<v>...`` / ``proj_var.<v>...``), but the forward pass runs all
variables at once: the per-variable weights are stacked on the fly (a few
hundred kilobytes, negligible next to the activations) and applied with
grouped convolutions or batched matrix products. That keeps ``state_dict()``
identical to the published checkpoints while avoiding a Python loop over the
variables' compute.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def stacked(modules: Sequence[nn.Module], name: str) -> Tensor:
    """``torch.stack`` of parameter ``name`` over per-variable modules ([V, *shape]); grads flow back."""
    return torch.stack([m.get_parameter(name) for m in modules])


def grouped_conv3d_replicate(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int) -> Tensor:
    """``Conv3d(padding=k//2, padding_mode='replicate', groups=groups)`` on stacked per-variable weights.

    (A custom backward computing the input gradient with the forward kernel was
    tried; on the shared 2-core CPU it was not faster, so the plain op stays.)
    """
    k = weight.shape[2:]
    pad = [p // 2 for p in reversed(k) for _ in (0, 1)]
    return F.conv3d(F.pad(x, pad, mode="replicate"), weight, bias, groups=groups)


def stacked_conv(modules: Sequence[nn.Module], prefix: str) -> tuple[Tensor, Tensor | None]:
    """Per-variable Conv3d weights/biases as one grouped-conv weight [V*out, in, k...] and bias [V*out]."""
    w = stacked(modules, f"{prefix}weight")
    w = w.reshape(-1, *w.shape[2:])
    conv = modules[0].get_submodule(prefix.rstrip("."))
    b = None
    if conv.bias is not None:
        b = stacked(modules, f"{prefix}bias").reshape(-1)
    return w, b


def per_var_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x [V, ..., in] times per-variable weight [V, out, in] (+ bias [V, out]) -> [V, ..., out]."""
    shape = x.shape
    x2 = x.reshape(shape[0], -1, shape[-1])
    if bias is not None:
        y = torch.baddbmm(bias.unsqueeze(1), x2, weight.transpose(1, 2))
    else:
        y = torch.bmm(x2, weight.transpose(1, 2))
    return y.view(*shape[:-1], weight.shape[1])


class PatchEmbed(nn.Module):
    """1x1x1 projection C -> D (published name ``downsample.proj``); parameter holder."""

    def __init__(self, in_channels: int, dim: int, bias: bool) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_channels, dim, kernel_size=1, bias=bias)


def make_proj_var(dim: int, out_dim: int) -> nn.Sequential:
    """The branch head ``Conv3d 3x3x3 -> ReLU -> Conv3d 3x3x3`` (replicate padding)."""
    return nn.Sequential(
        nn.Conv3d(dim, out_dim, 3, padding=1, padding_mode="replicate"),
        nn.ReLU(),
        nn.Conv3d(out_dim, out_dim, 3, padding=1, padding_mode="replicate"),
    )


def run_proj_var(proj_var: nn.ModuleList, h: Tensor, n_vars: int) -> Tensor:
    """Apply every variable's head at once. h [N, V*D, T, H, W] -> [N, V*D', T, H, W]."""
    w0, b0 = stacked_conv(proj_var, "0.")
    w2, b2 = stacked_conv(proj_var, "2.")
    h = F.relu(grouped_conv3d_replicate(h, w0, b0, n_vars))
    return grouped_conv3d_replicate(h, w2, b2, n_vars)


def check_patch_size(patch_size: Sequence[int]) -> None:
    """Refuse patch sizes other than (1, 1, 1): a driver flag is needed for every voxel."""
    if tuple(patch_size) != (1, 1, 1):
        raise ValueError(
            f"option 'en_patch_size' is {tuple(patch_size)}; only (1, 1, 1) is supported "
            "(driver flags are needed at full resolution)"
        )
