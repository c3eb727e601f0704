"""Engine on a stand-in model and an in-memory dataset that obey the contracts (docs/design/architecture.md).

``TinyModel`` / ``CubeDataset`` are also imported by tests/test_ddp.py's torchrun workers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from config import Config, save_config
from utils import checkpoints, engine, run_folder
from utils.logging import RunFolderError
from utils.metrics import DriverCollector, ExtremeCollector, driver_scores
from utils.predictions import PredictionCollector


@dataclass
class TinyOut:
    logits: torch.Tensor
    anomaly: torch.Tensor
    h: torch.Tensor


class Interrupted(RuntimeError):
    """Raised by TinyModel to simulate a killed run."""


class TinyModel(nn.Module):
    """Per-variable 1x1x1 conv -> flags (h > 0) and a 1x1 extreme head; BCE on both."""

    def __init__(self, n_vars: int = 2, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv3d(n_vars, n_vars, 1, groups=n_vars)
        self.head = nn.Conv2d(n_vars, 1, 1)
        self.fail_at_epoch = fail_at_epoch

    def forward(self, x: torch.Tensor) -> TinyOut:
        h = self.conv(x[:, :, 0])  # [N, V, T, H, W]
        return TinyOut(logits=self.head(h.mean(2)), anomaly=(h > 0).to(torch.uint8), h=h)

    def compute_loss(self, out: TinyOut, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        ext = F.binary_cross_entropy_with_logits(out.logits[:, 0], batch["mask_extreme"])
        drv = F.binary_cross_entropy_with_logits(out.h, batch["mask_anomaly"])
        return ext + drv, {"extreme": float(ext.detach()), "driver": float(drv.detach())}

    def fit_epoch_start(self, epoch: int) -> None:
        if self.fail_at_epoch == epoch:
            raise Interrupted(f"simulated kill at epoch {epoch}")


class CubeDataset(Dataset):
    """A tiny synthetic cube in the sample-dict format; drivers = input > 0.8 on variable 0 near extremes."""

    def __init__(self, n_weeks: int = 12, t_first: int = 101, size: int = 4, delta_t: int = 4,
                 seed: int = 0, train: bool = False) -> None:
        g = np.random.default_rng(seed)
        self.delta_t, self.train, self.t_first = delta_t, train, t_first
        self.variables = ["var_01", "var_02"]
        self.time_labels = np.arange(t_first, t_first + n_weeks)
        self.values = g.normal(size=(2, n_weeks, size, size)).astype(np.float32)
        self.extreme = (g.random((n_weeks, size, size)) < 0.2).astype(np.uint8)
        self.extreme[g.random((n_weeks, size, size)) < 0.1] = 2  # halo class, not an extreme
        self.drivers = np.zeros((2, n_weeks, size, size), dtype=np.uint8)
        self.drivers[0] = (self.values[0] > 0.8) & (self.extreme == 1)

    def __len__(self) -> int:
        return len(self.time_labels) - self.delta_t + 1

    def __getitem__(self, i: int) -> dict:
        sl = slice(i, i + self.delta_t)
        x = torch.from_numpy(self.values[:, sl][:, ::-1].copy())[:, None]  # newest-first
        ext = torch.from_numpy(self.extreme[sl][::-1].copy())
        anom = torch.from_numpy(self.drivers[:, sl][:, ::-1].copy()).float()
        if self.train and torch.rand(()) < 0.5:  # RNG-consuming augmentation (resume must restore it)
            x, ext, anom = x.flip(-1), ext.flip(-1), anom.flip(-1)
        return {
            "x": x,
            "mask_extreme": (ext[0] == 1).float(),
            "mask_extreme_loss": (ext > 0).any(0).float(),
            "mask_anomaly": anom,
            "timestep": torch.tensor(int(self.time_labels[i + self.delta_t - 1])),
        }

    def drivers_truth(self) -> np.ndarray:
        return self.drivers

    def extremes_truth(self) -> np.ndarray:
        return self.extreme


def tiny_config(tmp_path: Path, name: str = "run", **kw) -> Config:
    base = dict(
        name=name, dir_log=str(tmp_path), n_epochs=2, batch_size=2, variables=["var_01", "var_02"],
        in_channels_dynamic=2, delta_t=4, lr=1e-2, lr_warmup_epochs=1, device="cpu", n_workers=0,
    )
    base.update(kw)
    return Config(**base).validate()


def synthetic_collectors(cfg: Config, save: bool = False):
    def factory(ds):
        drivers = DriverCollector(ds, cfg.delta_t)
        cols = [ExtremeCollector(cfg.pred_threshold), drivers]
        if save:
            cols.append(PredictionCollector(ds, drivers, cfg.pred_threshold, y0=cfg.y_min, x0=cfg.x_min))
        return cols

    return factory


def run_fit(cfg: Config, fail_at_epoch: int | None = None) -> dict:
    torch.manual_seed(123)
    model = TinyModel(fail_at_epoch=fail_at_epoch)
    return engine.fit(cfg, model, CubeDataset(train=True), CubeDataset(seed=1), synthetic_collectors(cfg))


def test_fit_writes_run_folder(tmp_path):
    cfg = tiny_config(tmp_path)
    out = run_fit(cfg)
    run = tmp_path / "run"
    for f in ("config.yaml", "train.log", "best_loss_model.pth", "best_F1_model.pth",
              "best_driver_F1_model.pth", "last.pth"):
        assert (run / f).is_file(), f
    assert list(run.glob("events.out.tfevents.*"))
    ckpt = run_folder.load_checkpoint_dict(run / "last.pth")
    for key in ("epoch", "mean_loss_train", "mean_loss_validation", "model_state_dict",
                "optimizer_state_dict", "scheduler_state_dict", "rng_state", "config", "best"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 1 and ckpt["config"]["name"] == "run"
    assert out["best"]["driver_F1"]["value"] is not None
    assert "extremes" in out["val"] and "pooled" in out["val"]["drivers"]
    assert "epoch 2/2" in (run / "train.log").read_text()
    assert not list(run.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_resume_reproduces_uninterrupted_run(tmp_path):
    run_fit(tiny_config(tmp_path, "ref", n_epochs=2))
    cfg = tiny_config(tmp_path, "killed", n_epochs=2)
    with pytest.raises(Interrupted):
        run_fit(cfg, fail_at_epoch=1)
    assert run_folder.load_checkpoint_dict(tmp_path / "killed" / "last.pth")["epoch"] == 0
    with pytest.raises(RunFolderError, match="resume"):  # never silently restarted
        run_fit(cfg)
    torch.manual_seed(999)  # a differently initialised model: everything must come from last.pth
    engine.fit(tiny_config(tmp_path, "killed", n_epochs=2, resume=True), TinyModel(),
               CubeDataset(train=True), CubeDataset(seed=1), synthetic_collectors(cfg))
    ref = run_folder.load_checkpoint_dict(tmp_path / "ref" / "last.pth")
    got = run_folder.load_checkpoint_dict(tmp_path / "killed" / "last.pth")
    assert got["epoch"] == ref["epoch"] == 1
    for k, v in ref["model_state_dict"].items():
        assert torch.equal(v, got["model_state_dict"][k]), k
    assert got["mean_loss_train"] == ref["mean_loss_train"]
    assert "resuming" in (tmp_path / "killed" / "train.log").read_text()


def test_existing_run_folder_needs_resume_or_overwrite(tmp_path):
    cfg = tiny_config(tmp_path, n_epochs=1)
    run_fit(cfg)
    with pytest.raises(RunFolderError, match="already holds a run"):
        run_fit(cfg)
    with pytest.raises(RunFolderError, match="does not exist"):
        run_fit(tiny_config(tmp_path, "fresh", n_epochs=1, resume=True))
    (tmp_path / "run" / "metrics_test.json").write_text("{}")
    run_fit(tiny_config(tmp_path, n_epochs=1, overwrite=True))
    assert not (tmp_path / "run" / "metrics_test.json").exists()  # stale test outputs went with the old run
    assert len(list((tmp_path / "run").glob("events.out.tfevents.*"))) == 1


def test_test_run_keeps_training_config(tmp_path):
    cfg = tiny_config(tmp_path, n_epochs=1)
    run_fit(cfg)
    before = (tmp_path / "run" / "config.yaml").read_text()
    test_cfg = tiny_config(tmp_path, n_epochs=1, split="val", batch_size=3)
    path = run_folder.prepare_test_run(test_cfg)
    assert path.name == "config_test_val.yaml" and path.is_file()
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    assert run_folder.find_eval_checkpoint(test_cfg).name == "best_driver_F1_model.pth"


def _lrs(cfg: Config, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimiser step of a run (one entry per step)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = engine.build_scheduler(cfg, opt, steps_per_epoch)
    out = []
    for _ in range(cfg.n_epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_learning_rate_schedule():
    """Warm-up 1e-6 -> 1e-3 over two epochs, then cosine to 1e-5 at epoch 10; the step rule decays per epoch."""
    cfg = Config(n_epochs=10, lr=1e-3, lr_warmup=1e-6, lr_warmup_epochs=2, lr_min=1e-5)
    lrs = _lrs(cfg, 4)  # 4 steps per epoch: step 4 e = epoch 1
    assert lrs[0] == pytest.approx(1e-6)
    assert lrs[4] == pytest.approx((1e-6 + 1e-3) / 2)
    assert lrs[8] == pytest.approx(1e-3)
    assert lrs[24] == pytest.approx((1e-3 + 1e-5) / 2)  # half-way through the cosine (epoch 6)
    assert 1e-5 < lrs[-1] < 1.5e-5  # the last step, one step before lr_min at epoch 10
    assert all(a >= b for a, b in zip(lrs[8:], lrs[9:]))
    step = Config(n_epochs=10, lr_scheduler="step", lr_decay_step=3, lr_decay_rate=0.5, lr_warmup_epochs=0)
    assert _lrs(step, 2)[15] == pytest.approx(step.lr * 0.25)  # epoch 7.5
    const = Config(n_epochs=2, lr_scheduler="constant", lr_warmup_epochs=0)
    assert set(_lrs(const, 3)) == {const.lr}


def test_resume_with_more_epochs_keeps_the_cosine_falling():
    """A run of 4 epochs resumed with --n_epochs 6: the cosine goes on from its saved learning rate down to
    lr_min at the new end, instead of climbing again past its old end (torch's cosine is periodic)."""
    cfg = Config(n_epochs=4, lr=1e-3, lr_warmup=1e-6, lr_warmup_epochs=1, lr_min=1e-5)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = engine.build_scheduler(cfg, opt, 2)
    for _ in range(3 * 2):  # three of the four epochs
        opt.step()
        sched.step()
    saved, lr_saved = sched.state_dict(), opt.param_groups[0]["lr"]
    longer = Config(n_epochs=6, lr=1e-3, lr_warmup=1e-6, lr_warmup_epochs=1, lr_min=1e-5)
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=longer.lr)
    sched2 = engine.build_scheduler(longer, opt2, 2)
    note = engine.restore_scheduler(sched2, saved)
    assert note and "6 steps" in note and "10" in note  # cosine of 8 - 2 warm-up steps, now 12 - 2
    assert sched2.get_last_lr()[0] == pytest.approx(lr_saved)
    lrs = []
    for _ in range(3 * 2):  # epochs 4 to 6
        opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
        lrs.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # falling all the way
    assert sched2.get_last_lr()[0] == pytest.approx(1e-5)  # lr_min at the new end
    same = engine.build_scheduler(cfg, torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr), 2)
    assert engine.restore_scheduler(same, saved) is None  # same length: nothing to say


