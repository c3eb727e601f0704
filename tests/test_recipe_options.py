"""Options of the training recipe: balanced class weights and random training crops."""

from __future__ import annotations

import math

import pytest
import torch

from dataset.crops import random_crop
from models.losses import class_weights, weighted_bce


def test_balanced_weights_give_each_class_half_the_loss():
    target = torch.zeros(1, 2, 5)
    target[0, 0, 0] = 1  # 1 positive, 9 negatives
    w = class_weights(target, mode="balanced")
    assert math.isclose(w[0, 0, 0].item(), 10 / 2, rel_tol=1e-6)  # total / (2 * 1)
    assert math.isclose(w[0, 1, 1].item(), 10 / 18, rel_tol=1e-6)  # total / (2 * 9)
    assert math.isclose((w * target).sum().item(), (w * (1 - target)).sum().item())


def test_published_weights_match_the_formula():
    target = torch.zeros(1, 2, 5)
    target[0, 0, 0] = 1
    w = class_weights(target, mode="published")
    assert math.isclose(w[0, 0, 0].item(), math.log(0.1**-0.5 + 1.1), rel_tol=1e-6)
    assert math.isclose(w[0, 1, 1].item(), math.log(0.9**-0.5 + 1.1), rel_tol=1e-6)


def test_balanced_bce_stays_finite_without_positives():
    logits = torch.randn(2, 1, 4, 4)
    loss = weighted_bce(logits, torch.zeros(2, 4, 4), mode="balanced")
    assert torch.isfinite(loss)


def _crop_batch(n: int = 3, h: int = 8, w: int = 8) -> tuple[dict, torch.Tensor]:
    grid = torch.arange(h * w, dtype=torch.float32).view(h, w)
    batch = {
        "x": grid.expand(n, 3, 1, 4, h, w).clone(),
        "mask_extreme": torch.zeros(n, h, w),
        "mask_anomaly": grid.expand(n, 3, 4, h, w).clone(),
        "timestep": torch.arange(5, 5 + n),
    }
    return batch, grid


def _window(grid: torch.Tensor, crop: torch.Tensor) -> tuple[int, int]:
    """Top-left corner of a crop of ``grid`` (its values are flat indices)."""
    return divmod(int(crop[..., 0, 0].flatten()[0]), grid.shape[1])


def test_random_crop_cuts_all_of_a_samples_tensors_at_the_same_place():
    torch.manual_seed(0)
    batch, grid = _crop_batch()
    batch["mask_extreme"] = grid.expand(3, 8, 8).clone()
    out = random_crop(batch, 4)
    assert out["x"].shape == (3, 3, 1, 4, 4, 4) and out["mask_anomaly"].shape == (3, 3, 4, 4, 4)
    for i in range(3):
        y0, x0 = _window(grid, out["x"][i])
        expect = grid[y0 : y0 + 4, x0 : x0 + 4]
        assert torch.equal(out["mask_extreme"][i], expect)
        assert torch.equal(out["mask_anomaly"][i, 2, 3], expect)
        assert torch.equal(out["x"][i, 1, 0, 2], expect)
    assert torch.equal(out["timestep"], batch["timestep"])
    assert random_crop(batch, 8) is batch


def test_random_crop_focus_puts_an_extreme_pixel_in_the_window():
    torch.manual_seed(1)
    batch, grid = _crop_batch(n=4)
    corners = [(7, 7), (0, 0), (3, 6)]
    for i, (py, px) in enumerate(corners):  # sample 3 has no extreme: a uniform window
        batch["mask_extreme"][i, py, px] = 1.0
    hits = 0
    for _ in range(50):
        out = random_crop(batch, 3, focus=1.0)
        assert out["mask_extreme"][:3].sum(dim=(1, 2)).tolist() == [1.0, 1.0, 1.0]
        for i in range(4):
            y0, x0 = _window(grid, out["x"][i])
            assert torch.equal(out["mask_extreme"][i], batch["mask_extreme"][i, y0 : y0 + 3, x0 : x0 + 3])
        hits += int(random_crop(batch, 3, focus=0.0)["mask_extreme"][0].sum())
    assert hits < 25  # without focus the corner pixel is in the window about 1 time in 36


def test_anomaly_weight_ramps_geometrically_then_holds():
    from models.ide import anomaly_weight

    assert anomaly_weight(0, 1.0, 100.0, 4) == 1.0
    assert math.isclose(anomaly_weight(2, 1.0, 100.0, 4), 10.0)
    assert anomaly_weight(4, 1.0, 100.0, 4) == 100.0
    assert anomaly_weight(9, 1.0, 100.0, 4) == 100.0
    assert anomaly_weight(0, 1.0, 100.0, 0) == 100.0  # no warm-up: constant, as published


def test_model_hook_sets_the_epoch_weight():
    from config import load_config
    from models import build_model

    cfg = load_config(overrides={"encoder": "CNN_3D", "lambda_anomaly": 100.0, "lambda_anomaly_start": 1.0,
                                 "lambda_anomaly_warmup_epochs": 2.0})
    model = build_model(cfg)
    model.fit_epoch_start(1)
    assert math.isclose(model.lambda_anomaly, 10.0)
    model.fit_epoch_start(5)
    assert model.lambda_anomaly == 100.0


class _Samples(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int) -> dict:
        x = torch.full((2, 1, 4, 8, 8), float(i))
        x[..., 0, 0] = -1.0  # one marked pixel per sample
        return {"x": x, "mask_extreme": torch.zeros(8, 8), "timestep": torch.tensor(i)}


@pytest.mark.parametrize("workers", [0, 2])
def test_crops_are_made_by_the_loader_in_the_main_process_and_in_workers(workers):
    """The training loader crops (dataset.crops.CroppingCollate): only the window reaches the loop."""
    from dataset.crops import CroppingCollate
    from utils.batch_transport import pooled_collate

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(_Samples(), batch_size=3, num_workers=workers,
                                         collate_fn=CroppingCollate(pooled_collate, 5))
    seen = []
    for batch in loader:
        assert batch["x"].shape == (3, 2, 1, 4, 5, 5) and batch["mask_extreme"].shape == (3, 5, 5)
        seen += batch["timestep"].tolist()
        for k in range(3):  # each sample is cut from itself: its value, and -1 only at its own pixel
            vals = set(batch["x"][k].unique().tolist()) - {-1.0}
            assert vals == {float(batch["timestep"][k])}
    assert sorted(seen) == list(range(12))
