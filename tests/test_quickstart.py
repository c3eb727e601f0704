"""The quick start's guard against a benchmark folder left by an older preset."""

from __future__ import annotations

from dataset.generate_synthetic import generate
from scripts import quickstart


def test_stale_benchmark_is_refused_before_training(tmp_path, capsys):
    fresh = generate("tiny", tmp_path / "a" / "tiny", seed=0)
    assert quickstart.stale_preset(fresh, "tiny") is None
    assert quickstart.stale_preset(fresh, "small") is None  # another preset's folder: the user's choice

    stale = generate("tiny", tmp_path / "b" / "tiny", seed=0, event_scale=0.5)  # not what "tiny" makes
    assert "event_scale" in quickstart.stale_preset(stale, "tiny")
    assert quickstart.main(["--data", str(stale), "--preset", "tiny", "--dir_log", str(tmp_path / "log")]) == 2
    err = capsys.readouterr().err
    assert "datacube_tiny.nc" in err and "Delete the folder" in err
    assert not (tmp_path / "log").exists()  # nothing trained
