"""The training step's fast-path options on CPU: deferred host reads, --amp auto, fused Adam, compile,
channels-last and the learning-rate rule for larger batches (docs/guides/gpu-training.md)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.test_engine import CubeDataset, TinyModel, tiny_config
from utils import engine, runtime
from utils.errors import ConfigError


class NaNAt(TinyModel):
    """TinyModel whose loss is NaN from its ``bad``-th call on (1-based)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.calls = bad, 0

    def compute_loss(self, out, batch):
        self.calls += 1
        loss, parts = super().compute_loss(out, batch)
        return (loss * float("nan") if self.calls >= self.bad else loss), parts


@pytest.mark.parametrize("sync_every", [1, 2, 50])
def test_a_non_finite_loss_names_its_step_whenever_it_is_read(tmp_path, sync_every):
    cfg = tiny_config(tmp_path, sync_every=sync_every, batch_size=1)
    rt = runtime.setup_runtime(cfg)
    torch.manual_seed(0)
    model = NaNAt(bad=3)
    opt = engine.build_optimizer(cfg, model)
    loader, _ = engine.make_train_loader(cfg, rt, CubeDataset(train=True))
    with pytest.raises(FloatingPointError, match=r"non-finite training loss nan at epoch 1, step 3$"):
        engine.train_one_epoch(cfg, rt, model, loader, opt, 0)
    # read every step: the error comes before the bad step's update; later reads let a few steps run
    assert model.calls == (3 if sync_every == 1 else 4 if sync_every == 2 else len(loader))


def test_deferred_sums_equal_a_read_every_step(tmp_path):
    means = {}
    for every in (1, 3):
        cfg = tiny_config(tmp_path, sync_every=every)
        rt = runtime.setup_runtime(cfg)
        torch.manual_seed(0)
        model = TinyModel()
        loader, _ = engine.make_train_loader(cfg, rt, CubeDataset(train=True))
        means[every] = engine.train_one_epoch(cfg, rt, model, loader, engine.build_optimizer(cfg, model), 0)
    for k in ("loss", "extreme", "driver"):
        assert means[1][k] == means[3][k]  # the same float64 additions, bit for bit


def test_loss_parts_stay_tensors_only_where_the_class_defines_both():
    class Base(nn.Module):
        def compute_loss(self, out, batch):
            return torch.zeros(()), {"a": 1.0}

        def compute_loss_tensors(self, out, batch):
            return torch.zeros(()), {"a": torch.ones(())}

    class OwnLoss(Base):  # overrides compute_loss only (as scripts/driver_ceiling.py does)
        def compute_loss(self, out, batch):
            return torch.ones(()), {"b": 2.0}

    base, own = Base(), OwnLoss()
    assert engine.loss_function(base) == base.compute_loss_tensors
    assert engine.loss_function(own) == own.compute_loss
    assert engine.loss_function(TinyModel()).__name__ == "compute_loss"


def test_ide_parts_as_tensors_equal_the_float_parts():
    from config import Config
    from models.build import build_model

    cfg = Config(encoder="CNN_3D", en_embed_dim=[4, 4], codebook_dim=4, variables=["a", "b"],
                 in_channels_dynamic=2, delta_t=4).validate()
    torch.manual_seed(0)
    model = build_model(cfg)
    x = torch.randn(2, 2, 1, 4, 8, 8)
    batch = {"mask_extreme": (torch.rand(2, 8, 8) > 0.8).float(), "mask_extreme_loss": torch.zeros(2, 8, 8)}
    out = model(x)
    total_f, floats = model.compute_loss(out, batch)
    total_t, tensors = model.compute_loss_tensors(out, batch)
    assert torch.equal(total_f, total_t) and list(floats) == list(tensors)
    assert all(t.dim() == 0 and float(t) == floats[k] for k, t in tensors.items())


