"""Evaluate in one command: a published config.pkl + a published-format checkpoint on our data."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


def test_published_config_and_checkpoint_evaluate_on_tiny_data(reference_dir, tiny_root, tmp_path, capsys):
    import test_synthetic
    from config import load_config
    from models import build_model, load_checkpoint

    pkl = reference_dir / "published_config_example.pkl"
    ckpt = reference_dir / "authors_format_checkpoint_Swin_3D.pth"

    # the model built from the published config is the published architecture and loads the file
    cfg = load_config(pkl)
    model = build_model(cfg)
    load_checkpoint(model, ckpt)
    assert cfg.encoder == "Swin_3D" and cfg.loss_weighting == "published"

    argv = ["--config", str(pkl), "--checkpoint", str(ckpt), "--root_synthetic", str(tiny_root),
            "--times_test", "131", "156", "--x_max", "16", "--y_max", "16", "--n_workers", "0",
            "--max_eval_batches", "3", "--device", "cpu", "--dir_log", str(tmp_path), "--name", "published"]
    assert test_synthetic.main(argv) == 0
    assert "IDE (Swin_3D)" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "published" / "metrics_test.json").read_text())
    assert 0.0 <= metrics["drivers"]["pooled"]["f1"] <= 1.0
    assert metrics["checkpoint"].endswith("authors_format_checkpoint_Swin_3D.pth")


def test_published_checkpoint_survives_our_export_round_trip(reference_dir, tmp_path):
    from config import load_config
    from models import build_model, export_published, load_checkpoint

    cfg = load_config(reference_dir / "published_config_example.pkl")
    model = build_model(cfg)
    load_checkpoint(model, reference_dir / "authors_format_checkpoint_Swin_3D.pth")
    path = export_published(model, tmp_path / "exported.pth")
    again = build_model(cfg)
    load_checkpoint(again, path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
