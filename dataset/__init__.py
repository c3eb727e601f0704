"""Datasets. Exports resolve lazily so importing one submodule does not load the others.

To add a dataset, add its ``name: module`` pair to ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SyntheticDataset": "dataset.synthetic",
    "ERA5LandDataset": "dataset.era5_land",
    "CERRADataset": "dataset.cerra",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dataset' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
