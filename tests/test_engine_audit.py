"""Training that diverges, resumes whose options do not fit the run, and durable checkpoint writes
(utils/engine.py, utils/checkpoints.py); on the stand-in model of tests/test_engine.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_engine import CubeDataset, TinyModel, synthetic_collectors, tiny_config
from utils import checkpoints, engine, run_folder
from utils.errors import ConfigError, UserError


class NaNFrom(TinyModel):
    """TinyModel whose training loss is NaN from its ``bad``-th training call on (1-based)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.calls = bad, 0

    def compute_loss(self, out, batch):
        loss, parts = super().compute_loss(out, batch)
        if not self.training:
            return loss, parts
        self.calls += 1
        return (loss * float("nan") if self.calls >= self.bad else loss), parts


def _fit(cfg, model: torch.nn.Module) -> dict:
    return engine.fit(cfg, model, CubeDataset(train=True), CubeDataset(seed=1), synthetic_collectors(cfg))


def _all_finite(path: Path) -> bool:
    state = run_folder.load_checkpoint_dict(path)["model_state_dict"]
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("sync_every", [1, 3])
def test_a_nan_loss_is_one_line_in_train_log_and_keeps_the_last_checkpoint(tmp_path, sync_every):
    cfg = tiny_config(tmp_path, n_epochs=2, batch_size=1, sync_every=sync_every)  # 9 steps per epoch
    torch.manual_seed(0)
    with pytest.raises(UserError) as info:  # an entry script prints it as one line, exit 2
        _fit(cfg, NaNFrom(bad=11))  # epoch 2, step 2
    err = info.value
    assert isinstance(err, FloatingPointError)  # what the per-step check raised before
    assert str(err).startswith("non-finite training loss nan at epoch 2, step 2; ")
    assert f"{tmp_path / 'run' / 'last.pth'} (epoch 1) is kept" in str(err) and "--lr" in str(err)
    assert "\n" not in str(err)
    assert f"ERROR error: {err}" in (tmp_path / "run" / "train.log").read_text()
    assert run_folder.load_checkpoint_dict(tmp_path / "run" / "last.pth")["epoch"] == 0
    assert _all_finite(tmp_path / "run" / "last.pth")


def test_a_nan_loss_in_the_first_epoch_says_nothing_was_saved(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(engine.NonFiniteError, match=r"epoch 1, step 1; no checkpoint was written: train again"):
        _fit(tiny_config(tmp_path, n_epochs=1), NaNFrom(bad=1))
    assert not (tmp_path / "run" / "last.pth").exists()


class Steep(TinyModel):
    """TinyModel with a loss a million times larger: finite, but its gradients are large."""

    def compute_loss(self, out, batch):
        loss, parts = super().compute_loss(out, batch)
        return loss * 1e6, parts


def test_weights_made_infinite_by_the_last_step_of_an_epoch_are_never_checkpointed(tmp_path):
    """One step per epoch with a huge learning rate: that step's loss is finite, its update overflows
    float32, and no later loss of the epoch would tell (validation would score the broken model)."""
    cfg = tiny_config(tmp_path, n_epochs=2, lr=1e36, lr_warmup_epochs=0, lr_scheduler="constant",
                      optimizer="SGD", beta1=0.0, max_train_batches=1)
    torch.manual_seed(0)
    with pytest.raises(engine.NonFiniteError, match=r"^non-finite weights after epoch 1 \(\d tensor\(s\), e\.g\. "
                                                    r"\S+\); no checkpoint was written"):
        _fit(cfg, Steep())
    assert not list((tmp_path / "run").glob("*.pth"))  # neither last.pth nor a best_* of a broken model


def test_resume_with_fewer_epochs_than_trained_is_refused_and_as_many_is_a_no_op(tmp_path):
    torch.manual_seed(0)
    _fit(tiny_config(tmp_path, n_epochs=2), TinyModel())
    last = tmp_path / "run" / "last.pth"
    before = last.read_bytes()
    with pytest.raises(ConfigError, match=rf"^--resume true: {last} has trained 2 epochs, more than n_epochs 1; "
                                          r"pass --n_epochs 2 \(the run as it is\) or more"):
        _fit(tiny_config(tmp_path, n_epochs=1, resume=True), TinyModel())
    out = _fit(tiny_config(tmp_path, n_epochs=2, resume=True), TinyModel())  # e.g. a table that resumes
    assert out["history"] == [] and last.read_bytes() == before
    log = (tmp_path / "run" / "train.log").read_text()
    assert "has finished its 2 epochs; nothing to train" in log and "at epoch 3/2" not in log


def test_resume_says_which_changed_options_the_saved_optimiser_overrides(tmp_path):
    torch.manual_seed(0)
    _fit(tiny_config(tmp_path, n_epochs=1, lr_scheduler="constant", lr_warmup_epochs=0), TinyModel())
    cfg = tiny_config(tmp_path, n_epochs=2, lr_scheduler="constant", lr_warmup_epochs=0, lr=1e-4,
                      weight_decay=0.5, resume=True)
    out = _fit(cfg, TinyModel())
    assert out["history"][0]["train"]["lr"] == 1e-2  # the saved run's lr trains on (tiny_config: 1e-2)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resume: lr (0.01 -> 0.0001), weight_decay (0.003 -> 0.5) not applied: the optimiser" in log


def test_checkpoint_bytes_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = checkpoints.os.fsync, checkpoints.os.replace
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(checkpoints.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    checkpoints.save_checkpoint(tmp_path / "last.pth", {"epoch": 3, "model_state_dict": {}})
    assert events == ["fsync", "replace"]
    assert run_folder.load_checkpoint_dict(tmp_path / "last.pth")["epoch"] == 3
