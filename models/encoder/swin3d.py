"""Swin_3D encoder (video Swin, patch size 1, no downsampling), one branch per variable.

Activations live as tokens ``[V, N, T, H, W, C]`` so that every per-variable
linear layer is one batched matmul and every window attention over all
variables is one batched ``softmax(q k^T * scale + mask) v`` with an additive mask
(relative-position bias + shifted-window mask), as video Swin computes it, or on CUDA
one ``scaled_dot_product_attention`` call with the same mask (``en_attention``). Masks
and index tables are cached per input shape.

The window skeleton (:class:`WindowEncoder`) is shared with the Mamba encoder,
which replaces attention by a selective-state-space mixer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from models.encoder.common import (
    PatchEmbed,
    check_patch_size,
    make_proj_var,
    per_var_linear,
    run_proj_var,
    stacked,
)
from utils.option_sections import EncoderOptions

LN_EPS = 1e-5
Window = tuple[int, int, int]


# ---------------------------------------------------------------------------------------------
# window geometry (cached)
# ---------------------------------------------------------------------------------------------


def relative_position_index(window: Window) -> Tensor:
    """Video-Swin relative position index [Nt, Nt] of a (d, h, w) window into its (2d-1)(2h-1)(2w-1) table."""
    d, h, w = window
    coords = torch.stack(
        torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    ).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[..., 0] += d - 1
    rel[..., 1] += h - 1
    rel[..., 2] += w - 1
    rel[..., 0] *= (2 * h - 1) * (2 * w - 1)
    rel[..., 1] *= 2 * w - 1
    return rel.sum(-1)


def clamped_index(window: Window, used: Window) -> Tensor:
    """Index of a window clamped to ``used`` (<= window) into the full window's table (exact geometry)."""
    d, h, w = window
    coords = torch.stack(torch.meshgrid(*(torch.arange(u) for u in used), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (
        (rel[..., 0] + d - 1) * (2 * h - 1) * (2 * w - 1)
        + (rel[..., 1] + h - 1) * (2 * w - 1)
        + rel[..., 2]
        + w
        - 1
    )


def shift_mask(dims: Window, window: Window, shift: Window) -> Tensor:
    """Shifted-window attention mask [nWin, Nt, Nt] (0 or -100) for padded dims, as video Swin builds it."""
    img = torch.zeros(dims)
    cnt = 0
    ranges = [(slice(0, -w), slice(-w, -s), slice(-s, None)) for w, s in zip(window, shift)]
    for a in ranges[0]:
        for b in ranges[1]:
            for c in ranges[2]:
                img[a, b, c] = cnt
                cnt += 1
    win = partition(img[None, None, ..., None], window)[0, 0, ..., 0]  # [nWin, Nt]
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


def partition(x: Tensor, window: Window) -> Tensor:
    """[V, N, T, H, W, C] -> [V, N, nWin, Nt, C] (windows in (t, h, w) raster order, tokens likewise)."""
    v, n, t, h, w, c = x.shape
    a, b, e = window
    x = x.view(v, n, t // a, a, h // b, b, w // e, e, c).permute(0, 1, 2, 4, 6, 3, 5, 7, 8)
    return x.reshape(v, n, -1, a * b * e, c)


def reverse(x: Tensor, window: Window, dims: Window) -> Tensor:
    """Inverse of :func:`partition`: [V, N, nWin, Nt, C] -> [V, N, T, H, W, C]."""
    v, n = x.shape[:2]
    t, h, w = dims
    a, b, e = window
    c = x.shape[-1]
    x = x.view(v, n, t // a, h // b, w // e, a, b, e, c).permute(0, 1, 2, 5, 3, 6, 4, 7, 8)
    return x.reshape(v, n, t, h, w, c)


def effective_window(dims: Window, window: Window, shift: Window) -> tuple[Window, Window]:
    """Clamp windows larger than the input to it; no shift along such axes (video Swin rule)."""
    ws = tuple(min(w, s) for w, s in zip(window, dims))
    ss = tuple(0 if s <= w else sh for w, s, sh in zip(window, dims, shift))
    return ws, ss  # type: ignore[return-value]


def window_order(dims: Window, window: Window, shift: Window) -> tuple[Tensor, Tensor]:
    """Token permutation that rolls by -shift and partitions into windows, in one gather.

    Returns (perm, inv) over the flattened (t, h, w) grid: ``windows = x[perm]``
    lists each window's tokens in raster order (what roll + partition give), and
    ``x = windows[inv]`` undoes both.
    """
    grid = torch.arange(dims[0] * dims[1] * dims[2], dtype=torch.float32).view(1, 1, *dims, 1)
    rolled = torch.roll(grid, shifts=tuple(-s for s in shift), dims=(2, 3, 4)) if any(shift) else grid
    perm = partition(rolled, window).reshape(-1).long()
    return perm, torch.argsort(perm)


class _Gather(torch.autograd.Function):
    """x.index_select(2, perm) whose backward is a gather with the inverse permutation (no scatter-add)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor, inv: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(inv)
        return x.index_select(2, perm)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (inv,) = ctx.saved_tensors
        return grad.index_select(2, inv), None, None


def permute_tokens(x: Tensor, perm: Tensor, inv: Tensor) -> Tensor:
    """x [V, N, L, C] -> x[:, :, perm] (a bijection over L)."""
    return _Gather.apply(x, perm, inv)


# ---------------------------------------------------------------------------------------------
# parameter holders with the published names
# ---------------------------------------------------------------------------------------------


class Mlp(nn.Module):
    """Parameter holder of a block's MLP (``fc1``, ``fc2``), named as in the published checkpoints."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)


class WindowAttention3D(nn.Module):
    """Parameter holder of windowed self-attention with its relative-position bias table."""

    def __init__(self, dim: int, window: Window, n_heads: int, qkv_bias: bool) -> None:
        super().__init__()
        d, h, w = window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * d - 1) * (2 * h - 1) * (2 * w - 1), n_heads)
        )
        self.register_buffer("relative_position_index", relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)


class SwinBlock(nn.Module):
    """Parameter holder of one Swin block (attention and MLP), named as in the published checkpoints."""

    def __init__(self, dim: int, window: Window, n_heads: int, mlp_ratio: float, qkv_bias: bool) -> None:
        super().__init__()
        self.attn = WindowAttention3D(dim, window, n_heads, qkv_bias)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class WindowStage(nn.Module):
    """The blocks of one stage and, where the width changes, its patch embedding (``downsample``)."""

    def __init__(self, blocks: list[nn.Module], in_channels: int | None, dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        if in_channels is not None:
            self.downsample = PatchEmbed(in_channels, dim, bias=True)


# ---------------------------------------------------------------------------------------------
# the shared window encoder
# ---------------------------------------------------------------------------------------------


class WindowEncoder(nn.Module):
    """Patch embedding + LayerNorm, stages of (pre-norm mixer, pre-norm MLP) blocks, branch head."""

    def __init__(self, cfg: EncoderOptions, n_vars: int, in_channels: int, out_dim: int,
                 make_block: Callable[[int, int, int], nn.Module]) -> None:
        super().__init__()
        check_patch_size(cfg.en_patch_size)
        dims = list(cfg.en_embed_dim)
        self.n_vars = n_vars
        self.windows: list[Window] = [tuple(w) for w in cfg.en_window_size]
        self.depths = list(cfg.en_depths)
        self.dims = dims
        self.drop_rate, self.use_checkpoint = cfg.en_drop_rate, cfg.en_use_checkpoint
        total = sum(self.depths)
        self.drop_path = [cfg.en_drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages = []
        for _ in range(n_vars):
            var_stages = []
            for s, (dim, depth) in enumerate(zip(dims, self.depths)):
                in_ch = in_channels if s == 0 else (dims[s - 1] if dims[s - 1] != dim else None)
                var_stages.append(WindowStage([make_block(s, b, dim) for b in range(depth)], in_ch, dim))
            stages.append(nn.ModuleList(var_stages))
        self.layers_var = nn.ModuleList(stages)
        self.proj_var = nn.ModuleList(make_proj_var(dims[-1], out_dim) for _ in range(n_vars))
        self._cache: dict[tuple, Tensor] = {}

    # ----- cached geometry -----
    def cached(self, key: tuple, make: Callable[[], Any], device: torch.device) -> Any:
        """Geometry (indices, masks) per input shape and device, built once."""
        key = key + (str(device),)
        if key not in self._cache:
            val = make()
            self._cache[key] = tuple(t.to(device) for t in val) if isinstance(val, tuple) else val.to(device)
        return self._cache[key]

    def _embed(self, x: Tensor, stage: list[nn.Module]) -> Tensor:
        w = stacked(stage, "downsample.proj.weight").flatten(2)  # [V, D, C]
        b = stacked(stage, "downsample.proj.bias")
        return per_var_linear(x, w, b)

    def forward(self, x: Tensor) -> Tensor:
        """x [N, V, C, T, H, W] -> features [N, V, D, T, H, W]; each variable has its own weights."""
        n, v, c, t, h, w = x.shape
        if v != self.n_vars:
            raise ValueError(f"input has {v} variables but the model was built for {self.n_vars}")
        tok = x.permute(1, 0, 3, 4, 5, 2)  # [V, N, T, H, W, C]
        i_block = 0
        for s in range(len(self.dims)):
            stage = [m[s] for m in self.layers_var]
            if hasattr(stage[0], "downsample"):
                tok = self._embed(tok, stage)
                if s == 0:
                    tok = F.layer_norm(tok, (tok.shape[-1],), eps=LN_EPS)
            for b in range(self.depths[s]):
                blocks = [m.blocks[b] for m in stage]
                shift = tuple(k // 2 for k in self.windows[s]) if b % 2 else (0, 0, 0)
                args = (tok, blocks, self.windows[s], shift, self.drop_path[i_block])
                if self.use_checkpoint and self.training:
                    tok = checkpoint(self.block, *args, use_reentrant=False)
                else:
                    tok = self.block(*args)
                i_block += 1
        z = tok.permute(1, 0, 5, 2, 3, 4).reshape(n, -1, t, h, w)  # [N, V*D, T, H, W]
        z = run_proj_var(self.proj_var, z, v)
        return z.view(n, v, -1, t, h, w)

    def block(
        self, x: Tensor, blocks: list[nn.Module], window: Window, shift: Window, drop_path: float
    ) -> Tensor:
        """One pre-norm block (window mixer, then MLP) with padding, shift and stochastic depth."""
        dims = tuple(x.shape[2:5])
        ws, ss = effective_window(dims, window, shift)
        y = F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)
        pads = [(-d) % k for d, k in zip(dims, ws)]
        if any(pads):
            y = F.pad(y, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        pdims = tuple(y.shape[2:5])
        perm, inv = self.cached(("perm", pdims, ws, ss), lambda: window_order(pdims, ws, ss), y.device)
        v, n = y.shape[:2]
        win = permute_tokens(y.reshape(v, n, -1, y.shape[-1]), perm, inv)  # [V, N, nWin*Nt, C]
        nt = ws[0] * ws[1] * ws[2]
        win = self.mix(win.view(v, n, -1, nt, y.shape[-1]), blocks, window, ws, ss, pdims)
        y = permute_tokens(win.reshape(v, n, -1, win.shape[-1]), inv, perm).view(v, n, *pdims, -1)
        if any(pads):
            y = y[:, :, : dims[0], : dims[1], : dims[2]]
        x = x + self._drop_path(self._dropout(y), drop_path)
        y = F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)
        y = per_var_linear(y, stacked(blocks, "mlp.fc1.weight"), stacked(blocks, "mlp.fc1.bias"))
        y = self._dropout(F.gelu(y))
        y = per_var_linear(y, stacked(blocks, "mlp.fc2.weight"), stacked(blocks, "mlp.fc2.bias"))
        return x + self._drop_path(self._dropout(y), drop_path)

    def _dropout(self, y: Tensor) -> Tensor:
        return F.dropout(y, self.drop_rate, self.training) if self.drop_rate > 0 else y

    def _drop_path(self, y: Tensor, p: float) -> Tensor:
        if p <= 0 or not self.training:
            return y
        keep = (torch.rand(y.shape[0], y.shape[1], *([1] * (y.dim() - 2)), device=y.device) >= p).to(y.dtype)
        return y * keep / (1 - p)

    def mix(self, win: Tensor, blocks, window: Window, ws: Window, ss: Window, pdims: Window) -> Tensor:
        """Token mixer on windows [V, N, nWin, Nt, C] (already rolled by -shift) -> same shape."""
        raise NotImplementedError


class Swin3DEncoder(WindowEncoder):
    """x [N, V, C, T, H, W] -> z [N, V, D, T, H, W] with (shifted) 3-D window attention."""

    def __init__(self, cfg: EncoderOptions, n_vars: int, in_channels: int, out_dim: int) -> None:
        self.n_heads = list(cfg.en_n_heads)
        for dim, heads in zip(cfg.en_embed_dim, self.n_heads):
            if dim % heads:
                raise ValueError(f"option 'en_embed_dim' {dim} is not divisible by 'en_n_heads' {heads}")

        def make_block(s: int, b: int, dim: int) -> nn.Module:
            return SwinBlock(
                dim, tuple(cfg.en_window_size[s]), self.n_heads[s], cfg.en_mlp_ratio, cfg.en_qkv_bias
            )

        super().__init__(cfg, n_vars, in_channels, out_dim, make_block)
        self.qk_scale, self.attn_drop = cfg.en_qk_scale, cfg.en_attn_drop_rate
        self.attention = getattr(cfg, "en_attention", "auto")

    def mix(self, win: Tensor, blocks, window: Window, ws: Window, ss: Window, pdims: Window) -> Tensor:
        """Shifted-window multi-head self-attention within each window, all variables batched."""
        v, n, nw, nt, c = win.shape
        heads = blocks[0].attn.relative_position_bias_table.shape[1]
        hd = c // heads
        scale = self.qk_scale if self.qk_scale is not None else hd**-0.5
        qkv_w = stacked(blocks, "attn.qkv.weight")
        qkv_b = stacked(blocks, "attn.qkv.bias") if blocks[0].attn.qkv.bias is not None else None
        qkv = per_var_linear(win, qkv_w, qkv_b)  # [V, N, nWin, Nt, 3C]
        qkv = qkv.view(v, n, nw, nt, 3, heads, hd).permute(
            4, 0, 1, 2, 5, 3, 6
        )  # [3, V, N, nWin, heads, Nt, hd]
        q, k, val = qkv.unbind(0)
        idx = self.cached(("idx", window, ws), lambda: clamped_index(window, ws).reshape(-1), win.device)
        table = stacked(blocks, "attn.relative_position_bias_table")  # [V, R, heads]
        mask = (
            table[:, idx].view(v, 1, 1, nt, nt, heads).permute(0, 1, 2, 5, 3, 4)
        )  # [V, 1, 1, heads, Nt, Nt]
        if any(ss):
            sm = self.cached(("mask", pdims, ws, ss), lambda: shift_mask(pdims, ws, ss), win.device)
            mask = mask + sm[None, None, :, None].to(mask.dtype)  # [V, 1, nWin, heads, Nt, Nt]
        if self.attention == "fused" or (self.attention == "auto" and win.is_cuda):
            o = self._fused(q, k, val, mask, scale)
        else:
            attn = torch.matmul(q * scale, k.transpose(-2, -1))
            attn = torch.softmax(attn.add_(mask), dim=-1)
            if self.training and self.attn_drop > 0:
                attn = F.dropout(attn, self.attn_drop)
            o = torch.matmul(attn, val)
        o = o.transpose(-3, -2).reshape(v, n, nw, nt, c)
        return per_var_linear(o, stacked(blocks, "attn.proj.weight"), stacked(blocks, "attn.proj.bias"))

    def _fused(self, q: Tensor, k: Tensor, val: Tensor, mask: Tensor, scale: float) -> Tensor:
        """The same attention through ``F.scaled_dot_product_attention``, as 4-D [windows, heads, Nt, hd]
        batches (the layout its flash and memory-efficient CUDA kernels take; more dimensions fall back
        to the plain kernel). The additive mask is expanded to every window, in the query's dtype."""
        v, n, nw, heads, nt, hd = q.shape
        b = v * n * nw
        full = mask.expand(v, n, nw, heads, nt, nt).reshape(b, heads, nt, nt).to(q.dtype)
        o = F.scaled_dot_product_attention(
            q.reshape(b, heads, nt, hd), k.reshape(b, heads, nt, hd), val.reshape(b, heads, nt, hd),
            attn_mask=full, dropout_p=self.attn_drop if self.training else 0.0, scale=scale)
        return o.view(v, n, nw, heads, nt, hd)
