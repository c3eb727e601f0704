"""Baselines: published layouts load key for key, every method trains a step and flags [N, V, T, H, W].

Tiny on purpose (8 x 8 crops of the generator's ``tiny`` preset, CNN_3D encoders where the
layout does not fix one) and one torch thread: the whole file runs in about 20 s on two CPU cores.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from config import load_config
from models.methods import ThresholdedScores

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


LAYOUTS = {  # published file -> our --method
    "DeepMIL": "deepmil",
    "ARNet": "arnet",
    "RTFM": "rtfm",
    "MGFN": "mgfn",
    "SimpleNet": "simplenet",
    "STEALNet": "stealnet",
    "UniAD": "uniad",
}
TRAINABLE = ["deepmil", "arnet", "rtfm", "mgfn", "simplenet", "stealnet", "uniad", "ig1", "ig2"]
CROP = {"x_max": 8, "y_max": 8}


def build(cfg):
    from models.methods import build_method

    return build_method(cfg)


def read_keys(path: Path) -> dict[str, torch.Tensor]:
    """A random state dict with the names, shapes and dtypes listed in a ``baseline_keys_*.txt``."""
    out = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, shape, dtype = line.split("\t")
        shape, dt = tuple(ast.literal_eval(shape)), getattr(torch, dtype)
        rand = torch.randn(shape).to(dt) if dt.is_floating_point else torch.randint(0, 2, shape, dtype=dt)
        out[name] = rand
    return out


@pytest.mark.filterwarnings("ignore:SimpleNet without")
@pytest.mark.parametrize("published", sorted(LAYOUTS))
def test_published_layout_loads_key_for_key(published, reference_dir, tmp_path):
    cfg = load_config(overrides={"method": LAYOUTS[published]})  # published defaults: Swin_3D, 6 variables
    model = build(cfg)
    state = read_keys(reference_dir / f"baseline_keys_{published}.txt")
    own = model.state_dict()
    if published == "SimpleNet":  # its frozen backbone ships as a separate state dict
        backbone = read_keys(reference_dir / "baseline_keys_SimpleNet_backbone.txt")
        assert {f"backbone.{k}" for k in backbone} | set(state) == set(own)
        torch.save({"model_state_dict": backbone}, tmp_path / "backbone.pth")
        model.load_backbone(tmp_path / "backbone.pth")
        assert torch.equal(model.backbone.state_dict()["encoder.proj_var.0.0.weight"],
                           backbone["encoder.proj_var.0.0.weight"])
    else:
        assert set(own) == set(state)
    assert {k: (tuple(own[k].shape), own[k].dtype) for k in state} == {
        k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)  # SimpleNet: the published file lacks the backbone
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v), k


@pytest.fixture(scope="module")
def tiny_batch(tmp_path_factory):
    from dataset.generate_synthetic import generate
    from dataset.synthetic import SyntheticDataset

    root = generate("tiny", tmp_path_factory.mktemp("bl") / "tiny", seed=0)
    cfg = load_config("configs/synthetic_tiny.yaml", {"root_synthetic": str(root), **CROP})
    ds = SyntheticDataset.from_config(cfg, "train")
    items = [ds[i] for i in (30, 60)]
    return root, {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _cfg(root: Path, method: str, **kw):
    over = {"root_synthetic": str(root), "method": method, "encoder": "CNN_3D", **CROP, "ig_n_steps": 2,
            "oneclass_n_fit": 200, "iforest_n_estimators": 10, "mgfn_dims": [32, 16], "mgfn_heads": [2, 1],
            "mil_topk": 5, "mil_hidden": [32, 16], "uniad_hidden": 24, "simplenet_proj_dim": 32, **kw}
    return load_config("configs/synthetic_tiny.yaml", over)


@pytest.mark.filterwarnings("ignore:SimpleNet without")
@pytest.mark.parametrize("method", TRAINABLE)
def test_one_training_step_and_flags(method, tiny_batch):
    root, batch = tiny_batch
    torch.manual_seed(0)
    model = build(_cfg(root, method))
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-2)
    model.train()
    loss, parts = model.compute_loss(model(batch["x"]), batch)
    assert torch.isfinite(loss) and isinstance(parts, dict)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, params)), "no parameter moved"
    model.eval()
    model.threshold = 0.0 if isinstance(model, ThresholdedScores) else model.threshold
    with torch.no_grad():
        out = model(batch["x"])
    n, v, _, t, h, w = batch["x"].shape
    assert out.anomaly.shape == (n, v, t, h, w) and out.anomaly.dtype == torch.uint8
    assert torch.isfinite(out.score).all()
    assert (out.logits is not None) == method.startswith("ig")


@pytest.mark.filterwarnings("ignore:SimpleNet without")
def test_simplenet_loss_separates_true_from_noisy_features(tiny_batch, monkeypatch):
    """Truncated L1 of SimpleNet: true features pushed to D >= 0.5, noisy ones to D <= -0.5."""
    root, batch = tiny_batch
    torch.manual_seed(0)
    model = build(_cfg(root, "simplenet")).train()
    d_true, d_fake = torch.tensor([0.9, 0.1, -0.3]), torch.tensor([-0.8, 0.2, 0.6])
    batches = []
    monkeypatch.setattr(model, "_features", lambda x: torch.zeros(3, 4))

    def discriminator(feat):  # one batch: the 3 true rows, then their 3 noisy copies
        batches.append(len(feat))
        return torch.cat([d_true, d_fake])

    monkeypatch.setattr(model.discriminator, "forward", discriminator)
    loss, parts = model.compute_loss(model(batch["x"]), batch)
    # true: relu(0.5 - D) = 0, 0.4, 0.8; noisy: relu(0.5 + D) = 0, 0.7, 1.1
    assert parts["true"] == pytest.approx(0.4) and parts["fake"] == pytest.approx(0.6)
    assert loss.item() == pytest.approx(1.0)
    assert batches == [6]  # BatchNorm sees true and noisy features together


@pytest.mark.parametrize("method", ["ocsvm", "iforest"])
def test_sklearn_fit_on_subsample(method, tiny_batch):
    root, batch = tiny_batch
    model = build(_cfg(root, method))
    model.train()
    model.fit_epoch_start(0)
    loss, _ = model.compute_loss(model(batch["x"]), batch)
    assert not loss.requires_grad  # the engine skips the optimiser step
    model.fit_epoch_end(0)
    assert model.fitted
    model.eval()
    out = model(batch["x"])
    assert out.anomaly.shape == batch["mask_anomaly"].shape and out.score.std() > 0
    again = build(_cfg(root, method))
    again.load_state_dict(model.state_dict())  # fitted state is plain tensors of config-fixed shape
    assert torch.equal(again.eval()(batch["x"]).score, out.score)


def test_threshold_from_validation_f1():
    from models.methods import ScoreOutput
    from utils.metrics import ScoreThreshold

    score = torch.randn(2, 3, 4, 6, 6)
    truth = (score > 0.7).float()
    c = ScoreThreshold("val_f1")
    c.update({"mask_anomaly": truth}, ScoreOutput.from_scores(score, math.inf))
    res = c.result()
    assert abs(res["threshold"] - 0.7) < 0.02 and res["f1_samples"] > 0.97
    flat = ScoreThreshold("val_f1")  # all scores equal (e.g. no attribution): a finite threshold, flag all
    flat.update({"mask_anomaly": truth}, ScoreOutput.from_scores(torch.zeros_like(score), math.inf))
    assert math.isfinite(flat.result()["threshold"]) and flat.result()["threshold"] < 0
    p = ScoreThreshold("normal_percentile", 90.0)
    p.update({"mask_extreme_loss": torch.zeros(2, 6, 6)}, ScoreOutput.from_scores(score, math.inf))
    assert abs(p.result()["threshold"] - score.quantile(0.9).item()) < 0.05


def test_threshold_without_anything_to_choose_on_is_an_error():
    """No true driver (val_f1) or no normal pixel (normal_percentile) on val: a named error, not a
    threshold that flags everything or a NaN that flags nothing."""
    from models.methods import ScoreOutput
    from utils.errors import ConfigError
    from utils.metrics import ScoreThreshold

    out = ScoreOutput.from_scores(torch.randn(2, 1, 2, 3, 3), math.inf)
    c = ScoreThreshold("val_f1")
    c.update({"mask_anomaly": torch.zeros(2, 1, 2, 3, 3)}, out)
    with pytest.raises(ConfigError, match="val_f1 found no true driver on the validation split"):
        c.result()
    p = ScoreThreshold("normal_percentile", 99.0)
    p.update({"mask_extreme_loss": torch.ones(2, 3, 3)}, out)
    with pytest.raises(ConfigError, match="normal_percentile found no normal pixel"):
        p.result()


def test_uniad_neighbour_mask_built_once(tiny_batch):
    from Baselines_Reconstruction.models import neighbour_mask

    root, batch = tiny_batch
    model = build(_cfg(root, "uniad", uniad_neighbor=3)).eval()
    with torch.no_grad():
        model(batch["x"])
        first = dict(model._masks)
        model(batch["x"])
    assert len(model._masks) == 1 and all(model._masks[k] is first[k] for k in first)
    m = neighbour_mask(4, 4, 3, torch.device("cpu"))
    assert m[5].sum() == 9 and not m[5, 15] and m[0].sum() == 4  # 3x3 block around (1, 1); corner clipped


def test_published_config_and_checkpoint_through_the_test_entry(reference_dir, tiny_batch, tmp_path):
    import json

    from test_synthetic import main

    root, _ = tiny_batch
    cfg = load_config(overrides={"method": "deepmil"})
    state = build(cfg).state_dict()
    ckpt = tmp_path / "deepmil.pth"
    torch.save({"epoch": 3, "mean_loss_train": 0.1, "mean_loss_validation": 0.2, "optimizer_state_dict": {},
                "model_state_dict": {f"module.{k}": v for k, v in state.items()}}, ckpt)
    argv = ["--config", str(reference_dir / "published_config_example.pkl"), "--checkpoint", str(ckpt),
            "--method", "deepmil", "--root_synthetic", str(root), "--times_train", "1", "104",
            "--times_val", "105", "130", "--times_test", "131", "156", "--x_max", "8", "--y_max", "8",
            "--dir_log", str(tmp_path), "--name", "published", "--split", "val", "--max_eval_batches", "1",
            "--n_workers", "0"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "published" / "metrics_val.json").read_text())
    assert set(metrics["drivers"]["pooled"]) >= {"f1", "iou", "oa"}


def test_mil_topk_fraction_is_a_quantile_of_each_bag():
    """k per bag = ceil(fraction x bag size); on scores that do not depend on the bag, the
    fraction-k hinge has no size bias, while an absolute k larger than the positive bag
    compares all positives with the negatives' tail (the collapse to one constant score)."""
    from Baselines_MIL import losses

    torch.manual_seed(0)
    n_inst = 1536
    pos = torch.zeros(2, 1, n_inst, dtype=torch.bool)
    pos[0, 0, :48] = True
    pos[1, 0, :150] = True
    k = losses.bag_k(pos, torch.Size([2, 3, n_inst]), 100, 0.1)
    assert k.tolist() == [[5, 5, 5], [15, 15, 15]]
    assert losses.bag_k(pos, torch.Size([2, 3, n_inst]), 100, None) == 100
    logit = torch.randn(2, 3, n_inst)
    (vals,), valid = losses.top_k(logit, pos, k, logit)
    assert valid.sum(-1).tolist() == k.tolist()
    assert torch.equal(vals[0, 0, :5], logit[0, 0, :48].topk(5).values)
    # same score distribution in both bags: published k = 100 pays for the spread, a fraction does not
    logit = torch.randn(64, 8, n_inst)
    pos = torch.zeros(64, 1, n_inst, dtype=torch.bool)
    pos[..., :48] = True
    fixed, _ = losses.deepmil_loss(logit, pos, ~pos, 100, 0.0)
    frac, _ = losses.deepmil_loss(logit, pos, ~pos, 100, 0.0, fraction=0.1)
    assert fixed > 1.1 and abs(float(frac) - 1.0) < 0.02


