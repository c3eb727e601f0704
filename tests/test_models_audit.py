"""Audit checks of the encoders and baselines against independent references and hand-computed cases.

- Swin_3D's batched window attention against a plain video-Swin block (pad, roll, partition, softmax
  with the shifted-window mask) on sizes that need padding, shifting and clamping.
- OCSVM / Isolation Forest scored in torch against scikit-learn's own scores.
- Integrated gradients with one step against the hand-computed midpoint rule.
- Baseline options that would crash only after the training epoch are refused at build.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from config import Config
from models.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def cfg(method: str, **kw) -> Config:
    base = dict(method=method, encoder="CNN_3D", variables=["a", "b"], in_channels_dynamic=2, delta_t=4,
                en_window_size=[(2, 4, 4), (4, 1, 1)], oneclass_n_fit=300, iforest_n_estimators=10,
                mil_hidden=[8, 8], uniad_hidden=24, ig_n_steps=2, seed=3)
    base.update(kw)
    return Config(**base)


# ------------------------------------------------------------------------------------------------
# Swin_3D against a plain video-Swin block
# ------------------------------------------------------------------------------------------------


def _partition(x: torch.Tensor, ws: tuple[int, int, int]) -> torch.Tensor:
    b, d, h, w, c = x.shape
    x = x.view(b, d // ws[0], ws[0], h // ws[1], ws[1], w // ws[2], ws[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, ws[0] * ws[1] * ws[2], c)


def _reverse(win: torch.Tensor, ws: tuple[int, int, int], dims: tuple[int, ...]) -> torch.Tensor:
    b, d, h, w = dims
    x = win.view(b, d // ws[0], h // ws[1], w // ws[2], ws[0], ws[1], ws[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, w, -1)


def _region_mask(dims: tuple[int, int, int], ws: tuple[int, int, int], ss: tuple[int, int, int]) -> torch.Tensor:
    """Video Swin's compute_mask: tokens of different pre-roll regions may not attend to each other."""
    img = torch.zeros((1, *dims, 1))
    cnt = 0
    cuts = [(slice(-w), slice(-w, -s), slice(-s, None)) for w, s in zip(ws, ss)]
    for a in cuts[0]:
        for b in cuts[1]:
            for c in cuts[2]:
                img[:, a, b, c] = cnt
                cnt += 1
    win = _partition(img, ws).squeeze(-1)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0)


