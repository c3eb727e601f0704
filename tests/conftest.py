"""Shared fixtures: the reference folder (skipped when absent) and tiny generated data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