def test_mil_match_bags_removes_the_small_bag_bias():
    """A small positive bag's top-10 % mean lies below a large negative bag's (1.49 against 1.74
    sd for 15 and 200 draws), so the fraction hinge still pays for spread there (DeepMIL collapsed
    to one constant score on 2 of 3 seeds of `small`); bags cut to equal size do not pay."""
    from Baselines_MIL import losses

    pos = torch.zeros(1, 2, 10, dtype=torch.bool)
    pos[0, 0, :3] = True
    pos[0, 1, :7] = True
    p, n = losses.match_bag_sizes(pos, ~pos, torch.Size([1, 2, 10]))
    assert p.sum(-1).tolist() == n.sum(-1).tolist() == [[3, 3]]
    assert not (p & ~pos).any() and not (n & pos).any()

    torch.manual_seed(0)
    pos = torch.zeros(4000, 1, 216, dtype=torch.bool)
    pos[..., :16] = True  # a 16 x 16 crop row with few pixels of the positive bag
    spread = {}
    for match in (False, True):
        loss = [float(losses.deepmil_loss(torch.randn(4000, 1, 216) * sd, pos, ~pos, 100, 0.5, 0.1, match)[0])
                for sd in (0.1, 1.0)]
        spread[match] = loss[1] - loss[0]
    assert spread[False] > 0.03 and abs(spread[True]) < 0.01