def test_evaluate_predictions_round_trip(tmp_path):
    import xarray as xr

    cfg = tiny_config(tmp_path, batch_size=3)
    torch.manual_seed(0)
    model, ds = TinyModel(), CubeDataset(seed=1)
    cols = synthetic_collectors(cfg, save=True)(ds)
    res = engine.evaluate(cfg, model, ds, cols, run_dir=tmp_path, split="val")
    assert res["n_samples"] == len(ds) and set(res["extremes"]) >= {"precision", "recall", "f1", "iou", "oa"}
    with xr.open_dataset(tmp_path / "drivers_val.nc") as nc:
        assert nc["driver"].dtype == np.uint8 and nc["driver"].dims == ("var", "time", "y", "x")
        assert list(nc["var"].values) == ds.variables and list(nc["time"].values) == list(ds.time_labels)
        again = driver_scores(nc["driver"].values, nc["driver_true"].values, list(nc["var"].values))
        assert again == res["drivers"]
        assert nc["coverage"].values.tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 4, 3, 2, 1]
        prob = nc["extreme_prob"].values
        assert np.isnan(prob[:3]).all() and not np.isnan(prob[3:]).any()  # first T-1 weeks are never a target
        assert nc["extreme_true"].values.max() == 1
    json.dumps(res)  # JSON-serialisable (None for undefined per-variable scores)


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    import errno

    from utils.errors import StorageError

    path = tmp_path / "last.pth"
    checkpoints.save_checkpoint(path, {"epoch": 1, "model_state_dict": {}})

    def broken_write(target, data):
        Path(target).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(checkpoints, "_write_bytes", broken_write)
    with pytest.raises(StorageError, match=f"cannot write {path}: no space left on device"):
        checkpoints.save_checkpoint(path, {"epoch": 2, "model_state_dict": {}})
    assert run_folder.load_checkpoint_dict(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pth"]


def test_config_yaml_is_loadable(tmp_path):
    cfg = tiny_config(tmp_path)
    from config import load_config

    assert load_config(save_config(cfg, tmp_path / "c.yaml")).to_dict() == cfg.to_dict()
