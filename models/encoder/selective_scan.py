"""Selective scan (Mamba v1 S6) in pure PyTorch, with the ``mamba_ssm`` CUDA kernel when available.

Same signature and semantics as ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``:

    u, delta, z   [B, D, L]
    A             [D, S]        (real, negative: A = -exp(A_log))
    B, C          [B, S, L] or [B, G, S, L] (G groups of D/G channels each)
    D, delta_bias [D]
    delta = softplus(delta + delta_bias) if delta_softplus
    h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t ;  y_t = C_t . h_t + D u_t ;  y *= SiLU(z)

The PyTorch version is vectorised over batch, channels and states and runs a
Hillis-Steele parallel scan over the (short) sequence: log2(L) steps of
``h[t] = a[t] h[t-k] + h[t]`` with ``a[t] = a[t] a[t-k]``, which is exact (all
factors are in (0, 1]) and differentiable by autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from utils.errors import ConfigError

try:  # optional CUDA kernel
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn as _kernel_scan  # type: ignore
except Exception:  # noqa: BLE001 - any import failure means "no kernel"
    _kernel_scan = None


class KernelUnavailable(ConfigError, RuntimeError):
    """``mamba_impl kernel`` where the kernel cannot run: a user error (one line), still a RuntimeError."""


def kernel_importable() -> bool:
    """Whether mamba_ssm's scan imported (it still needs CUDA inputs to run)."""
    return _kernel_scan is not None


def kernel_available() -> bool:
    """Whether mamba_ssm's CUDA scan can run here (``mamba_impl auto`` uses it then)."""
    return _kernel_scan is not None and torch.cuda.is_available()


def _expand_groups(m: Tensor, d: int) -> Tensor:
    """B/C [B, S, L] or [B, G, S, L] -> [B, D, L, S] (each group shared by D/G channels)."""
    if m.dim() == 3:
        return m.transpose(1, 2).unsqueeze(1)  # [B, 1, L, S] broadcasts over D
    b, g, s, length = m.shape
    return m.permute(0, 1, 3, 2).unsqueeze(2).expand(b, g, d // g, length, s).reshape(b, d, length, s)


def linear_scan(a: Tensor, x: Tensor) -> Tensor:
    """h[..., t, :] = a[..., t, :] * h[..., t-1, :] + x[..., t, :] with h[-1] = 0, along dim -2."""
    length = a.shape[-2]
    k = 1
    while k < length:
        x = torch.cat([x[..., :k, :], torch.addcmul(x[..., k:, :], a[..., k:, :], x[..., :-k, :])], dim=-2)
        if 2 * k < length:
            a = torch.cat([a[..., :k, :], a[..., k:, :] * a[..., :-k, :]], dim=-2)
        k *= 2
    return x


def selective_scan_torch(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
) -> Tensor:
    """Reference-exact selective scan on any device (see module docstring)."""
    dtype = u.dtype
    u, delta = u.float(), delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    d = u.shape[1]
    dt = delta.unsqueeze(-1)  # [B, D, L, 1]
    a = torch.exp(dt * A.float()[None, :, None, :])  # [B, D, L, S]
    bx = dt * _expand_groups(B.float(), d) * u.unsqueeze(-1)  # [B, D, L, S]
    h = linear_scan(a, bx)
    y = (h * _expand_groups(C.float(), d)).sum(-1)  # [B, D, L]
    if D is not None:
        y = y + u * D.float()[None, :, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    impl: str = "auto",
) -> Tensor:
    """Dispatch: ``impl`` = 'auto' (kernel on CUDA if importable, else PyTorch), 'torch' or 'kernel'."""
    if impl == "kernel" or (impl == "auto" and u.is_cuda and _kernel_scan is not None):
        if _kernel_scan is None:
            raise KernelUnavailable(
                "option 'mamba_impl' is 'kernel' but mamba_ssm is not importable; install "
                "requirements-gpu.txt on a CUDA machine or use mamba_impl 'auto'/'torch'"
            )
        if not u.is_cuda:
            raise KernelUnavailable(
                "option 'mamba_impl' is 'kernel' but the input is not on a CUDA device; use mamba_impl auto "
                "or a CUDA device"
            )
        return _kernel_scan(
            u.contiguous(),
            delta.contiguous(),
            A.contiguous(),
            B.contiguous(),
            C.contiguous(),
            D,
            z.contiguous() if z is not None else None,
            delta_bias,
            delta_softplus,
        )
    if impl not in ("auto", "torch"):
        raise ValueError(f"option 'mamba_impl' is {impl!r}; choose auto, torch or kernel")
    return selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
