"""One spine: methods and dataset families register by name; every entry point reads the registry."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from tests.test_synthetic_scripts import _args


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


def test_every_method_and_family_is_registered():
    from dataset.families import DATASETS
    from models.methods import METHODS, method_spec

    assert METHODS.names()[:12] == ["ide", "deepmil", "arnet", "rtfm", "mgfn", "ocsvm", "iforest", "simplenet",
                               "stealnet", "uniad", "ig1", "ig2"]
    assert DATASETS.names() == ["synthetic", "ERA5_Land", "CERRA", "datacube"]
    assert [n for n in METHODS.names()[:12] if method_spec(n).scores] == [
        "ocsvm", "iforest", "simplenet", "stealnet", "uniad", "ig1", "ig2"]


def test_unknown_names_suggest_the_closest():
    from config import ConfigError, load_config
    from models.methods import method_spec

    with pytest.raises(ConfigError, match=r"option 'method': 'rtfn' is not one of .*did you mean 'rtfm'"):
        load_config(overrides={"method": "rtfn"})
    with pytest.raises(ConfigError, match=r"'era5_land' is not one of synthetic, ERA5_Land, CERRA"):
        load_config(overrides={"dataset": "era5_land"})
    with pytest.raises(ValueError, match="unknown method 'IDE'; did you mean 'ide'"):
        method_spec("IDE")


def test_help_lists_the_registered_names(capsys):
    import train_synthetic

    with pytest.raises(SystemExit):
        train_synthetic.main(["--help"])
    out = capsys.readouterr().out
    assert "--method {ide,deepmil,arnet,rtfm,mgfn,ocsvm," in out
    assert "--dataset {synthetic,ERA5_Land,CERRA,datacube}" in out


def test_method_option_trains_that_method(tiny_root, tmp_path):
    """``train_synthetic.py --method rtfm`` trains RTFM (not IDE) and the test names it."""
    import test_synthetic
    import train_synthetic

    args = _args(tiny_root, tmp_path, "rtfm", "--method", "rtfm", "--mil_hidden", "16", "8")
    assert train_synthetic.main(args) == 0
    state = torch.load(tmp_path / "rtfm" / "last.pth", map_location="cpu", weights_only=True)["model_state_dict"]
    assert any(k.startswith("Aggregate.") for k in state) and not any(k.startswith("vq.") for k in state)
    assert test_synthetic.main(args) == 0
    assert json.loads((tmp_path / "rtfm" / "metrics_test.json").read_text())["method"] == "rtfm"


def test_baseline_shortcut_refuses_other_methods(tiny_root, tmp_path, capsys):
    from Baselines_MIL import train_mil

    with pytest.raises(SystemExit) as err:
        train_mil.main(_args(tiny_root, tmp_path, "x"))  # the config's default method is ide
    assert err.value.code == 2
    assert "Baselines_MIL.train_mil runs deepmil, arnet, rtfm, mgfn; got 'ide'" in capsys.readouterr().err


def test_simplenet_refuses_a_random_backbone(tiny_root, tmp_path, capsys):
    import train_synthetic

    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "sn", "--method", "simplenet"))
    assert err.value.code == 2 and "option 'simplenet_backbone' is not set" in capsys.readouterr().err
    assert not (tmp_path / "sn").exists()


class ToyMethod(nn.Module):
    """The smallest method: one scale per variable, flags where the scaled input is positive."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(len(cfg.variables)))

    def forward(self, x: torch.Tensor):
        from models.methods import ScoreOutput

        s = x[:, :, 0] * self.scale[None, :, None, None, None]  # [N, V, T, H, W], newest week first
        return ScoreOutput((s > 0).to(torch.uint8), s, logits=s.mean(1)[:, :1])  # logits [N, 1, H, W]

    def compute_loss(self, out, batch):
        target = batch["mask_extreme"].to(out.logits.dtype)
        loss = nn.functional.binary_cross_entropy_with_logits(out.logits[:, 0], target)
        return loss, {"bce": float(loss.detach())}


def test_a_new_method_registers_and_trains(tiny_root, tmp_path):
    """What docs/design/architecture.md shows: one module, one registration, and every entry point runs it."""
    import test_synthetic
    import train_synthetic
    from models.methods import Method, MethodSpec, register_method

    register_method(MethodSpec("toy", "Toy", build=ToyMethod, family="examples"), replace=True)
    assert isinstance(ToyMethod.__new__(ToyMethod), Method)
    args = _args(tiny_root, tmp_path, "toy", "--method", "toy")
    assert train_synthetic.main(args) == 0
    state = torch.load(tmp_path / "toy" / "last.pth", map_location="cpu", weights_only=True)
    assert list(state["model_state_dict"]) == ["scale"] and state["epoch"] == 0
    assert test_synthetic.main(args) == 0
    metrics = json.loads((tmp_path / "toy" / "metrics_test.json").read_text())
    assert metrics["method"] == "toy" and set(metrics["drivers"]["per_variable"]) == {f"var_0{i}" for i in range(1, 7)}
