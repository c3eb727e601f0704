"""scripts/gpu_check.py on CPU: its counters by hand, the published step's parsing, and a dry run's figures."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from scripts import gpu_check


def test_op_bytes_and_flops_by_hand():
    a, b = torch.ones(4), torch.ones(4)
    # one add: reads 2 x 16 bytes, writes 16; the view is free
    assert gpu_check.count_op_bytes(lambda: (a + b).view(2, 2)) == 48
    m, n = torch.ones(2, 3), torch.ones(3, 4)
    assert gpu_check.count_flops(lambda: m @ n) == 2 * 2 * 3 * 4


def test_roofline_names_the_binding_limit():
    limits = {"bf16_tflops_measured": 800.0, "tf32_tflops": 495.0, "hbm_tbs_measured": 3.0}
    # 0.8 TFLOP and 30 GB in 0.1 s: compute needs 1 ms at 800 TFLOP/s, memory 10 ms at 3 TB/s
    r = gpu_check.roofline(0.8e12, 30e9, 0.1, limits, bf16=True)
    assert r["tflops_achieved"] == pytest.approx(8.0) and r["gbs_achieved"] == pytest.approx(300.0)
    assert r["binds"] == "memory" and r["roofline_ms"] == pytest.approx(10.0)
    assert r["compute_share"] == pytest.approx(0.01) and r["memory_share"] == pytest.approx(0.1)
    assert gpu_check.roofline(0.8e12, 30e9, 0.1, None, bf16=True).get("binds") is None  # CPU: no limits


def test_published_step_reads_the_harness_line(tmp_path):
    harness, ref = tmp_path / "harness", tmp_path / "ref"
    harness.mkdir()
    ref.mkdir()
    (harness / "ref_step.py").write_text(
        "import os, sys\n"
        "assert os.environ['IDEE_REF'] and os.environ['DEVICE'] == 'cpu'\n"
        "print(f'{sys.argv[1]} H={sys.argv[2]} N={sys.argv[3]}: 12.5 ms/step, 80.00 samples/s, params=1')\n"
    )
    r = gpu_check.published_step(ref, harness, None, "CNN_3D", 16, 2, "cpu", 60)
    assert r["ms_per_step"] == 12.5 and r["line"].startswith("CNN_3D H=16 N=1")
    (harness / "ref_step.py").write_text("import sys\nsys.exit('no model')\n")
    with pytest.raises(RuntimeError, match="no model"):
        gpu_check.published_step(ref, harness, None, "CNN_3D", 16, 2, "cpu", 60)


def test_dry_run_reports_steps_roofline_and_an_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["gpu_check"])
    report = gpu_check.main(["--dry", "--encoders", "CNN_3D", "--rounds", "1", "--epoch_encoder", "CNN_3D",
                             "--skip", "f1", "compile", "published", "--work", str(tmp_path / "work")])
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["device"] == "cpu" and saved["dry"] is True
    rows = saved["steps"]["CNN_3D"]
    assert set(rows) == set(gpu_check.VARIANTS)
    assert all(r["ms_per_step"] > 0 for r in rows.values())
    # bf16 by name autocasts on CPU too: the dry run takes the bf16 lines of the variants that ask for it
    assert {k: r["amp"] for k, r in rows.items()} == {k: v["amp"] for k, v in gpu_check.VARIANTS.items()}
    assert rows["old fp32"]["speedup_vs_old"] == 1.0
    # the same model and batch: the same FLOPs on the old and the new path
    flops = {k: v["tflop_per_step"] for k, v in saved["roofline"].items()}
    assert flops["CNN_3D old fp32"] == flops["CNN_3D new"] > 0
    ep = saved["epoch"]
    assert ep["train_steps"] == ep["epoch_steps"] == ep["train_samples"] > 0 and ep["val_s"] > 0
    assert "device_data auto: DataLoader on cpu" in ep["data_path"] and ep["old_ms_per_step"] > 0
    assert report["skipped"] == {"published": "--skip", "f1": "--skip", "compile": "--skip"}
    assert "f1" not in saved and saved["compile"] == {} and saved["published"] == {}