@pytest.mark.parametrize("method", ["deepmil", "arnet", "rtfm", "mgfn"])
def test_mil_topk_per_variable(method, tiny_batch):
    """``mil_topk_per variable``: each variable ranks its own pixels, so a variable whose
    positive-bag scores are below another variable's still gets pushed up (with one top-k
    per (sample, week) row the higher variable fills the positive top-k alone)."""
    from models.methods import ScoreOutput

    root, batch = tiny_batch
    pos = batch["mask_extreme_loss"] > 0.5
    if not pos.any() or pos.all():
        pytest.skip("tiny batch without both bags")
    grads = {}
    for per in ("row", "variable"):
        torch.manual_seed(0)
        model = build(_cfg(root, method, mil_topk_per=per, mil_instance_dropout=0.0))
        model.train()
        n, v, _, t, h, w = batch["x"].shape
        out = model(batch["x"])  # a real forward for the magnitude shapes
        logit = torch.zeros(n, v, t, h, w)
        logit[:, 0] = 3.0  # variable 0 scores above every other variable everywhere
        logit = logit + 0.01 * torch.randn_like(logit)
        logit.requires_grad_(True)
        out = ScoreOutput.from_scores(logit, model.threshold, magnitude=logit.detach().abs() + 1.0)
        loss, _ = model.compute_loss(out, batch)
        assert torch.isfinite(loss)
        (g,) = torch.autograd.grad(loss, logit)
        grads[per] = g
    pos_px = pos.reshape(n, 1, 1, h, w).expand(n, v, t, h, w)
    other = torch.zeros(n, v, t, h, w, dtype=torch.bool)
    other[:, 1:] = True
    pushed = lambda g: float(g[pos_px & other].min())  # noqa: E731
    assert pushed(grads["row"]) == 0.0  # only variable 0 in the positive top-k
    assert pushed(grads["variable"]) < 0.0  # every variable's positive top-k goes up
