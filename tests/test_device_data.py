"""Device batches (dataset/device_cube.py) against the DataLoader path, on CPU: same samples, same RNG.

The device path copies the dataset's arrays and cuts them with index tensors; the DataLoader path
slices, flips and crops per sample. For the same seed both must give the same batches bit for bit
(the values are copies) and leave torch's RNG in the same state, so a run trains the same way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from config import Config
from dataset.device_cube import DeviceBatches, cube_bytes, device_cube, plan
from dataset.generate_synthetic import generate
from dataset.synthetic import SyntheticDataset
from utils import engine
from utils.runtime import seed_everything, setup_runtime


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


def _cfg(root, **kw) -> Config:
    base = dict(root_synthetic=str(root), times_train=(1, 40), times_val=(41, 60), times_test=(61, 80),
                x_max=12, y_max=10, batch_size=4, device="cpu", n_workers=0, seed=5)
    base.update(kw)
    return Config(**base).validate()


def _epochs(cfg: Config, dataset, device_data: bool, n_epochs: int = 2) -> tuple[list[dict], torch.Tensor]:
    rt = setup_runtime(cfg)
    seed_everything(cfg.seed)
    loader, sampler = engine.make_train_loader(cfg, rt, dataset, device_data)
    batches = []
    for epoch in range(n_epochs):
        sampler.set_epoch(epoch)
        batches += list(loader)
    return batches, torch.get_rng_state()


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y)
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert torch.equal(x[k], y[k]), k


@pytest.mark.parametrize(
    ("crop", "focus", "aug"),
    [(0, 0.0, True), (6, 0.0, True), (6, 0.7, True), (5, 1.0, False), (20, 0.0, True)],
)
def test_device_batches_equal_the_dataloader(tiny_root, crop, focus, aug):
    cfg = _cfg(tiny_root, train_crop=crop, train_crop_focus=focus, is_aug=aug)
    ds = SyntheticDataset.from_config(cfg, "train")
    if crop > min(ds.height, ds.width):  # a crop larger than the grid cuts nothing (and draws nothing)
        cfg = _cfg(tiny_root, train_crop=0, is_aug=aug)
    loader_batches, loader_rng = _epochs(cfg, ds, device_data=False)
    device_batches, device_rng = _epochs(cfg, ds, device_data=True)
    _assert_same(loader_batches, device_batches)
    assert torch.equal(loader_rng, device_rng)  # the rest of the run draws the same numbers
    assert len(ds) % cfg.batch_size != 0 and loader_batches[-1]["x"].shape[0] < cfg.batch_size  # short last batch
    if crop == 6:
        assert device_batches[0]["x"].shape[-2:] == (6, 6)


@pytest.mark.parametrize(
    "crop_options",
    [
        # a crop away from the origin: rows 2..10, columns 3..13 of the 16 x 16 grid
        dict(x_min=3, x_max=14, y_min=2, y_max=11, train_crop=9, train_crop_focus=0.6, is_aug=True),
        # a narrow crop (the window keeps its whole width), the longest window
        dict(x_max=7, y_max=16, train_crop=7, train_crop_focus=0.5, is_aug=True, delta_t=16),
        # the shortest window, an odd batch
        dict(x_min=0, x_max=13, y_min=5, y_max=16, train_crop=11, train_crop_focus=1.0, is_aug=True, delta_t=2,
             batch_size=3),
    ],
)
def test_device_batches_equal_the_dataloader_on_offset_and_odd_crops(tiny_root, crop_options):
    cfg = _cfg(tiny_root, **crop_options)
    ds = SyntheticDataset.from_config(cfg, "train")
    loader_batches, loader_rng = _epochs(cfg, ds, device_data=False)
    device_batches, device_rng = _epochs(cfg, ds, device_data=True)
    _assert_same(loader_batches, device_batches)
    assert torch.equal(loader_rng, device_rng)
    # the batches are the dataset's own crop: sample 0's unflipped target week, row by row
    first = device_cube(ds, torch.device("cpu")).batch([0], augment=False)
    np.testing.assert_array_equal(first["mask_extreme"][0].numpy(), ds.extremes_truth()[cfg.delta_t - 1])


def test_focused_crops_hold_an_extreme(tiny_root):
    """With focus 1 every sample that has an extreme at its target week gets a window holding one."""
    cfg = _cfg(tiny_root, train_crop=4, train_crop_focus=1.0)
    ds = SyntheticDataset.from_config(cfg, "train")
    seed_everything(0)
    cube = device_cube(ds, torch.device("cpu"))
    index = [i for i in range(len(ds)) if (ds.extremes_truth()[i + ds.delta_t - 1] > 0).any()]
    assert index, "tiny has extremes at some target weeks"
    batch = cube.batch(index, crop=4, focus=1.0)
    assert (batch["mask_extreme"].flatten(1).amax(1) == 1).all()


def test_evaluation_batches_equal_the_dataloader(tiny_root):
    cfg = _cfg(tiny_root, device_data="on")
    ds = SyntheticDataset.from_config(cfg, "val")
    rt = setup_runtime(cfg)
    on = list(engine._eval_loader(cfg, rt, ds))
    off = list(engine._eval_loader(_cfg(tiny_root, device_data="off"), rt, ds))
    assert isinstance(engine._eval_loader(cfg, rt, ds), DeviceBatches)
    _assert_same(off, on)


def test_plan_says_which_path_and_why(tiny_root):
    ds = SyntheticDataset.from_config(_cfg(tiny_root), "train")
    cpu = torch.device("cpu")
    assert plan(_cfg(tiny_root, device_data="off"), cpu, ds) == (False, "device_data off: DataLoader")
    use, why = plan(_cfg(tiny_root, device_data="auto"), cpu, ds)
    assert not use and "on cpu" in why
    use, why = plan(_cfg(tiny_root, device_data="on"), cpu, ds)
    assert use and "cut on cpu" in why
    small_cap = cube_bytes(ds) / 2e9
    use, why = plan(_cfg(tiny_root, device_data="on", device_data_max_gb=small_cap), cpu, ds)
    assert not use and "device_data_max_gb" in why
    use, why = plan(_cfg(tiny_root, device_data="on"), cpu, [{"x": torch.zeros(1)}])
    assert not use and "no device path" in why
    # bytes: float32 inputs + uint8 drivers per variable, target + temporary per week, one window map per sample
    v, t, h, w = ds.normalised_inputs().shape
    assert cube_bytes(ds) == v * t * h * w * 5 + 2 * t * h * w + len(ds) * h * w


def test_training_with_device_data_equals_the_dataloader(tiny_root, tmp_path):
    """Two epochs of the real model: the same weights and losses on either path (CPU, n_workers 0)."""
    from models.build import build_model

    results = {}
    for mode in ("off", "on"):
        cfg = _cfg(tiny_root, device_data=mode, encoder="CNN_3D", n_epochs=2, max_train_batches=3,
                   max_eval_batches=1, train_crop=6, train_crop_focus=0.5, dir_log=str(tmp_path), name=mode)
        train = SyntheticDataset.from_config(cfg, "train")
        val = SyntheticDataset.from_config(cfg, "val")
        torch.manual_seed(0)
        out = engine.fit(cfg, build_model(cfg), train, val)
        last = torch.load(tmp_path / mode / "last.pth", map_location="cpu", weights_only=True)
        results[mode] = (out, last)
        log = (tmp_path / mode / "train.log").read_text()
        assert ("batches cut on cpu" in log) == (mode == "on")
    (out_off, last_off), (out_on, last_on) = results["off"], results["on"]
    assert [h["train"]["loss"] for h in out_off["history"]] == [h["train"]["loss"] for h in out_on["history"]]
    for k, v in last_off["model_state_dict"].items():
        assert torch.equal(v, last_on["model_state_dict"][k]), k
