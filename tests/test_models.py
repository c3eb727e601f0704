"""IDE model: shapes for every encoder x quantizer x delta_t, gradients, losses, errors, init, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from config import Config
from models import IDEOutput, build_model, load_checkpoint
from models.classifier import ExtremeClassifier
from models.losses import class_weights, normal_code_l1, weighted_bce

ENCODERS = ["CNN_3D", "Swin_3D", "Mamba"]
CODEBOOKS = ["LFQ", "FSQ", "VQ", "LatentQuantize", "RandomProjectionVQ"]


def tiny_cfg(**kw) -> Config:
    base = dict(
        variables=["a", "b"],
        in_channels_dynamic=2,
        en_embed_dim=[8, 8],
        en_n_heads=[2, 2],
        codebook_dim=8,
        cls_dim=8,
        delta_t=4,
        en_window_size=[(2, 4, 4), (4, 1, 1)],
    )
    base.update(kw)
    return Config(**base)


def tiny_batch(n=2, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "mask_extreme": (torch.rand(n, h, w, generator=g) < 0.3).float(),
        "mask_extreme_loss": (torch.rand(n, h, w, generator=g) < 0.5).float(),
    }


def check_output(out: IDEOutput, n, v, d, t, h, w):
    assert out.logits.shape == (n, 1, h, w)
    assert out.heads.shape == (n, v, h, w)
    assert out.anomaly.shape == (n, v, t, h, w) and out.anomaly.dtype == torch.uint8
    assert out.z_q.shape == (n, v, d, t, h, w)
    assert out.aux_loss.dim() == 0


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("codebook", CODEBOOKS)
def test_shapes_every_encoder_and_codebook(encoder, codebook):
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder=encoder, codebook=codebook, in_channels=2)
    model = build_model(cfg).train()
    x = torch.randn(2, 2, 2, 4, 8, 8)
    out = model(x)
    check_output(out, 2, 2, 8, 4, 8, 8)
    loss, parts = model.compute_loss(out, tiny_batch())
    assert set(parts) == {"bce_joint", "bce_heads", "anomaly_l1", "aux", "total"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in parts.values())
    loss.backward()
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert float(out.aux_loss) == 0.0
    assert model.vq.normal_code().shape == (8,)


@pytest.mark.parametrize("delta_t", [2, 8, 16, 32])
def test_shapes_every_delta_t(delta_t):
    window = [(2, 4, 4), (delta_t, 1, 1)]
    for encoder in ENCODERS:
        model = build_model(tiny_cfg(encoder=encoder, delta_t=delta_t, en_window_size=window)).eval()
        with torch.no_grad():
            out = model(torch.randn(1, 2, 1, delta_t, 4, 4))
        check_output(out, 1, 2, 8, delta_t, 4, 4)


def test_odd_sizes_pad_and_clamp_windows():
    model = build_model(tiny_cfg(encoder="Swin_3D")).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 2, 1, 4, 5, 7))  # padding to window multiples, shifted windows
        out2 = model(torch.randn(1, 2, 1, 4, 2, 3))  # windows clamped to the input, no shift
    check_output(out, 1, 2, 8, 4, 5, 7)
    check_output(out2, 1, 2, 8, 4, 2, 3)


@pytest.mark.parametrize("delta_t", [3, 6, 64])
def test_unsupported_delta_t_is_rejected(delta_t):
    with pytest.raises(ValueError, match="option 'delta_t' is"):
        ExtremeClassifier(2, 8, 8, delta_t)


def test_published_classifier_layout_for_t8():
    cls = ExtremeClassifier(6, 16, 16, 8)
    names = {k: tuple(v.shape) for k, v in cls.state_dict().items()}
    assert names["conv3.weight"] == (1, 96, 2, 3, 3) and "conv4.weight" not in names
    assert names["layers.5.conv2.weight"] == (16, 16, 2, 3, 3)


def test_variables_do_not_mix_and_heads_match_per_variable_convs():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(encoder="CNN_3D")).eval()
    x = torch.randn(1, 2, 1, 4, 8, 8)
    with torch.no_grad():
        z = model.encoder(x)
        x2 = x.clone()
        x2[:, 1] += 1.0
        z2 = model.encoder(x2)
        assert torch.equal(z[:, 0], z2[:, 0]) and not torch.equal(z[:, 1], z2[:, 1])
        zq = torch.randn(1, 2, 8, 4, 8, 8)
        _, heads = model.cls(zq)
        head = model.cls.layers[1]
        y = F.relu(F.conv3d(zq[:, 1], head.conv1.weight, head.conv1.bias, (2, 1, 1), (0, 1, 1)))
        y = F.conv3d(y, head.conv2.weight, head.conv2.bias, (2, 1, 1), (0, 1, 1))
        torch.testing.assert_close(heads[:, 1], y[:, 0, 0])


@pytest.mark.parametrize("codebook", ["LFQ", "FSQ", "VQ"])
@pytest.mark.parametrize("monotone", [False, True])
def test_classifier_on_code_channels_equals_classifier_on_z_q(codebook, monotone):
    """The folded first layer (k + 1 code channels instead of D) gives the same logits, heads and
    gradients for every parameter (project_out's included) as convolving z_q itself."""
    cfg = tiny_cfg(encoder="CNN_3D", codebook=codebook, monotone_heads=monotone, codebook_size=2)
    x = torch.randn(2, 2, 1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    results = []
    for use_codes in (True, False):
        torch.manual_seed(0)
        model = build_model(cfg).eval()  # eval: the VQ codebook does not move between the two passes
        z = model.encoder(x)
        z_q, idx, aux, codes = model.vq.quantize_with_codes(z)
        if codebook == "VQ":
            assert codes is None  # no low-dimensional code: the classifier convolves z_q
        else:
            assert codes.codes.shape == (2, 2, 1, 4, 8, 8)
            torch.testing.assert_close(  # the hooked channels are what project_out maps to z_q
                model.vq.project_out(codes.codes.movedim(2, -1)).movedim(-1, 2), z_q
            )
        flags = model.flag_coordinate(z_q) if monotone else None
        logits, heads = model.cls(z_q, flags, codes if use_codes else None)
        (logits.square().sum() + heads.sin().sum()).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), heads.detach(), grads))
    (l1, h1, g1), (l2, h2, g2) = results
    torch.testing.assert_close(l1, l2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h1, h2, atol=1e-5, rtol=1e-5)
    assert g1.keys() == g2.keys() and any(k.startswith("vq.project_out") for k in g1) == (codebook != "VQ")
    for k in g2:
        torch.testing.assert_close(g1[k], g2[k], atol=1e-5, rtol=1e-4, msg=k)