def test_amp_auto_is_bf16_on_cuda_and_float32_on_cpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert runtime.resolve_amp("auto", cpu) is None and runtime.resolve_amp("fp16", cpu) is None
    assert runtime.resolve_amp("bf16", cpu) is torch.bfloat16  # asked for by name: CPU autocast
    assert runtime.resolve_amp("none", cpu) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.resolve_amp("auto", cuda) is torch.bfloat16
    assert runtime.resolve_amp("fp16", cuda) is torch.float16 and runtime.resolve_amp("none", cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert runtime.resolve_amp("auto", cuda) is None  # an older GPU: float32, not fp16 without being asked


def test_fused_adam_only_when_every_parameter_is_on_cuda(tmp_path):
    cfg = tiny_config(tmp_path, fused_adam=True)
    opt = engine.build_optimizer(cfg, TinyModel())
    assert not opt.defaults.get("fused")  # CPU: the default implementation, unchanged


def test_lr_scaling_rules(tmp_path):
    cfg = tiny_config(tmp_path, batch_size=8, lr=1e-3, lr_min=1e-5, lr_warmup=1e-6, lr_reference_batch=2,
                      lr_scaling="linear")
    assert engine.scaled_lr(cfg) == pytest.approx({"lr": 4e-3, "lr_min": 4e-5, "lr_warmup": 4e-6})
    assert engine.scaled_lr(cfg, world_size=2)["lr"] == pytest.approx(8e-3)  # the global batch counts
    cfg.lr_scaling = "sqrt"
    assert engine.scaled_lr(cfg)["lr"] == pytest.approx(2e-3)
    cfg.lr_scaling = "none"
    assert engine.scaled_lr(cfg)["lr"] == 1e-3
    cfg.lr_scaling, cfg.lr_reference_batch = "linear", 0
    with pytest.raises(ConfigError, match="lr_reference_batch"):
        engine.scaled_lr(cfg)
    # the schedule takes the scaled values: warm-up starts at the scaled lr_warmup, ends at the scaled lr
    cfg.lr_reference_batch = 2
    model = TinyModel()
    lrs = engine.scaled_lr(cfg)
    opt = engine.build_optimizer(cfg, model, lrs["lr"])
    sched = engine.build_scheduler(cfg, opt, 10, lrs)
    assert opt.param_groups[0]["lr"] == pytest.approx(4e-6)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(4e-3)


def test_channels_last_stores_3d_conv_weights_ndhwc(tmp_path):
    model = TinyModel()
    notes = runtime.prepare_model(tiny_config(tmp_path, channels_last=True), model)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert model.head.weight.dim() == 4 and model.head.weight.is_contiguous()  # 2-D convs untouched
    assert notes == ["channels_last: 1 3-D convolution weight(s) stored NDHWC"]


def test_compiled_model_trains_one_step_like_the_plain_one(tmp_path):
    """torch.compile (inductor, a C++ compiler on CPU): one step, the same weights to float tolerance."""
    weights = {}
    for compiled in (False, True):
        cfg = tiny_config(tmp_path, compile=compiled, max_train_batches=1)
        rt = runtime.setup_runtime(cfg)
        torch.manual_seed(0)
        model = TinyModel()
        runtime.prepare_model(cfg, model)
        opt = engine.build_optimizer(cfg, model)
        loader, _ = engine.make_train_loader(cfg, rt, CubeDataset(train=True))
        try:
            stats = engine.train_one_epoch(cfg, rt, model, loader, opt, 0)
        except Exception as err:  # noqa: BLE001 - no working compiler toolchain here
            if compiled:
                pytest.skip(f"torch.compile does not run on this machine: {type(err).__name__}: {err}")
            raise
        assert math.isfinite(stats["loss"])
        weights[compiled] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    assert set(weights[True]) == set(weights[False])  # compiled in place: the same parameter names
    for k, v in weights[False].items():
        torch.testing.assert_close(weights[True][k], v, rtol=1e-5, atol=1e-6)
