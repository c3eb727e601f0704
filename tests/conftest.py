"""Shared fixtures: the reference folder (skipped when absent) and tiny generated data."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT.parent / "shared" / "reference"

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the checkout; tests that need it skip with a clear message."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference folder {REFERENCE} is absent (it sits beside the checkout in CI)")
    return REFERENCE


@pytest.fixture()
def figures(monkeypatch):
    """Figures the scripts save, kept open (save() closes them) so tests read what was drawn."""
    import matplotlib.pyplot as plt

    kept, real_close = [], plt.close

    def close(fig=None):
        if hasattr(fig, "savefig"):
            kept.append(fig)
        else:
            real_close(fig)

    monkeypatch.setattr(plt, "close", close)
    yield kept
    for fig in kept:
        real_close(fig)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """The generator's ``tiny`` benchmark, made once per test session (modules may define their own)."""
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP oversubscription on a shared CPU (much faster)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def one_line_error(capsys: Any) -> str:
    """The error line an entry script printed (an option error keeps argparse's usage line above it)."""
    err = capsys.readouterr().err.strip()
    if err.startswith("usage:"):
        err = err.split("\n", 1)[1]
    assert "\n" not in err and "Traceback" not in err, err
    return err


def tiny_run_args(root: Path, log: Path, name: str, *extra: str) -> list[str]:
    """Entry-script options for a seconds-long IDE run on an 8 x 8 crop of ``tiny``."""
    return [
        "--root_synthetic", str(root), "--times_train", "1", "104", "--times_val", "105", "130",
        "--times_test", "131", "156", "--x_max", "8", "--y_max", "8", "--encoder", "CNN_3D",
        "--n_epochs", "1", "--batch_size", "2", "--max_train_batches", "1", "--max_eval_batches", "2",
        "--device", "cpu", "--dir_log", str(log), "--name", name, *extra,
    ]

