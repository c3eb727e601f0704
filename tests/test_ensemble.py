"""Seed ensembles (``--ensemble RUN ...``): flags united, extreme probabilities averaged, and the
errors that name the option."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from conftest import tiny_run_args
from torch import nn

from models.ensemble import FlagEnsemble


@dataclass
class _Out:
    logits: torch.Tensor
    anomaly: torch.Tensor
    z: torch.Tensor


class _Fixed(nn.Module):
    def __init__(self, prob: float, flags: list[int]) -> None:
        super().__init__()
        self.prob, self.flags = prob, flags

    def forward(self, x):
        logits = torch.full((1, 1, 1, 2), float(torch.logit(torch.tensor(self.prob))))
        anomaly = torch.tensor(self.flags, dtype=torch.uint8).view(1, 1, 1, 1, 2)
        return _Out(logits, anomaly, z=torch.full((1,), self.prob))


def test_flags_are_united_and_probabilities_averaged():
    out = FlagEnsemble([_Fixed(0.9, [1, 0]), _Fixed(0.5, [0, 0]), _Fixed(0.1, [0, 1])])(torch.zeros(1))
    assert torch.sigmoid(out.logits).flatten().tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    assert out.anomaly.flatten().tolist() == [1, 1] and out.anomaly.dtype == torch.uint8
    assert out.z.item() == pytest.approx(0.9)  # everything else comes from the first member


def test_one_member_is_no_ensemble():
    with pytest.raises(ValueError, match="at least two members"):
        FlagEnsemble([_Fixed(0.5, [0, 0])])


_args = tiny_run_args


def test_ensemble_of_two_runs_through_the_test_script(tiny_root, tmp_path, capsys):
    import test_synthetic
    import train_synthetic
    from config import parse_config
    from utils.run import evaluate

    assert train_synthetic.main(_args(tiny_root, tmp_path, "a")) == 0
    assert train_synthetic.main(_args(tiny_root, tmp_path, "b", "--seed", "1")) == 0
    assert test_synthetic.main(_args(tiny_root, tmp_path, "a", "--ensemble", "b", "--driver_gate", "extreme")) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 runs: flags united, extreme probabilities averaged" in out
    assert "| IDE (CNN_3D), ensemble of 2 |" in out
    metrics = json.loads((tmp_path / "a" / "metrics_test.json").read_text())
    assert [p.split("/")[-2] for p in metrics["ensemble"]] == ["a", "b"]

    # the ensemble flags at least what each member flags alone
    alone = evaluate(parse_config(_args(tiny_root, tmp_path, "b"), fixed={"dataset": "synthetic"}), log=lambda _: None)
    both = evaluate(parse_config(_args(tiny_root, tmp_path, "a", "--ensemble", "b"), fixed={"dataset": "synthetic"}),
                    log=lambda _: None)
    for key in ("per_variable",):
        for v, s in both["drivers"][key].items():
            assert s["n_pred"] >= alone["drivers"][key][v]["n_pred"], v


@pytest.mark.parametrize(
    ("members", "message"),
    [(["a"], "option 'ensemble': 'a' is this run"), (["nope"], "option 'ensemble': no checkpoint in")],
)
def test_bad_members_name_the_option(tiny_root, tmp_path, members, message):
    import train_synthetic
    from config import parse_config
    from utils.run import SetupError, evaluate

    assert train_synthetic.main(_args(tiny_root, tmp_path, "a")) == 0
    cfg = parse_config(_args(tiny_root, tmp_path, "a", "--ensemble", *members), fixed={"dataset": "synthetic"})
    with pytest.raises(SetupError, match=message):
        evaluate(cfg, log=lambda _: None)


def test_member_trained_on_other_variables_is_refused(tiny_root, tmp_path):
    """A member whose variables come in another order would unite var_06's flags with var_01's."""
    import train_synthetic
    from config import parse_config
    from utils.run import SetupError, evaluate

    names = [f"var_0{i}" for i in range(6, 0, -1)]
    assert train_synthetic.main(_args(tiny_root, tmp_path, "a")) == 0
    assert train_synthetic.main(_args(tiny_root, tmp_path, "b", "--variables", *names)) == 0
    cfg = parse_config(_args(tiny_root, tmp_path, "a", "--ensemble", "b"), fixed={"dataset": "synthetic"})
    with pytest.raises(SetupError, match=r"option 'ensemble': .*b was trained with other options \(variables "):
        evaluate(cfg, log=lambda _: None)