@pytest.mark.parametrize("codebook", ["LFQ", "FSQ", "VQ"])
def test_monotone_heads_read_flags_and_only_rise_with_them(codebook):
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder="CNN_3D", codebook=codebook, monotone_heads=True)
    model = build_model(cfg).train()
    published = build_model(tiny_cfg(encoder="CNN_3D", codebook=codebook))
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in published.state_dict().items()
    }
    c0, c1 = model.vq.code(0), model.vq.code(1)
    flags = (torch.rand(1, 2, 4, 8, 8) < 0.2).float()
    z_q = (c0 + flags.unsqueeze(2).movedim(2, -1) * (c1 - c0)).movedim(-1, 2)  # [N, V, D, T, H, W]
    torch.testing.assert_close(model.flag_coordinate(z_q), flags.unsqueeze(2))
    with torch.no_grad():
        _, heads = model.cls(z_q, flags.unsqueeze(2))
        more = flags.clone()
        more[0, 1, :, 2:5, 3:6] = 1.0  # switch on flags of variable b only
        _, heads_more = model.cls(z_q, more.unsqueeze(2))
    assert torch.equal(heads_more[:, 0], heads[:, 0])  # variable a's head does not see b
    assert (heads_more[:, 1] >= heads[:, 1] - 1e-6).all() and (heads_more[:, 1] > heads[:, 1] + 1e-6).any()
    out = model(torch.randn(1, 2, 1, 4, 8, 8))
    out.heads[:, 1].sum().backward()  # a head's gradient reaches its encoder through the flags
    assert model.encoder.layers_var[1][0].downsample.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="monotone_heads.*codebook_size 2"):
        build_model(tiny_cfg(encoder="CNN_3D", monotone_heads=True, codebook_size=4))


