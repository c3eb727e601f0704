"""Classifier re-training (utils/refit.py): the flags stay the source checkpoint's, the classifier moves,
the test uses the refit, a repeated run keeps it, and bad options stop before training."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import tiny_run_args
from utils.run_folder import REFIT_FILE, best_checkpoint, find_eval_checkpoint, load_checkpoint_dict


def _args(root, log, name, *extra):
    return [*tiny_run_args(root, log, name), "--max_train_batches", "3", "--classifier_refit_epochs", "2", *extra]


def _cfg(argv):
    from config import parse_config

    return parse_config(argv, fixed={"dataset": "synthetic"})


def test_refit_moves_only_the_classifier_and_the_test_uses_it(tiny_root, tmp_path, capsys):
    import test_synthetic
    import train_synthetic

    assert train_synthetic.main(_args(tiny_root, tmp_path, "r")) == 0
    run = tmp_path / "r"
    refit = load_checkpoint_dict(run / REFIT_FILE)
    source = load_checkpoint_dict(run / refit["refit"]["source"])
    assert refit["refit"] == {"source": "best_driver_F1_model.pth", "source_epoch": 1, "epochs": 2,
                              "lr": 5e-4, "seed": 0}
    moved = []
    for key, value in source["model_state_dict"].items():
        same = torch.equal(value, refit["model_state_dict"][key])
        if key.startswith("cls."):
            moved.append(not same)
        else:  # encoder and quantizer: exactly the source's, so the flags are too
            assert same, key
    assert any(moved)
    assert "drivers/pooled/f1" in refit["metrics_validation"]  # validated after the refit
    log = (run / "train.log").read_text()
    assert "classifier refit: 2 epochs of 3 steps on the frozen flags of best_driver_F1_model.pth" in log
    assert "epoch 3/3" in log  # the refit epochs are counted on past n_epochs

    assert find_eval_checkpoint(_cfg(_args(tiny_root, tmp_path, "r"))) == run / REFIT_FILE
    assert test_synthetic.main(_args(tiny_root, tmp_path, "r")) == 0
    assert f"checkpoint {run / REFIT_FILE}" in capsys.readouterr().out


def test_a_resumed_run_keeps_its_refit_and_overwrite_removes_it(tiny_root, tmp_path):
    import train_synthetic

    assert train_synthetic.main(_args(tiny_root, tmp_path, "k")) == 0
    path = tmp_path / "k" / REFIT_FILE
    before = path.stat().st_mtime_ns
    assert train_synthetic.main(_args(tiny_root, tmp_path, "k", "--resume", "true")) == 0
    assert path.stat().st_mtime_ns == before  # the same refit is not done again
    assert best_checkpoint(tmp_path / "k") == path
    source = tmp_path / "k" / "best_driver_F1_model.pth"
    state = load_checkpoint_dict(source)
    state["epoch"] += 1  # training went on and replaced the refit's source: the refit is stale
    torch.save(state, source)
    assert best_checkpoint(tmp_path / "k") == source
    assert train_synthetic.main(_args(tiny_root, tmp_path, "k", "--overwrite", "true",
                                      "--classifier_refit_epochs", "0")) == 0
    assert not path.exists()


def test_the_refit_is_reproducible(tiny_root, tmp_path):
    """Two runs with the same options give the same refit, bit for bit (it is seeded)."""
    import train_synthetic

    for name in ("a", "b"):
        assert train_synthetic.main(_args(tiny_root, tmp_path, name)) == 0
    a = load_checkpoint_dict(tmp_path / "a" / REFIT_FILE)["model_state_dict"]
    b = load_checkpoint_dict(tmp_path / "b" / REFIT_FILE)["model_state_dict"]
    assert all(torch.equal(v, b[k]) for k, v in a.items())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--classifier_refit_epochs", "-1"], "option 'classifier_refit_epochs' is -1"),
        (["--classifier_refit_lr", "0"], "option 'classifier_refit_lr' is 0"),
        (["--method", "rtfm", "--driver_gate", "none"], "method 'rtfm' has no classifier to refit"),
    ],
)
def test_bad_refit_options_stop_before_training(tiny_root, tmp_path, capsys, extra, message):
    """Out-of-range values stop when the options are parsed, the method mismatch when training is set up;
    either way in one line naming the option, and nothing is written."""
    from utils.errors import UserError
    from utils.run import train

    with pytest.raises((UserError, SystemExit)) as stop:
        train(_cfg(_args(tiny_root, tmp_path, "bad", *extra)), log=lambda _: None)
    said = str(stop.value) if isinstance(stop.value, UserError) else capsys.readouterr().err
    assert message in said
    assert not (tmp_path / "bad").exists()
