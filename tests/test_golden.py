"""Published-checkpoint compatibility: key lists, authors-format checkpoints, golden outputs."""

from __future__ import annotations

import ast

import pytest
import torch

from config import Config, load_config
from models import build_model, export_published, load_checkpoint
from tests.conftest import ROOT


def published_recipe(encoder: str) -> Config:
    """The golden values were made with the published losses: build with the paper preset."""
    return load_config(ROOT / "configs" / "paper.yaml", overrides={"encoder": encoder})


def _keys(path):
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape, dtype = line.split("\t")
        out[name] = (tuple(ast.literal_eval(shape)), dtype.strip())
    return out


@pytest.mark.parametrize("encoder", ["CNN_3D", "Swin_3D", "Mamba"])
@pytest.mark.parametrize("channels", [1, 2])
def test_state_dict_matches_published_keys(reference_dir, encoder, channels):
    ref = _keys(reference_dir / f"checkpoint_keys_{encoder}_C{channels}.txt")
    model = build_model(Config(encoder=encoder, in_channels=channels))
    own = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}
    assert own == ref


@pytest.mark.parametrize("encoder", ["CNN_3D", "Swin_3D"])
def test_golden_outputs(reference_dir, encoder, tmp_path):
    golden = torch.load(reference_dir / f"golden_{encoder}.pt", weights_only=False)
    model = build_model(published_recipe(encoder))
    load_checkpoint(model, reference_dir / f"authors_format_checkpoint_{encoder}.pth")
    x, ev, tr = golden["input"], golden["eval"], golden["train"]

    model.eval()
    with torch.no_grad():
        out = model(x)
    torch.testing.assert_close(out.logits, ev["z"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out.heads, torch.cat(ev["y"], dim=1), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.z_q, ev["z_q"], atol=1e-4, rtol=0)
    assert float(out.aux_loss) == 0.0
    differ = out.anomaly.long() != ev["anomaly"]
    if differ.any():  # allowed only where the quantizer's score is within 1e-4 of zero
        score = (
            torch.einsum("nvdthw,d->nvthw", out.z, model.vq.project_in.weight[0])
            + model.vq.project_in.bias[0]
        )
        assert score[differ].abs().max() < 1e-4

    model.train()
    out = model(x)
    assert (out.anomaly.long() == tr["anomaly"]).float().mean() > 0.999
    torch.testing.assert_close(out.logits, tr["z"], atol=1e-4, rtol=0)
    batch = {"mask_extreme": tr["mask_extreme"], "mask_extreme_loss": tr["mask_extreme_loss"]}
    loss, parts = model.compute_loss(out, batch)
    assert parts["aux"] == pytest.approx(tr["loss_z_q"].item(), rel=1e-5)
    assert parts["bce_joint"] == pytest.approx(tr["loss_bce_joint"].item(), rel=1e-5)
    assert parts["bce_heads"] == pytest.approx(tr["loss_bce_heads_sum"].item(), rel=1e-5)
    assert parts["anomaly_l1"] == pytest.approx(tr["loss_anomaly_l1"].item(), rel=1e-5)
    loss.backward()

    # export in the published format and load it back (module. prefix too)
    path = export_published(model, tmp_path / "exported.pth")
    ckpt = torch.load(path, weights_only=False)
    assert set(ckpt) == {
        "epoch",
        "mean_loss_train",
        "mean_loss_validation",
        "model_state_dict",
        "optimizer_state_dict",
    }
    ckpt["model_state_dict"] = {"module." + k: v for k, v in ckpt["model_state_dict"].items()}
    torch.save(ckpt, tmp_path / "prefixed.pth")
    other = build_model(published_recipe(encoder))
    load_checkpoint(other, tmp_path / "prefixed.pth")
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k


@pytest.mark.parametrize("encoder", ["CNN_3D", "Swin_3D"])
def test_golden_outputs_from_the_published_config(reference_dir, encoder):
    """The path a released model takes (its config.pkl, not configs/paper.yaml) gives the golden
    outputs too, and would run them in float32 on a GPU as well: bf16 autocast moves these logits
    by up to ~1.3 and flips ~0.2 % of the anomaly flags."""
    from utils.runtime import resolve_amp

    golden = torch.load(reference_dir / f"golden_{encoder}.pt", weights_only=False)
    cfg = load_config(reference_dir / "published_config_example.pkl", overrides={"encoder": encoder})
    assert resolve_amp(cfg.amp, torch.device("cuda")) is None
    model = build_model(cfg)
    load_checkpoint(model, reference_dir / f"authors_format_checkpoint_{encoder}.pth")
    model.eval()
    with torch.no_grad():
        out = model(golden["input"])
    torch.testing.assert_close(out.logits, golden["eval"]["z"], atol=1e-4, rtol=0)
    torch.testing.assert_close(out.heads, torch.cat(golden["eval"]["y"], dim=1), atol=1e-4, rtol=0)
    assert (out.anomaly.long() == golden["eval"]["anomaly"]).float().mean() > 0.999
    model.train()
    out = model(golden["input"])
    tr = golden["train"]
    batch = {"mask_extreme": tr["mask_extreme"], "mask_extreme_loss": tr["mask_extreme_loss"]}
    _, parts = model.compute_loss(out, batch)
    assert parts["bce_joint"] == pytest.approx(tr["loss_bce_joint"].item(), rel=1e-5)
    assert parts["anomaly_l1"] == pytest.approx(tr["loss_anomaly_l1"].item(), rel=1e-5)
