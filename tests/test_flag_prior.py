"""The anomaly prior (models/flag_prior.py): outlier targets, its loss, its schedule and its place in IDE."""

from __future__ import annotations

import math

import pytest
import torch

from models.flag_prior import balanced_score_bce, outlier_targets, prior_weight


def test_outliers_are_counted_in_robust_standard_deviations_per_sample_and_variable():
    # variable 0: values 0..9 (median 4.5, MAD 2.5, robust sd 3.7065) plus one value of 20
    x = torch.zeros(1, 2, 1, 1, 11)
    x[0, 0, 0, 0, :10] = torch.arange(10.0)
    x[0, 0, 0, 0, 10] = 20.0
    x[0, 1] = 7.0  # a constant variable (MAD 0) has no outliers
    # median 5, MAD 3 (|x - 5| = 5,4,3,2,1,0,1,2,3,4,15), robust sd 4.4478: 20 is 3.37 sd out
    assert outlier_targets(x, 3.0)[0, 0, 0, 0].tolist() == [False] * 10 + [True]
    assert not outlier_targets(x, 3.5).any()  # and not 3.5 sd
    assert not outlier_targets(x, 3.0)[0, 1].any()


def test_outliers_of_both_signs_count():
    x = torch.zeros(2, 1, 1, 10, 10)
    x += torch.linspace(-1, 1, 100).view(10, 10) * 0.1
    x[0, 0, 0, 2, 3] = 5.0
    x[1, 0, 0, 7, 7] = -5.0
    t = outlier_targets(x, 3.0)
    assert t.sum() == 2 and t[0, 0, 0, 2, 3] and t[1, 0, 0, 7, 7]


def test_balanced_bce_gives_each_class_half_the_loss_per_variable():
    score = torch.tensor([[[2.0, -1.0, 0.0, 0.0]]])  # [N=1, V=1, 4]
    target = torch.tensor([[[True, False, False, False]]])
    bce = lambda s, t: -math.log(1 / (1 + math.exp(-s))) if t else -math.log(1 - 1 / (1 + math.exp(-s)))  # noqa: E731
    expected = 0.5 * (bce(2.0, 1) + (bce(-1.0, 0) + 2 * bce(0.0, 0)) / 3)
    assert math.isclose(balanced_score_bce(score, target).item(), expected, rel_tol=1e-6)
    keep = torch.tensor([[[True, True, False, False]]])  # invalid voxels count nowhere
    expected_kept = 0.5 * (bce(2.0, 1) + bce(-1.0, 0))
    assert math.isclose(balanced_score_bce(score, target, keep).item(), expected_kept, rel_tol=1e-6)


def test_a_variable_without_outliers_adds_only_its_normal_half():
    score = torch.zeros(1, 2, 4)
    target = torch.zeros(1, 2, 4, dtype=torch.bool)
    target[0, 0, 0] = True
    # variable 0: 0.5 * (ln2 + ln2); variable 1: 0.5 * (0 + ln2); mean over variables
    assert math.isclose(balanced_score_bce(score, target).item(), (math.log(2) + 0.5 * math.log(2)) / 2, rel_tol=1e-6)


def test_the_weight_falls_linearly_to_zero():
    assert prior_weight(0, 2.0, 4) == 2.0
    assert prior_weight(1, 2.0, 4) == 1.5
    assert prior_weight(4, 2.0, 4) == 0.0
    assert prior_weight(9, 2.0, 4) == 0.0
    assert prior_weight(0, 0.0, 4) == 0.0  # off by default
    assert prior_weight(0, 2.0, 0) == 0.0


def test_the_floor_keeps_the_prior_on_after_its_fall():
    assert prior_weight(1, 2.0, 4, floor=0.5) == 1.5  # above the floor: the linear fall
    assert prior_weight(3, 2.0, 4, floor=0.8) == 0.8  # 0.5 on the line, held at the floor
    assert prior_weight(4, 2.0, 4, floor=0.8) == 0.8
    assert prior_weight(99, 2.0, 4, floor=0.8) == 0.8
    assert prior_weight(5, 0.0, 4, floor=0.8) == 0.0  # no prior, no floor


def _model(**overrides):
    from config import load_config
    from models import build_model

    cfg = load_config(overrides={"encoder": "CNN_3D", "variables": ["a", "b"], "in_channels_dynamic": 2,
                                 **overrides})
    return build_model(cfg)


def _batch(n: int = 2) -> dict:
    torch.manual_seed(0)
    x = torch.randn(n, 2, 1, 8, 8, 8)
    x[:, 0, 0, 3, 2:4, 2:4] = 8.0  # an outlier block in variable a
    return {"x": x, "mask_extreme": torch.zeros(n, 8, 8), "mask_extreme_loss": torch.zeros(n, 8, 8)}


def test_ide_adds_the_prior_to_its_loss_while_its_weight_is_positive():
    model = _model(flag_prior=1.0, flag_prior_epochs=2.0)
    model.train()
    batch = _batch()
    model.fit_epoch_start(0)
    total, parts = model.compute_loss_tensors(model(batch["x"]), batch)
    assert "flag_prior" in parts and parts["flag_prior"] > 0
    rest = sum(v for k, v in parts.items() if k not in ("flag_prior", "total"))
    assert math.isclose(total.item(), (rest + parts["flag_prior"]).item(), rel_tol=1e-5)
    model.fit_epoch_start(2)
    _, parts = model.compute_loss_tensors(model(batch["x"]), batch)
    assert "flag_prior" not in parts


def test_the_prior_trains_flags_towards_the_outliers():
    """A few steps of the prior alone switch the flags on at the outlier block and nowhere else."""
    model = _model(flag_prior=1.0, flag_prior_epochs=10.0, spatial_anomaly="none")
    model.train()
    batch = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        out = model(batch["x"])
        loss = model.flag_prior_loss(out, batch["x"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    flags = model.eval()(batch["x"]).anomaly  # [N, V, T, H, W]
    target = outlier_targets(batch["x"][:, :, 0], 3.0)
    assert flags[:, 0, 3, 2:4, 2:4].all()
    assert flags.bool()[~target].float().mean() < 0.05


def test_the_prior_needs_the_binary_lfq_codebook():
    with pytest.raises(ValueError, match="option 'flag_prior' needs the binary LFQ codebook"):
        _model(flag_prior=1.0, codebook="FSQ")


@pytest.mark.parametrize(("option", "value", "message"), [
    ("flag_prior", -1.0, "option 'flag_prior' is -1; it must be 0 or more"),
    ("flag_prior_epochs", -2.0, "option 'flag_prior_epochs' is -2; it must be 0 or more"),
    ("flag_prior_threshold", 0.0, "option 'flag_prior_threshold' is 0; it must be above 0"),
    ("flag_prior_floor", -0.5, "option 'flag_prior_floor' is -0.5; it must be 0 or more"),
])
def test_out_of_range_prior_options_are_refused_at_build(option, value, message):
    with pytest.raises(ValueError, match=message):
        _model(**{option: value})