@pytest.mark.parametrize("encoder", ENCODERS)
def test_gradients_reach_encoder_through_straight_through(encoder):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(encoder=encoder)).train()
    out = model(torch.randn(1, 2, 1, 4, 8, 8))
    out.logits.sum().backward()  # only through z_q: the classifier sees nothing else
    first = model.encoder.layers_var[1][0].downsample.proj.weight
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert model.vq.project_in.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("affine", [False, True])
def test_channel_layer_norm_matches_layer_norm_values_and_gradients(affine):
    from models.encoder.cnn3d import channel_layer_norm

    g = torch.Generator().manual_seed(0)
    n, v, d = 2, 3, 4
    h = torch.randn(n, v * d, 2, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(v, d, generator=g, dtype=torch.float64, requires_grad=True) if affine else None
    b = torch.randn(v, d, generator=g, dtype=torch.float64, requires_grad=True) if affine else None
    ref_in = h.detach().view(n, v, d, -1).transpose(2, 3).requires_grad_()
    ref = F.layer_norm(ref_in, (d,), eps=1e-5)
    if affine:
        ref = ref * w.view(1, v, 1, d) + b.view(1, v, 1, d)
    ref = ref.transpose(2, 3).reshape(h.shape)
    out = channel_layer_norm(h, v, w, b)
    torch.testing.assert_close(out, ref)
    args = (h, w, b) if affine else (h,)
    assert torch.autograd.gradcheck(lambda *a: channel_layer_norm(a[0], v, *a[1:]), args)


def test_weighted_bce_hand_computed():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 0.0]]]])  # [1, 1, 2, 2]
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    w_pos, w_neg = math.log(0.25**-0.5 + 1.1), math.log(0.75**-0.5 + 1.1)
    terms = [
        w_pos * math.log1p(math.exp(-2.0)),
        w_neg * math.log1p(math.exp(-1.0)),
        w_neg * math.log1p(math.exp(0.5)),
        w_neg * math.log(2.0),
    ]
    assert weighted_bce(logits, target).item() == pytest.approx(sum(terms) / 4, rel=1e-6)
    # two heads: the sum of each head's loss
    assert weighted_bce(logits.repeat(1, 2, 1, 1), target).item() == pytest.approx(sum(terms) / 2, rel=1e-6)


def test_weighted_bce_without_positives_or_negatives_is_finite():
    logits = torch.randn(2, 3, 4, 4)
    for target in (torch.zeros(2, 4, 4), torch.ones(2, 4, 4)):
        loss = weighted_bce(logits, target)
        assert torch.isfinite(loss)
        w = math.log(1.0 + 1.1)  # the present class is the whole batch
        ref = F.binary_cross_entropy_with_logits(logits, target[:, None].expand_as(logits), reduction="none")
        assert loss.item() == pytest.approx((w * ref).sum(1).mean().item(), rel=1e-5)


def test_weighted_bce_valid_mask():
    logits = torch.tensor([[[[2.0, -1.0], [0.5, 9.0]]]])
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    valid = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])  # the 4th pixel does not count at all
    w = class_weights(target, valid)
    w_pos, w_neg = math.log((1 / 3) ** -0.5 + 1.1), math.log((2 / 3) ** -0.5 + 1.1)
    torch.testing.assert_close(w, torch.tensor([[[w_pos, w_neg], [w_neg, 0.0]]]))
    terms = [
        w_pos * math.log1p(math.exp(-2.0)),
        w_neg * math.log1p(math.exp(-1.0)),
        w_neg * math.log1p(math.exp(0.5)),
    ]
    assert weighted_bce(logits, target, valid).item() == pytest.approx(sum(terms) / 3, rel=1e-6)
    assert weighted_bce(logits, target, torch.zeros_like(valid)).item() == 0.0


def test_normal_code_l1_hand_computed():
    z_q = torch.zeros(1, 2, 3, 2, 2, 2)  # N V D T H W
    z_q[0, :, :, :, 0, 0] = 1.0
    z_q[0, 1, 0, 0, 1, 1] = 5.0
    code = torch.tensor([1.0, 0.0, 0.0])
    normal = torch.tensor([[[True, False], [False, True]]])
    # pixel (0,0): |1-1|+|1|+|1| per (v,t) = 2 -> 8 total; pixel (1,1): |0-1|*4 + 5 -> 4 + ... computed below
    d = (z_q - code.view(1, 1, 3, 1, 1, 1)).abs()
    ref = (d[..., 0, 0].sum() + d[..., 1, 1].sum()) / (2 * 2 * 3 * 2)
    assert normal_code_l1(z_q, code, normal).item() == pytest.approx(ref.item())
    valid = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])
    assert normal_code_l1(z_q, code, normal, valid).item() == pytest.approx((d[..., 0, 0].sum() / 12).item())
    assert normal_code_l1(z_q, code, torch.zeros_like(normal)).item() == 0.0


