"""The pure-PyTorch selective scan against a naive step-by-step recurrence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.encoder.selective_scan import kernel_available, linear_scan, selective_scan, selective_scan_torch


def naive_scan(u, delta, A, B, C, D, z, delta_bias):
    """h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t ; y_t = C_t h_t + D u_t ; y *= silu(z), one step at a time."""
    b, d, length = u.shape
    g = B.shape[1]
    dt = F.softplus(delta + delta_bias[None, :, None])
    h = torch.zeros(b, d, A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(length):
        bt = B[:, :, :, t].repeat_interleave(d // g, dim=1)  # [b, d, S]
        ct = C[:, :, :, t].repeat_interleave(d // g, dim=1)
        h = torch.exp(dt[:, :, t, None] * A) * h + dt[:, :, t, None] * bt * u[:, :, t, None]
        ys.append((h * ct).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, -1) * F.silu(z)


@pytest.mark.parametrize("length", [1, 5, 8, 32])
def test_selective_scan_matches_recurrence(length):
    g = torch.Generator().manual_seed(length)
    b, groups, per, s = 3, 2, 4, 2
    d = groups * per
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    u, delta, z = r(b, d, length), r(b, d, length), r(b, d, length)
    A = -torch.exp(r(d, s))
    B, C = r(b, groups, s, length), r(b, groups, s, length)
    D, bias = r(d), r(d)
    y = selective_scan_torch(
        u.float(),
        delta.float(),
        A.float(),
        B.float(),
        C.float(),
        D.float(),
        z.float(),
        bias.float(),
        delta_softplus=True,
    )
    ref = naive_scan(u, delta, A, B, C, D, z, bias)
    torch.testing.assert_close(y.double(), ref, atol=1e-5, rtol=1e-4)


def test_shared_b_c_and_grad():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 4, 8, generator=g, requires_grad=True)
    delta = torch.randn(2, 4, 8, generator=g)
    A = -torch.rand(4, 1, generator=g) - 0.5
    B, C = torch.randn(2, 1, 8, generator=g), torch.randn(2, 1, 8, generator=g)
    y3 = selective_scan(u, delta, A, B, C, impl="torch")
    y4 = selective_scan(u, delta, A, B[:, None], C[:, None], impl="torch")
    torch.testing.assert_close(y3, y4)
    y3.sum().backward()
    assert torch.isfinite(u.grad).all()


def test_linear_scan_long_sequence_is_stable():
    a = torch.full((1, 100, 1), 0.999)
    x = torch.ones(1, 100, 1)
    h = linear_scan(a, x)
    ref = torch.tensor([sum(0.999**k for k in range(t + 1)) for t in range(100)])
    torch.testing.assert_close(h[0, :, 0], ref, atol=1e-4, rtol=1e-5)


def test_kernel_without_mamba_ssm_is_a_clear_error():
    from models.encoder import selective_scan as mod

    if mod._kernel_scan is not None:
        pytest.skip("mamba_ssm is installed")
    u = torch.zeros(1, 2, 3)
    with pytest.raises(RuntimeError, match="mamba_impl"):
        selective_scan(u, u, -torch.ones(2, 1), torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), impl="kernel")


needs_kernel = pytest.mark.skipif(
    not kernel_available(),
    reason="needs CUDA and mamba_ssm (requirements-gpu.txt): compares the CUDA kernel with the PyTorch scan",
)


@needs_kernel
@pytest.mark.parametrize("groups", [0, 1, 2])
def test_kernel_matches_torch_scan_values_and_gradients(groups):
    g = torch.Generator(device="cuda").manual_seed(groups)
    b, d, s, length = 3, 16, 4, 32
    r = lambda *shape: torch.randn(*shape, generator=g, device="cuda")  # noqa: E731
    shape_bc = (b, s, length) if groups == 0 else (b, groups, s, length)
    u, delta, z = r(b, d, length), r(b, d, length), r(b, d, length)
    inputs = [u, delta, -torch.exp(r(d, s)), r(*shape_bc), r(*shape_bc), r(d), z, r(d)]
    outs = []
    for impl in ("torch", "kernel"):
        leaves = [x.clone().requires_grad_(True) for x in inputs]
        y = selective_scan(*leaves, delta_softplus=True, impl=impl)
        (y * torch.linspace(-1, 1, length, device="cuda")).sum().backward()
        outs.append((y.detach(), [x.grad for x in leaves]))
    (y_t, g_t), (y_k, g_k) = outs
    torch.testing.assert_close(y_k, y_t, atol=1e-4, rtol=1e-4)
    for a, b_ in zip(g_k, g_t):
        torch.testing.assert_close(a, b_, atol=1e-3, rtol=1e-3)


@needs_kernel
def test_mamba_encoder_same_outputs_with_kernel_and_torch():
    from models import build_model
    from tests.test_models import tiny_cfg

    torch.manual_seed(0)
    model = build_model(tiny_cfg(encoder="Mamba")).cuda().eval()
    x = torch.randn(2, 2, 1, 4, 8, 8, device="cuda")
    outs = {}
    for impl in ("torch", "kernel"):
        for m in model.modules():
            if hasattr(m, "impl"):
                m.impl = impl
        with torch.no_grad():
            outs[impl] = model(x)
    torch.testing.assert_close(outs["kernel"].logits, outs["torch"].logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(outs["kernel"].z_q, outs["torch"].z_q, atol=1e-4, rtol=1e-4)
