"""What the engine's evaluation pass hands each ``(batch, out)`` to, and what it reads back.

A collector accumulates one kind of result over a split (confusion counts, driver votes, a
prediction file) and says which of its results may pick a best checkpoint; the engine knows
nothing else about metrics. Subclass :class:`Collector` and override what applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["Collector"]


class Collector:
    """Base of every collector: a result key, per-batch updates, a DDP reduction, an optional file."""

    #: key of ``result()`` in the metrics dict; None: the collector reports nothing
    name: str | None = None
    #: best-checkpoint key -> (path of a value inside ``result()``, True if lower is better): training
    #: keeps ``best_<key>_model.pth`` for every key a validation pass's collectors declare
    checkpoint_keys: Mapping[str, tuple[tuple[str, ...], bool]] = {}

    def update(self, batch: dict[str, Any], out: Any) -> None:
        """Add one batch (on the device) and the model's output for it."""
        raise NotImplementedError

    def all_reduce(self) -> None:  # noqa: B027 - most collectors hold nothing to reduce
        """Sum the state over DDP ranks; every rank calls it once, before ``result``."""

    def result(self) -> dict[str, Any]:
        """The collector's metrics (after ``all_reduce``, on every rank)."""
        return {}

    def save(self, run_dir: Path, split: str) -> None:  # noqa: B027 - most collectors write no file
        """Write the collector's file into ``run_dir`` (rank 0, at the end of a test pass)."""