def test_compute_loss_total_and_mask_valid():
    torch.manual_seed(0)
    model = build_model(tiny_cfg(encoder="CNN_3D")).train()
    out = model(torch.randn(2, 2, 1, 4, 8, 8))
    batch = tiny_batch()
    batch["mask_extreme"].zero_()  # no positive pixel at all
    batch["mask_valid"] = (torch.rand(2, 8, 8) < 0.7).float()
    loss, parts = model.compute_loss(out, batch)
    assert math.isfinite(loss.item())
    expected = parts["bce_joint"] + parts["bce_heads"] + model.lambda_anomaly * parts["anomaly_l1"] + parts["aux"]
    assert parts["total"] == pytest.approx(expected, rel=1e-5)


def test_lfq_normal_code_is_index_zero():
    model = build_model(tiny_cfg(encoder="CNN_3D"))
    vq = model.vq
    expected = vq.project_out(torch.tensor([[-1.0]]))[0]  # LFQ index 0 = bit 0 = code -1
    torch.testing.assert_close(vq.normal_code(), expected)


def test_random_projection_vq_is_frozen_projection_and_codebook(tmp_path):
    """RandomProjectionVQ: tokens -> fixed random projection -> nearest of a fixed random codebook.

    Neither moves while training (VQ's EMA codebook does), the encoder still gets gradients,
    both are saved with the model, and the indices are those of the projected tokens.
    """
    torch.manual_seed(0)
    model = build_model(tiny_cfg(encoder="CNN_3D", codebook="RandomProjectionVQ"))
    vq = model.vq
    assert not any(True for _ in vq.parameters())  # nothing in the quantizer learns
    frozen = {k: v.clone() for k, v in vq.state_dict().items() if k in ("rand_projs", "vq._codebook.embed")}
    assert set(frozen) == {"rand_projs", "vq._codebook.embed"}
    torch.manual_seed(1)
    plain = build_model(tiny_cfg(encoder="CNN_3D", codebook="VQ"))
    plain_codes = plain.vq.codebook.clone()
    opt = torch.optim.SGD(list(model.parameters()) + list(plain.parameters()), lr=0.1)
    x = torch.randn(2, 2, 1, 4, 8, 8)
    for m in (model.train(), plain.train()):
        out = m(x)
        loss, _ = m.compute_loss(out, tiny_batch())
        loss.backward()
    grads = [p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None]
    assert grads and sum(grads) > 0  # straight-through reaches the encoder
    opt.step()
    for k, v in frozen.items():
        assert torch.equal(vq.state_dict()[k], v), k
    assert not torch.equal(plain.vq.codebook, plain_codes)  # plain VQ: the codebook follows the features
    # indices = nearest code (cosine) of the layer-normalised, randomly projected tokens
    model.eval()
    z = torch.randn(1, 2, 8, 4, 3, 3)
    _, idx, aux = vq.quantize_features(z)
    tok = F.layer_norm(z.movedim(2, -1), (8,)) @ vq.rand_projs[0]
    codes = F.normalize(vq.vq._codebook.embed[0], dim=-1)
    expected = (F.normalize(tok, dim=-1) @ codes.T).argmax(-1)
    assert torch.equal(idx, expected) and float(aux) == 0.0
    torch.testing.assert_close(vq.normal_code(), codes[0])
    torch.save(model.state_dict(), tmp_path / "rp.pth")
    torch.manual_seed(5)
    again = build_model(tiny_cfg(encoder="CNN_3D", codebook="RandomProjectionVQ"))
    assert not torch.equal(again.vq.rand_projs, vq.rand_projs)
    load_checkpoint(again, tmp_path / "rp.pth")
    assert torch.equal(again.eval().vq.quantize_features(z)[1], idx)


def test_init_schemes():
    torch.manual_seed(0)
    pub = build_model(tiny_cfg(encoder="Mamba", init="published"))
    w = pub.encoder.layers_var[0][0].blocks[0].mlp.fc1.weight
    assert abs(w.mean().item() - 0.02) < 0.005
    torch.manual_seed(0)
    cor = build_model(tiny_cfg(encoder="Mamba"))
    w = cor.encoder.layers_var[0][0].blocks[0].mlp.fc1.weight
    assert abs(w.mean().item()) < 0.005 and w.std().item() == pytest.approx(0.02, rel=0.2)
    ssm = cor.encoder.layers_var[0][0].blocks[0].ssm
    dt = F.softplus(ssm.dt_proj.bias)
    assert (dt > 0.009).all() and (dt < 0.11).all()  # Mamba's dt init kept
    assert torch.equal(pub.encoder.layers_var[0][0].blocks[0].ssm.dt_proj.bias, torch.zeros(8))


