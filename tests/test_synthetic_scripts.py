"""End to end: generator ``tiny`` -> train_synthetic.py -> test_synthetic.py --save_predictions true.

Runs the entry points in-process (``main(argv)``) on an 8x8 crop with a few batches,
so it checks the wiring, files and round trip, not learning.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from cf_checks import check_cf
from conftest import tiny_run_args

pytest.importorskip("dataset.synthetic")
pytest.importorskip("dataset.generate_synthetic")
pytest.importorskip("models.build")


_args = tiny_run_args


def test_train_then_test_with_predictions(tiny_root, tmp_path, capsys):
    import xarray as xr

    import test_synthetic
    import train_synthetic
    from utils.metrics import driver_scores

    assert train_synthetic.main(_args(tiny_root, tmp_path, "e2e")) == 0
    run = tmp_path / "e2e"
    for f in ("config.yaml", "train.log", "last.pth", "best_loss_model.pth", "best_F1_model.pth",
              "best_driver_F1_model.pth"):
        assert (run / f).is_file(), f
    config_before = (run / "config.yaml").read_text()

    assert test_synthetic.main(_args(tiny_root, tmp_path, "e2e", "--save_predictions", "true")) == 0
    out = capsys.readouterr().out
    assert "| Naive" in out and "IDE (CNN_3D)" in out
    assert (run / "config.yaml").read_text() == config_before
    assert (run / "config_test_test.yaml").is_file()

    metrics = json.loads((run / "metrics_test.json").read_text())
    assert set(metrics["extremes"]) >= {"precision", "recall", "f1", "iou", "oa"}
    for part in (metrics["drivers"], metrics["naive"]):
        assert set(part["pooled"]) >= {"precision", "recall", "f1", "iou", "oa"}
        assert set(part["per_variable"]) == {f"var_0{i}" for i in range(1, 7)}
    for v in metrics["drivers"]["per_variable"].values():
        assert v["f1"] is None or 0.0 <= v["f1"] <= 1.0
        assert 0.0 <= v["fpr"] <= 1.0
    assert metrics["naive"]["pooled"]["f1"] > 0  # tiny has extremes in the test split

    with xr.open_dataset(run / "drivers_test.nc") as nc:
        assert nc["driver"].dtype == np.uint8 and nc["driver"].dims == ("var", "time", "y", "x")
        assert list(nc["var"].values) == [f"var_0{i}" for i in range(1, 7)]
        assert nc["time"].values[0] == 131 and nc["time"].values[-1] == 156
        assert nc["extreme"].dims == ("time", "y", "x") and nc["extreme_prob"].dtype == np.float32
        assert "latitude" in nc.coords and nc.sizes["y"] == 8
        again = driver_scores(nc["driver"].values, nc["driver_true"].values, list(nc["var"].values))
        check_cf(nc, ("latitude", "longitude"))
        # 2 batches of 2 samples: targets 138..141; 131..137 can never be one (8-week windows)
        assert nc["time"].values[nc["target"].values == 1].tolist() == [138, 139, 140, 141]
    assert json.loads(json.dumps(again)) == metrics["drivers"]

    from vis import report
    from vis.runs import load_run

    labels, pred, true = report.extreme_counts(load_run(run, "test"))
    assert labels == ["138", "139", "140", "141"] and len(pred) == len(true) == 4
    page = report.build_report(run, "test", tmp_path / "r.html", n=1).read_text()
    assert "4 target weeks 138 .. 141" in page and "target weeks 131" not in page


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_trains_checkpoints_and_resumes(tiny_root, tmp_path, monkeypatch, amp):
    """The engine's autocast + GradScaler path with the real model, on CPU autocast.

    ``--amp bf16`` autocasts on CPU as asked; fp16 is set on CUDA only, so its dtype is forced on the
    CPU runtime here to run the GradScaler lines without a GPU (the code is device-generic).
    """
    import math

    import torch

    import train_synthetic
    from utils import engine

    real = engine.setup_runtime

    def cpu_fp16(cfg):
        rt = real(cfg)
        rt.amp_dtype = torch.float16
        return rt

    if amp == "fp16":
        monkeypatch.setattr(engine, "setup_runtime", cpu_fp16)
    args = _args(tiny_root, tmp_path, amp, "--amp", amp, "--encoder", "Swin_3D")
    assert train_synthetic.main(args) == 0
    run = tmp_path / amp
    assert f"amp {amp}" in (run / "train.log").read_text()
    first = torch.load(run / "last.pth", map_location="cpu", weights_only=True)
    assert math.isfinite(first["mean_loss_train"]) and math.isfinite(first["mean_loss_validation"])
    assert all(torch.isfinite(v).all() for v in first["model_state_dict"].values() if v.is_floating_point())
    if amp == "fp16":
        assert first["scaler_state_dict"]["scale"] > 0  # loss scale kept for --resume
    else:
        assert first["scaler_state_dict"] == {}  # bf16 needs no loss scaling

    assert train_synthetic.main([*args, "--n_epochs", "2", "--resume", "true"]) == 0
    second = torch.load(run / "last.pth", map_location="cpu", weights_only=True)
    assert second["epoch"] == 1 and math.isfinite(second["mean_loss_train"])
    changed = [k for k, v in first["model_state_dict"].items() if not torch.equal(v, second["model_state_dict"][k])]
    assert changed  # the resumed epoch trained


def test_user_errors_exit_2(tiny_root, tmp_path, capsys):
    import train_synthetic

    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "bad", "--variables", "var_01", "var_99",
                                   "--in_channels_dynamic", "2"))
    assert err.value.code == 2
    assert "var_99" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "bad", "--x_max", "64"))
    assert err.value.code == 2 and "'x_max' = 64 cut outside the grid" in capsys.readouterr().err


def test_driver_ceiling_oracle_and_supervised_run(tiny_root, tmp_path, capsys):
    """The study's upper bounds: the oracle rules are scored, and the supervised run leaves an IDE checkpoint."""
    import torch

    from scripts import driver_ceiling

    base = _args(tiny_root, tmp_path, "ceiling")
    assert driver_ceiling.main(["oracle", *base]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| every anomaly")]
    assert len(rows) == 4
    every, signed, followed, around = (float(r.split("|")[3]) for r in rows)  # precision: each rule only
    assert signed >= every and followed >= every and around >= every  # removes false positives of "every anomaly"
    assert "every anomaly (driver or random)" in out and "100.00 |" in rows[0]  # recall of "every anomaly" is 1
    assert "a true extreme <= 7 weeks later" in rows[2] and "a true extreme 4 weeks before to 9 after" in rows[3]
    assert float(rows[3].split("|")[4]) >= float(rows[2].split("|")[4])  # the wider window keeps every driver it did

    assert driver_ceiling.main(["extremes", *base]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("extremes from each pixel's 8-week window of true anomaly masks") and "test F1" in line

    assert driver_ceiling.main(["supervised", *base]) == 0
    state = torch.load(tmp_path / "ceiling" / "last.pth", map_location="cpu", weights_only=False)
    assert any(k.startswith("vq.project_in") for k in state["model_state_dict"])


def test_check_tree_takes_the_folder_root_synthetic_takes(tiny_root, tmp_path, capsys):
    """scripts/check_tree.py synthetic --root: the experiment folder, as every --root_synthetic."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_tree

    from dataset.synthetic import SyntheticDataset

    assert SyntheticDataset(root=tiny_root, times=(1, 104), delta_t=8).files["datacube"].is_file()
    assert check_tree.main(["synthetic", "--root", str(tiny_root)]) == 0
    assert check_tree.main(["synthetic", "--root", str(tiny_root.parent)]) == 0  # a folder of experiments
    assert "1 synthetic experiment folder(s): tiny" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert check_tree.main(["synthetic", "--root", str(tmp_path / "empty")]) == 1
    assert "--root_synthetic" in capsys.readouterr().err
