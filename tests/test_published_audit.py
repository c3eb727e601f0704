"""Released baseline checkpoints through the loader that evaluation uses (``models.build.load_checkpoint``).

tests/test_baselines.py checks the published key lists against ``model.load_state_dict``; a released
model is evaluated through ``load_checkpoint`` (``utils/run.py``), which first compares the file with
the whole ``model.state_dict()``: this checks that path, file for file, with every tensor landing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from config import load_config
from models.build import load_checkpoint
from models.methods import method_spec

RELEASED = {"DeepMIL": "deepmil", "ARNet": "arnet", "RTFM": "rtfm", "SimpleNet": "simplenet",
            "STEALNet": "stealnet", "UniAD": "uniad"}  # published key list -> --method of a released model


def _published_state(path: Path) -> dict[str, torch.Tensor]:
    """Distinct values (arange) with the listed names, shapes and dtypes, so a dropped tensor shows."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape, dtype = line.split("\t")
            shape = tuple(ast.literal_eval(shape))
            out[name] = (torch.arange(int(torch.tensor(shape).prod())) % 7).reshape(shape).to(getattr(torch, dtype))
    return out


def _save_published(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({"epoch": 1, "mean_loss_train": 0.0, "mean_loss_validation": 0.0,
                "model_state_dict": state, "optimizer_state_dict": {}}, path)
    return path


@pytest.mark.filterwarnings("ignore:SimpleNet without")
@pytest.mark.parametrize("published", list(RELEASED))
def test_released_baseline_checkpoint_loads_for_evaluation(published, reference_dir, tmp_path):
    state = _published_state(reference_dir / f"baseline_keys_{published}.txt")
    overrides = {"method": RELEASED[published]}
    if published == "SimpleNet":  # released with its frozen backbone as a second file
        backbone = _published_state(reference_dir / "baseline_keys_SimpleNet_backbone.txt")
        overrides["simplenet_backbone"] = str(_save_published(backbone, tmp_path / "backbone.pth"))
    cfg = load_config(reference_dir / "published_config_example.pkl", overrides=overrides)
    model = method_spec(cfg.method).build(cfg)
    load_checkpoint(model, _save_published(state, tmp_path / "checkpoint.pth"))
    own = model.state_dict()
    for name, value in state.items():
        assert torch.equal(own[name], value), name
