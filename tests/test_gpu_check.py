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


def test_batch_sweep_rows_and_where_it_stops(monkeypatch):
    import dataclasses
    import types

    @dataclasses.dataclass
    class Cfg:
        train_crop: int = 16
        batch_size: int = 1

    built = []

    def fake_path(name, cfg, ds):
        built.append(cfg.batch_size)
        return types.SimpleNamespace(cfg=cfg, times=[0.04, 0.01, 0.02], peak_gb=1.5,
                                     rt=types.SimpleNamespace(amp_name="bf16"))

    def fake_time(paths, *args):
        if paths[0] is not None and built[-1] == 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(gpu_check, "build_path", fake_path)
    monkeypatch.setattr(gpu_check, "time_paths", fake_time)
    rows = gpu_check.batch_sweep(Cfg(), range(100), [8, 32, 128], warmup=1, steps=1, rounds=3)
    # the median of the rounds: 20 ms for 8 crops of 16 x 16
    assert rows["8"] == {"ms_per_step": 20.0, "samples_per_s": 400.0, "pixels_per_s": 400.0 * 256, "peak_gb": 1.5,
                         "rounds_ms": [40.0, 10.0, 20.0], "amp": "bf16"}
    assert rows["32"] == {"skipped": "out of GPU memory"} and "128" not in rows  # larger batches not tried
    built.clear()
    rows = gpu_check.batch_sweep(Cfg(), range(20), [8, 32, 128], warmup=1, steps=1, rounds=3)
    assert rows["32"] == {"skipped": "the split has 20 samples"} and built == [8] and "128" not in rows


def test_dry_run_reports_steps_roofline_and_an_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["gpu_check"])
    report = gpu_check.main(["--dry", "--encoders", "CNN_3D", "--rounds", "1", "--epoch_encoder", "CNN_3D",
                             "--skip", "f1", "compile", "published", "--work", str(tmp_path / "work")])
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["device"] == "cpu" and saved["dry"] is True
    rows = saved["steps"]["CNN_3D"]
    assert set(rows) == set(gpu_check.VARIANTS) - {"old + fused attention"}  # CNN_3D has no attention
    assert all(r["ms_per_step"] > 0 for r in rows.values())
    # bf16 by name autocasts on CPU too: the dry run takes the bf16 lines of the variants that ask for it
    assert {k: r["amp"] for k, r in rows.items()} == {k: gpu_check.VARIANTS[k]["amp"] for k in rows}
    assert rows["old fp32"]["speedup_vs_old"] == 1.0
    # the same model and batch: the same FLOPs on the old and the new path
    flops = {k: v["tflop_per_step"] for k, v in saved["roofline"].items()}
    assert flops["CNN_3D old fp32"] == flops["CNN_3D new"] > 0
    ep = saved["epoch"]
    assert ep["train_steps"] == ep["epoch_steps"] == ep["train_samples"] > 0 and ep["val_s"] > 0
    assert "device_data auto: DataLoader on cpu" in ep["data_path"] and ep["old_ms_per_step"] > 0
    sweep = saved["batches"]["CNN_3D"]  # the dry run's batches of 8 x 8 crops
    assert list(sweep) == ["2", "4"] and all(r["amp"] == "bf16" and r["ms_per_step"] > 0 for r in sweep.values())
    assert sweep["4"]["pixels_per_s"] == pytest.approx(4 * 64 * 1e3 / sweep["4"]["ms_per_step"])
    assert report["skipped"] == {"published": "--skip", "f1": "--skip", "compile": "--skip"}
    assert "f1" not in saved and saved["compile"] == {} and saved["published"] == {}