def _plain_swin_block(x, blk, window, shift, heads):
    """One video-Swin block of one variable, x [N, T, H, W, C], written as the reference code is."""
    from models.encoder.swin3d import clamped_index, effective_window

    n, t, h, w, c = x.shape
    ws, ss = effective_window((t, h, w), window, shift)
    y = F.layer_norm(x, (c,), eps=1e-5)
    pads = [(-s) % k for s, k in zip((t, h, w), ws)]
    y = F.pad(y, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
    pdims = tuple(y.shape[1:4])
    if any(ss):
        y = torch.roll(y, shifts=tuple(-s for s in ss), dims=(1, 2, 3))
    win = _partition(y, ws)
    nb, nt, _ = win.shape
    qkv = blk.attn.qkv(win).reshape(nb, nt, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = (qkv[0] * (c // heads) ** -0.5) @ qkv[1].transpose(-2, -1)
    bias = blk.attn.relative_position_bias_table[clamped_index(window, ws).reshape(-1)]
    attn = attn + bias.reshape(nt, nt, -1).permute(2, 0, 1).unsqueeze(0)
    if any(ss):
        mask = _region_mask(pdims, ws, ss)
        attn = (attn.view(-1, mask.shape[0], heads, nt, nt) + mask[None, :, None]).view(-1, heads, nt, nt)
    o = blk.attn.proj((attn.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(nb, nt, c))
    y = _reverse(o, ws, (n, *pdims))
    if any(ss):
        y = torch.roll(y, shifts=ss, dims=(1, 2, 3))
    x = x + y[:, :t, :h, :w]
    return x + blk.mlp.fc2(F.gelu(blk.mlp.fc1(F.layer_norm(x, (c,), eps=1e-5))))


@pytest.mark.parametrize("attention", ["matmul", "fused"])
@pytest.mark.parametrize("dims", [(8, 16, 16), (8, 5, 7), (6, 9, 6), (8, 3, 6), (3, 2, 9)])
def test_swin_blocks_equal_a_plain_video_swin_block(dims, attention):
    """Padding to window multiples, the shifted-window mask at the borders and windows clamped to a
    small input: every block, both variables, equal to the plain per-window computation, with the
    batched matmul and with ``scaled_dot_product_attention``."""
    from models.encoder.swin3d import Swin3DEncoder
    from utils.option_sections import EncoderOptions

    torch.manual_seed(0)
    options = Config(encoder="Swin_3D", en_attention=attention).section(EncoderOptions)
    enc = Swin3DEncoder(options, 2, 1, 16).eval()
    for p in enc.parameters():  # large random weights: a wrong mask or bias entry shows
        torch.nn.init.normal_(p, std=0.3)
    tok = torch.randn(2, 2, *dims, 16)  # [V, N, T, H, W, C]
    with torch.no_grad():
        for s, window in enumerate(enc.windows):
            for b in range(enc.depths[s]):
                shift = tuple(k // 2 for k in window) if b % 2 else (0, 0, 0)
                blocks = [m[s].blocks[b] for m in enc.layers_var]
                ours = enc.block(tok, blocks, window, shift, 0.0)
                ref = torch.stack([_plain_swin_block(tok[v], blocks[v], window, shift, 2) for v in range(2)])
                torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_fused_and_matmul_attention_give_the_same_gradients():
    """The whole Swin_3D encoder, forward and backward: ``en_attention fused`` and ``matmul`` agree on
    the output and on every weight's gradient (float32, one set of weights)."""
    from models.encoder.swin3d import Swin3DEncoder
    from utils.option_sections import EncoderOptions

    torch.manual_seed(0)
    x = torch.randn(2, 2, 1, 8, 9, 7)  # [N, V, C, T, H, W]: padding and shifted windows at the borders
    grads, outs = [], []
    for attention in ("matmul", "fused"):
        torch.manual_seed(1)
        enc = Swin3DEncoder(Config(encoder="Swin_3D", en_attention=attention).section(EncoderOptions), 2, 1, 16)
        out = enc(x)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({k: p.grad.clone() for k, p in enc.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-4)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], atol=1e-5, rtol=1e-3, msg=k)


def test_mamba_kernel_without_mamba_ssm_is_refused_at_build():
    from models import build_model
    from models.encoder import selective_scan as mod
    from utils.errors import UserError

    if mod.kernel_importable():
        pytest.skip("mamba_ssm is installed")
    with pytest.raises(ValueError, match="option 'mamba_impl' is 'kernel' but mamba_ssm is not importable"):
        build_model(Config(encoder="Mamba", mamba_impl="kernel"))
    u = torch.zeros(1, 2, 3)
    with pytest.raises(UserError, match="mamba_impl"):  # one line from the entry scripts, not a traceback
        mod.selective_scan(u, u, -torch.ones(2, 1), torch.zeros(1, 1, 3), torch.zeros(1, 1, 3), impl="kernel")


# ------------------------------------------------------------------------------------------------
# one-class baselines against scikit-learn
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ocsvm", "iforest"])
def test_torch_scores_equal_scikit_learn(method):
    """The fitted state kept as tensors scores as scikit-learn does (higher = more outlying)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    c = cfg(method)
    model = build_method(c)
    data = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 300, 3))).float()
    model._pool = [data]
    model.fit_epoch_end(0)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(c.seed))  # the model's subsample
    fit = data[1, order].double().numpy()
    query = np.random.default_rng(1).standard_normal((400, 3)) * 2
    ours = model._score_var(torch.from_numpy(query).float(), 1).double().numpy()
    if method == "ocsvm":
        ref = -OneClassSVM(gamma=1 / (3 * fit.var()), nu=c.ocsvm_nu).fit(fit).decision_function(query)
    else:
        ref = -IsolationForest(n_estimators=c.iforest_n_estimators, random_state=c.seed).fit(fit).score_samples(query)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_oneclass_fit_without_normal_pixels_is_a_one_line_error():
    from utils.errors import ConfigError

    model = build_method(cfg("iforest")).train()
    model.fit_epoch_start(0)
    x = torch.randn(1, 2, 1, 4, 4, 4)
    batch = {"x": x, "mask_extreme_loss": torch.ones(1, 4, 4), "mask_extreme": torch.ones(1, 4, 4)}
    model.compute_loss(model(x), batch)  # every pixel has an extreme: nothing to gather
    with pytest.raises(ConfigError, match="no valid pixel without an extreme"):
        model.fit_epoch_end(0)


def test_simplenet_learns_from_valid_pixels_only(monkeypatch):
    """Invalid pixels (real data's mask_valid) are not normal data: none reaches the discriminator."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_method(cfg("simplenet", simplenet_proj_dim=8)).train()
    rows = []
    real = model.discriminator.forward
    monkeypatch.setattr(model.discriminator, "forward", lambda f: (rows.append(len(f)), real(f))[1])
    x = torch.randn(1, 2, 1, 4, 4, 4)
    valid = torch.zeros(1, 4, 4)
    valid[0, :3, :2] = 1  # 6 valid pixels
    batch = {"x": x, "mask_extreme_loss": torch.zeros(1, 4, 4), "mask_valid": valid}
    model.compute_loss(model(x), batch)
    assert rows == [2 * 6 * 2 * 4]  # true and noisy features of 6 pixels x 2 variables x 4 weeks
    loss, _ = model.compute_loss(model(x), {**batch, "mask_valid": torch.zeros(1, 4, 4)})
    assert float(loss) == 0.0 and not loss.requires_grad  # nothing valid: the step is skipped


# ------------------------------------------------------------------------------------------------
# integrated gradients
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ig1", "ig2"])
def test_integrated_gradients_one_step_is_the_midpoint_rule(method):
    """With one step, IG = (x - baseline) * grad at the midpoint of the path, of the logits summed over
    the pixels predicted extreme, summed over channels. ig1: zero baseline; ig2: the window's mean."""
    torch.manual_seed(0)
    model = build_method(cfg(method, ig_n_steps=1, in_channels=2)).eval()
    x = torch.randn(2, 2, 2, 4, 5, 5)
    with torch.no_grad():
        logits, _ = model.logits(x)
    model.pred_threshold = float(torch.sigmoid(logits).median())  # some pixels in, some out
    base = torch.zeros_like(x) if method == "ig1" else x.mean(3, keepdim=True).expand_as(x)
    mid = (base + 0.5 * (x - base)).requires_grad_(True)
    chosen = (torch.sigmoid(logits) >= model.pred_threshold).float()
    (model.logits(mid)[0] * chosen).sum().backward()
    want = ((x - base) * mid.grad).sum(2)
    torch.testing.assert_close(model.attributions(x, logits), want, atol=1e-5, rtol=1e-4)


def test_integrated_gradients_train_with_the_loss_weighting_option():
    from models.losses import weighted_bce

    model = build_method(cfg("ig1", loss_weighting="balanced")).train()
    x = torch.randn(2, 2, 1, 4, 6, 6)
    target = torch.zeros(2, 6, 6)
    target[:, :2] = 1
    out = model(x)
    loss, _ = model.compute_loss(out, {"mask_extreme": target})
    want = weighted_bce(out.logits, target, None, "balanced") + weighted_bce(out.extra["heads"], target, None,
                                                                              "balanced")
    torch.testing.assert_close(loss, want)


# ------------------------------------------------------------------------------------------------
# options refused at build (and, for training, before any data are loaded)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, option, value, message", [
    ("iforest", "oneclass_window", 2, "option 'oneclass_window' is 2; the weeks are centred"),
    ("ocsvm", "oneclass_window", 4, "option 'oneclass_window' is 4; the weeks are centred"),
    ("uniad", "uniad_heads", 5, "options 'uniad_hidden' 24 and 'uniad_heads' 5"),
    ("uniad", "uniad_hidden", 15, "options 'uniad_hidden' 15 and 'uniad_heads' 3: the width must be even"),
])
def test_bad_baseline_options_are_refused_before_training(method, option, value, message):
    """Values in range for config.py that the method still cannot take: refused at build and, for
    training, by check_training before any data are loaded (an even window crashed after the epoch)."""
    from models.methods import method_spec

    bad = cfg(method, **{option: value})
    with pytest.raises(ValueError, match=message):
        build_method(bad)
    with pytest.raises(ValueError, match=message):
        method_spec(method).check_training(bad)
