"""The prepared GPU check of the paper-size study runs end to end in its CPU mode (``--dry``)."""

from __future__ import annotations

import json

import pytest


def test_dry_check_trains_and_tests_ide_and_arnet_and_writes_its_table(tmp_path, capfd):
    from scripts import paper_regime_gpu

    out = tmp_path / "check"
    assert paper_regime_gpu.main(["--out", str(out), "--dry"]) == 0
    result = json.loads((out / "paper_regime.json").read_text())
    assert result["dry"] is True and set(result["test_driver_f1"]) == {"ide", "naive", "arnet"}
    assert all(0.0 <= v <= 100.0 for v in result["test_driver_f1"].values())
    printed = capfd.readouterr().out  # the entry scripts run as subprocesses
    assert "test driver F1 ide" in printed and "test driver F1 naive" in printed
    # the recipe's gate, with its extremes from trees on the inputs, ran in the IDE test
    assert "gradient-boosted trees fit on the inputs" in printed
    assert paper_regime_gpu.main(["--out", str(out), "--dry"]) == 2  # nothing is overwritten


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