def test_load_checkpoint_bare_state_dict_and_errors(tmp_path):
    model = build_model(tiny_cfg(encoder="Swin_3D"))
    torch.save(model.state_dict(), tmp_path / "bare.pth")
    other = build_model(tiny_cfg(encoder="Swin_3D"))
    load_checkpoint(other, tmp_path / "bare.pth")
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k])
    wrong = build_model(tiny_cfg(encoder="Swin_3D", in_channels=2))
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(wrong, tmp_path / "bare.pth")
    with pytest.raises(ValueError, match="missing.pth does not exist"):
        load_checkpoint(model, tmp_path / "missing.pth")


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="en_patch_size"):
        build_model(tiny_cfg(encoder="Swin_3D", en_patch_size=(2, 2, 2)))
    with pytest.raises(ValueError, match="codebook_size"):
        build_model(tiny_cfg(codebook_size=3))
    model = build_model(tiny_cfg(encoder="CNN_3D"))
    with pytest.raises(ValueError, match="IDE expects"):
        model(torch.randn(1, 3, 1, 4, 8, 8))


def test_spatial_anomaly_channel_hand_computed():
    from models.ide import with_spatial_anomaly

    # one sample, variable, channel and week on a 1 x 5 grid: median 3 (a local blob of 10 ignored)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0]).view(1, 1, 1, 1, 1, 5)
    out = with_spatial_anomaly(x)
    assert out.shape == (1, 1, 2, 1, 1, 5)
    assert torch.equal(out[:, :, 0], x[:, :, 0])
    assert out[0, 0, 1, 0, 0].tolist() == [-2.0, -1.0, 0.0, 1.0, 7.0]
    # a shift shared by the whole grid (a residual seasonal cycle) is gone from the second channel
    base = torch.randn(2, 3, 1, 4, 6, 6)
    a = with_spatial_anomaly(base)[:, :, 1]
    b = with_spatial_anomaly(base + torch.arange(4.0).view(1, 1, 1, 4, 1, 1) * 5)[:, :, 1]
    assert torch.allclose(a, b, atol=1e-5)


def test_spatial_anomaly_option_doubles_encoder_input_only():
    for encoder in ENCODERS:
        plain = build_model(tiny_cfg(encoder=encoder))
        model = build_model(tiny_cfg(encoder=encoder, spatial_anomaly="always"))
        x = torch.randn(2, 2, 1, 4, 8, 8)
        out = model(x)
        assert out.anomaly.shape == (2, 2, 4, 8, 8)
        diff = {k for k, v in model.state_dict().items() if v.shape != plain.state_dict()[k].shape}
        assert diff and all(k.startswith("encoder.") for k in diff), diff
        with pytest.raises(ValueError, match="C=1"):
            model(torch.randn(2, 2, 2, 4, 8, 8))


def test_var_dropout_hides_whole_variables_from_the_joint_head_only():
    """cls_var_dropout: a hidden (sample, variable) reaches the joint head as the normal code, the
    per-variable heads see every flag, and evaluation is untouched."""
    cfg = tiny_cfg(encoder="CNN_3D", codebook="LFQ", codebook_size=2, cls_var_dropout=0.5)
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.randn(4, 2, 1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    model.eval()
    z_q = model.vq.quantize_with_codes(model.encoder(x))[0]
    assert model.hide_variables(z_q) is None  # evaluation: the joint head reads every variable
    model.train()
    torch.manual_seed(3)
    hidden = model.hide_variables(z_q)
    torch.manual_seed(3)
    mask = torch.rand(4, 2) < 0.5
    assert mask.any() and not mask.all()
    normal = model.vq.normal_code()
    for n in range(4):
        for v in range(2):
            want = normal.view(-1, 1, 1, 1).expand_as(z_q[n, v]) if mask[n, v] else z_q[n, v]
            torch.testing.assert_close(hidden[n, v], want)
    logits, heads = model.cls(z_q, None, None, hidden)
    ref_logits, ref_heads = model.cls(hidden, None, None)
    torch.testing.assert_close(logits, ref_logits)  # the joint head reads the hidden codes
    torch.testing.assert_close(heads, model.cls(z_q, None, None)[1])  # the heads read z_q
    with pytest.raises(ValueError, match="option 'cls_var_dropout' is 1"):
        build_model(tiny_cfg(encoder="CNN_3D", cls_var_dropout=1.0))
