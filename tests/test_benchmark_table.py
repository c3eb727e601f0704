"""The table script end to end on tiny data: two cheap methods + Naive, one seed, one short epoch."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("table") / "tiny", seed=0)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # the script's --threads 1 is process-wide


def test_table_runs_and_resumes(tiny_root, tmp_path, capsys, restore_threads):
    from scripts.benchmark_table import main

    out = tmp_path / "table"
    argv = ["--root_synthetic", str(tiny_root), "--methods", "iforest", "deepmil", "--seeds", "1",
            "--epochs", "1", "--out", str(out), "--x_max", "8", "--y_max", "8", "--max_train_batches", "1",
            "--max_eval_batches", "2", "--encoder", "CNN_3D", "--mil_topk", "5",
            "--iforest_n_estimators", "10",
            "--oneclass_n_fit", "200", "--threads", "1"]
    assert main(argv) == 0
    for run in ("iforest_s0", "deepmil_s0"):
        assert (out / "runs" / run / "metrics_val.json").is_file()
        assert (out / "runs" / run / "metrics_test.json").is_file()
    rows = list(csv.reader(open(out / "table.csv")))
    assert rows[0][:7] == ["method", "F1 val", "IoU val", "OA val", "F1 test", "IoU test", "OA test"]
    assert [r[0] for r in rows[1:]] == ["Naive", "Isolation Forest", "DeepMIL"]
    assert all(0 <= float(v) <= 100 for r in rows[1:] for v in r[1:7])
    md = (out / "table.md").read_text()
    assert md.startswith("| method | F1 val") and "Naive" in md
    saved = yaml.safe_load((out / "runs" / "deepmil_s0" / "config.yaml").read_text())
    assert saved["mil_topk_per"] == "variable" and saved["mil_match_bags"] is True  # the table's DeepMIL

    capsys.readouterr()
    assert main(argv) == 0  # second call: nothing retrained
    assert capsys.readouterr().out.count("done before, skipped") == 2

    # seeds split over two calls that share --out, then one call that aggregates them
    one = ["--methods", "iforest", "--seeds", "1", "--first_seed", "1"]
    assert main([*argv[:2], *one, *argv[7:]]) == 0
    assert (out / "runs" / "iforest_s1" / "metrics_test.json").is_file()
    assert main([*argv[:2], "--methods", "iforest", "--seeds", "2", *argv[7:]]) == 0
    assert capsys.readouterr().out.count("done before, skipped") == 2
    rows = {r[0]: r for r in csv.reader(open(out / "table.csv"))}
    assert rows["Isolation Forest"][9] == "2" and "±" in rows["Isolation Forest"][1]


def test_unknown_method_is_an_error(tiny_root, tmp_path):
    from scripts.benchmark_table import main

    with pytest.raises(SystemExit):
        main(["--root_synthetic", str(tiny_root), "--methods", "nosuch", "--out", str(tmp_path)])


def test_method_defaults_yield_to_the_command_line(tiny_root, tmp_path, restore_threads):
    from scripts.benchmark_table import main

    out = tmp_path / "table"
    assert main(["--root_synthetic", str(tiny_root), "--methods", "arnet", "--seeds", "1", "--epochs", "1",
                 "--out", str(out), "--x_max", "8", "--y_max", "8", "--max_train_batches", "1",
                 "--max_eval_batches", "1", "--encoder", "CNN_3D", "--mil_topk_per", "row",
                 "--threads", "1"]) == 0
    saved = yaml.safe_load((out / "runs" / "arnet_s0" / "config.yaml").read_text())
    assert saved["mil_topk_per"] == "row" and saved["method"] == "arnet"


def test_ig_attributes_only_after_training(tiny_root, tmp_path, monkeypatch, restore_threads):
    """Training validates IG on extremes only: its n_steps attribution passes wait for calibration and test."""
    from Baselines_Attribution.models import IGModel
    from scripts.benchmark_table import main
    from utils import engine

    calls = {"n": 0}
    original = IGModel.attributions

    def counted(self, x, logits):
        calls["n"] += 1
        return original(self, x, logits)

    monkeypatch.setattr(IGModel, "attributions", counted)
    train_calls = {}
    fit = engine.fit

    def fit_and_count(*args, **kwargs):
        before = calls["n"]
        result = fit(*args, **kwargs)
        train_calls["n"] = calls["n"] - before
        return result

    monkeypatch.setattr(engine, "fit", fit_and_count)
    argv = ["--root_synthetic", str(tiny_root), "--methods", "ig1", "--seeds", "1", "--epochs", "1",
            "--out", str(tmp_path / "t"), "--x_max", "8", "--y_max", "8", "--max_train_batches", "1",
            "--max_eval_batches", "1", "--encoder", "CNN_3D", "--ig_n_steps", "2", "--threads", "1"]
    assert main(argv) == 0
    assert train_calls == {"n": 0}  # the epoch's validation pass ran without attributions
    assert calls["n"] >= 2  # val calibration / val / test passes did attribute


def test_train_minutes_and_threshold_survive_interrupted_calls(tmp_path, monkeypatch):
    """A run trained over two calls (the first interrupted) and tested over two (the first killed
    mid-test) reports the sum of its training calls, and its test file says how the threshold was chosen."""
    import types

    from scripts import benchmark_table as bt
    from utils import run as runs

    clock = iter([0.0, 10.0, 100.0, 120.0])  # the interrupted training call: 10 s; the one that ends: 20 s
    monkeypatch.setattr(bt, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    run = tmp_path / "runs" / "iforest_s0"
    monkeypatch.setattr(bt, "_finished", lambda last, n_epochs: (run / "done").is_file())
    chosen = {"threshold": 0.25, "rule": "val_f1", "f1_samples": 64}
    calls = {"train": 0, "test": 0}

    def train(cfg):
        run.mkdir(parents=True, exist_ok=True)
        calls["train"] += 1
        if calls["train"] == 1:
            (run / "last.pth").write_text("")
            raise KeyboardInterrupt  # killed after its first checkpoint
        (run / "done").write_text("")

    def evaluate(cfg, split):
        if split == "val":
            return {"drivers": {"pooled": {"f1": 0.5, "iou": 0.3, "oa": 0.9}}, "driver_threshold": chosen}
        calls["test"] += 1
        if calls["test"] == 1:
            raise KeyboardInterrupt  # killed during the test pass: metrics_val.json is written already
        assert cfg.driver_threshold_rule == "fixed" and cfg.driver_threshold == 0.25
        return {"drivers": {"pooled": {"f1": 0.4, "iou": 0.2, "oa": 0.9}},
                "driver_threshold": {"threshold": 0.25, "rule": "fixed"}}

    monkeypatch.setattr(runs, "train", train)
    monkeypatch.setattr(runs, "evaluate", evaluate)
    base = {"root_synthetic": str(tmp_path)}
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            bt.run_one("iforest", 0, base, tmp_path, 1, print)
    res = bt.run_one("iforest", 0, base, tmp_path, 1, print)
    assert calls["train"] == 2  # the third call found training finished
    assert res["val"]["seconds_train"] == res["test"]["seconds_train"] == 30.0
    assert res["test"]["driver_threshold"] == chosen
    assert bt.summarise({"iforest": [res]})[0]["train_minutes"] == "0.5"
