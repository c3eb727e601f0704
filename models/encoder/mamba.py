"""Mamba encoder: the Swin_3D window skeleton with each window's attention replaced by a Mamba (v1) block.

Each window's tokens, flattened in (t, h, w) raster order, form one sequence
(32 tokens for a (2, 4, 4) window, 8 for (8, 1, 1)). Parameter names follow
``mamba_ssm.Mamba`` v1 (``ssm.in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``,
``A_log``, ``D``, ``out_proj``) so published checkpoints load. All variables
run in one pass: per-variable linear layers as batched matmuls, the causal
depthwise conv as one grouped conv1d, and one selective scan whose channels are
the V * d_inner channels (B and C grouped per variable).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.encoder.common import per_var_linear, stacked
from models.encoder.selective_scan import kernel_importable, selective_scan
from models.encoder.swin3d import Mlp, Window, WindowEncoder
from utils.option_sections import EncoderOptions


class MambaMixer(nn.Module):
    """Parameter holder with mamba_ssm.Mamba (v1) names; init follows mamba_ssm (dt, A, D)."""

    def __init__(
        self, dim: int, d_state: int, d_conv: int, expand: int, dt_min: float, dt_max: float
    ) -> None:
        super().__init__()
        d_inner = expand * dim
        self.d_inner, self.d_state, self.dt_rank = d_inner, d_state, math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self.out_proj = nn.Linear(d_inner, dim, bias=False)
        self.A_log = nn.Parameter(
            torch.log(torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1))
        )
        self.D = nn.Parameter(torch.ones(d_inner))
        self.dt_min, self.dt_max = dt_min, dt_max
        self.reset_dt()

    @torch.no_grad()
    def reset_dt(self) -> None:
        """mamba_ssm's dt init: weight U(+-rank^-0.5), bias softplus^-1(dt), dt log-uniform in range."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        lo, hi = math.log(self.dt_min), math.log(self.dt_max)
        dt = torch.exp(torch.rand(self.d_inner) * (hi - lo) + lo).clamp(min=1e-4)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))


class MambaBlock(nn.Module):
    """Parameter holder of one block (selective-scan mixer and MLP), with the published names."""

    def __init__(self, dim: int, mlp_ratio: float, **ssm_kwargs) -> None:
        super().__init__()
        self.ssm = MambaMixer(dim, **ssm_kwargs)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))


class MambaEncoder(WindowEncoder):
    """x [N, V, C, T, H, W] -> z [N, V, D, T, H, W] with window-wise selective state-space mixing."""

    def __init__(self, cfg: EncoderOptions, n_vars: int, in_channels: int, out_dim: int) -> None:
        def make_block(s: int, b: int, dim: int) -> nn.Module:
            return MambaBlock(
                dim,
                cfg.en_mlp_ratio,
                d_state=cfg.d_state[s],
                d_conv=cfg.d_conv[s],
                expand=cfg.expand[s],
                dt_min=cfg.dt_min,
                dt_max=cfg.dt_max,
            )

        if cfg.mamba_impl == "kernel" and not kernel_importable():
            raise ValueError(
                "option 'mamba_impl' is 'kernel' but mamba_ssm is not importable; install requirements-gpu.txt "
                "on a CUDA machine or use mamba_impl auto (the PyTorch scan where the kernel is missing)"
            )
        super().__init__(cfg, n_vars, in_channels, out_dim, make_block)
        self.impl = cfg.mamba_impl

    def mix(self, win: Tensor, blocks, window: Window, ws: Window, ss: Window, pdims: Window) -> Tensor:
        """Selective state-space scan over each window's tokens, all variables' blocks at once."""
        v, n, nw, length = win.shape[:4]
        bw = n * nw
        ssm = [b.ssm for b in blocks]
        m0 = ssm[0]
        di, ds, r = m0.d_inner, m0.d_state, m0.dt_rank
        xz = per_var_linear(win.reshape(v, bw, length, -1), stacked(ssm, "in_proj.weight"), None)
        x, z = xz.split(di, dim=-1)  # [V, Bw, L, di]

        def channels(t: Tensor) -> Tensor:  # [V, Bw, L, k] -> [Bw, V*k, L]
            return t.permute(1, 0, 3, 2).reshape(bw, -1, length)

        def per_var(t: Tensor, k: int) -> Tensor:  # [Bw, V*k, L] -> [V, Bw, L, k]
            return t.view(bw, v, k, length).permute(1, 0, 3, 2)

        cw = stacked(ssm, "conv1d.weight").flatten(0, 1)  # [V*di, 1, K]
        cb = stacked(ssm, "conv1d.bias").flatten()
        xc = F.conv1d(channels(x), cw, cb, padding=cw.shape[-1] - 1, groups=v * di)[..., :length]
        xc = F.silu(xc)  # [Bw, V*di, L]
        dbl = per_var_linear(per_var(xc, di), stacked(ssm, "x_proj.weight"), None)  # [V, Bw, L, r+2S]
        dt, bmat, cmat = dbl.split([r, ds, ds], dim=-1)
        dt = per_var_linear(dt, stacked(ssm, "dt_proj.weight"), None)  # [V, Bw, L, di]
        bmat = bmat.permute(1, 0, 3, 2)  # [Bw, V, S, L]: one B per variable (group)
        cmat = cmat.permute(1, 0, 3, 2)
        a = -torch.exp(stacked(ssm, "A_log").flatten(0, 1).float())  # [V*di, S]
        out = selective_scan(
            xc,
            channels(dt),
            a,
            bmat,
            cmat,
            D=stacked(ssm, "D").flatten().float(),
            z=channels(z),
            delta_bias=stacked(ssm, "dt_proj.bias").flatten().float(),
            delta_softplus=True,
            impl=self.impl,
        )  # [Bw, V*di, L]
        out = per_var_linear(per_var(out, di), stacked(ssm, "out_proj.weight"), None)  # [V, Bw, L, C]
        return out.reshape(v, n, nw, length, -1)
