"""Pieces of a real-data sample: the crop, NaN-aware pooling, global statistics, flips, the week cache.

Kept apart from the file reading (``dataset/real_common.py``); both serve ERA5-Land and CERRA
(``dataset/real_dataset.py``).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset.real_common import DataLayoutError


@dataclass(frozen=True)
class Crop:
    """The sample window of a grid: ``x_min:x_max``, ``y_min:y_max`` with y counted from the north.

    ``rows``/``cols`` index the *file* arrays; ``orient`` turns a file-ordered crop north-up.
    The crop is trimmed (south / east) to a multiple of the coarsening factor ``k``.
    """

    grid: tuple[int, int]
    rows: slice
    cols: slice
    flip: bool
    k: int

    @classmethod
    def from_options(
        cls,
        grid: tuple[int, int],
        x_min: int,
        x_max: int,
        y_min: int,
        y_max: int,
        k: int,
        flip: bool,
        where: str,
    ) -> Crop:
        h, w = grid
        if x_min >= w or y_min >= h:
            raise DataLayoutError(
                f"options 'x_min'/'y_min' = {x_min}/{y_min} lie outside the grid {h}x{w} (rows x cols) of {where}"
            )
        if x_max > w or y_max > h:
            warnings.warn(
                f"crop x {x_min}:{x_max}, y {y_min}:{y_max} exceeds the grid {h}x{w} of {where}; "
                f"clamped to x {x_min}:{min(x_max, w)}, y {y_min}:{min(y_max, h)}",
                stacklevel=3,
            )
        x1, y1 = min(x_max, w), min(y_max, h)
        ny, nx = (y1 - y_min) // k * k, (x1 - x_min) // k * k
        if ny == 0 or nx == 0:
            raise DataLayoutError(
                f"the crop x {x_min}:{x1}, y {y_min}:{y1} of {where} is smaller than option 'window_size' = {k}"
            )
        y1, x1 = y_min + ny, x_min + nx
        rows = slice(h - y1, h - y_min) if flip else slice(y_min, y1)
        return cls(grid=(h, w), rows=rows, cols=slice(x_min, x1), flip=flip, k=k)

    @property
    def shape(self) -> tuple[int, int]:
        """Sample (coarsened) height and width."""
        return ((self.rows.stop - self.rows.start) // self.k, (self.cols.stop - self.cols.start) // self.k)

    def orient(self, a: np.ndarray) -> np.ndarray:
        return a[..., ::-1, :] if self.flip else a

    def pool(self, a: np.ndarray) -> np.ndarray:
        """NaN-aware k x k average over the last two axes (identity for k = 1)."""
        return pool_nanmean(a, self.k)

    def coords(self, values: np.ndarray) -> np.ndarray:
        """Crop, orient and pool a 2-D (or 1-D row/col) coordinate array the same way as samples."""
        return self.pool(self.orient(values[..., self.rows, self.cols]))


def pool_nanmean(a: np.ndarray, k: int) -> np.ndarray:
    if k == 1:
        return a
    *lead, h, w = a.shape
    blocks = a.reshape(*lead, h // k, k, w // k, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        return np.nanmean(blocks, axis=(-3, -1)).astype(a.dtype, copy=False)


def read_statistics(path: Path, variables: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """var -> (offset[2], scale[2]) for the (mean, std) channels from the statistics JSON."""
    if not path.is_file():
        raise DataLayoutError(f"statistics file {path} does not exist (needed when 'is_clima_scale' is false)")
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataLayoutError(
            f"statistics file {path} is not valid JSON ({err}); restore it from the data archive"
        ) from None
    return parse_statistics(data, variables, str(path))


def parse_statistics(
    data: Any, variables: list[str], where: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``read_statistics`` of already parsed JSON (a tree's file or a zarr store's attribute).

    Every value must be a finite number (numeric strings allowed) and every std positive: a
    zero std would turn the variable into +-clip_value everywhere without a word."""
    if not isinstance(data, dict):
        raise DataLayoutError(f"{where}: expected a JSON object with keys 'mean' and 'std', got {type(data).__name__}")
    for key in ("mean", "std"):
        if not isinstance(data.get(key), dict):
            raise DataLayoutError(f"{where}: key '{key}' is missing or not an object (found keys {sorted(data)})")
    out = {}
    for v in variables:
        if v not in data["mean"] or v not in data["std"]:
            raise DataLayoutError(f"{where}: variable '{v}' is missing from 'mean' or 'std'")
        m, s = data["mean"][v], data["std"][v]
        if isinstance(m, dict) or isinstance(s, dict):  # per-statistic values
            offset = [_number(m, "mean", v, "mean", where), _number(m, "std", v, "mean", where)]
            scale = [_number(s, "mean", v, "std", where), _number(s, "std", v, "std", where)]
        else:
            offset = [_number(m, None, v, "mean", where), 0.0]
            scale = [_number(s, None, v, "std", where)] * 2
        if min(scale) <= 0:
            raise DataLayoutError(f"{where}: 'std' of variable '{v}' is {data['std'][v]}; a std must be positive")
        out[v] = (np.array(offset, np.float32), np.array(scale, np.float32))
    return out


def _number(value: Any, stat: str | None, var: str, key: str, where: str) -> float:
    """``value`` (or ``value[stat]``) as a finite float; errors name the key, variable and file."""
    name = f"'{key}' of variable '{var}'" + (f" (statistic '{stat}')" if stat else "")
    if stat is not None:
        if not isinstance(value, dict) or stat not in value:
            raise DataLayoutError(f"{where}: {name} is missing (per-statistic values need 'mean' and 'std')")
        value = value[stat]
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = float("nan")
    if isinstance(value, bool) or not np.isfinite(x):
        raise DataLayoutError(f"{where}: {name} is {value!r}, not a finite number")
    return x


def draw_flips(generator: torch.Generator | None = None) -> tuple[bool, bool]:
    """Training augmentation (as for synthetic data): p=0.5 rotate 180 degrees, then p=0.5 flip
    along x or y; returned as the net (flip_y, flip_x). torch RNG, so every DataLoader worker
    draws differently."""
    r = torch.rand(3, generator=generator).tolist()
    fy = fx = r[0] < 0.5  # rotation by 180 degrees = flip both axes
    if r[1] < 0.5:
        if r[2] < 0.5:
            fx = not fx
        else:
            fy = not fy
    return fy, fx


def apply_flips(a: np.ndarray, flip_y: bool, flip_x: bool) -> np.ndarray:
    """View of ``a`` flipped along its last two axes."""
    return a[..., :: -1 if flip_y else 1, :: -1 if flip_x else 1]


MISSING = object()


class WeekCache:
    """Small per-process LRU of finished per-week arrays (capacity in entries; 0 = off).

    With ``recycle`` the arrays that leave the cache are kept (up to ``capacity``) for
    ``spare`` to hand out again: a full-grid week is 12 MB, and writing into fresh memory
    costs a page fault per 4 kB, about as much as the arithmetic itself. Only give the cache
    arrays nobody else keeps. A forked DataLoader worker starts empty (the cache notices the
    new process id) and a pickled dataset carries no cached data."""

    def __init__(self, capacity: int, recycle: bool = False) -> None:
        self.capacity = max(0, int(capacity))
        self.recycle = recycle
        self.data: dict[Any, Any] = {}
        self.spares: list[np.ndarray] = []
        self.pid = os.getpid()

    def _check(self) -> None:
        if self.pid != os.getpid():
            self.data.clear()
            self.spares.clear()
            self.pid = os.getpid()

    def get(self, key: Any, default: Any = None) -> Any:
        self._check()
        return self.data.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        """Insert or refresh ``key``; least recently put entries leave first."""
        self._check()
        self.data.pop(key, None)
        if self.capacity:
            self.data[key] = value
            while len(self.data) > self.capacity:
                self.give_back(self.data.pop(next(iter(self.data))))

    def give_back(self, array: Any) -> None:
        """Offer an array that is no longer used to ``spare``."""
        if self.recycle and isinstance(array, np.ndarray) and len(self.spares) < self.capacity:
            self.spares.append(array)

    def spare(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """An array of ``shape`` (recycled when one is free; contents undefined)."""
        self._check()
        for i, a in enumerate(self.spares):
            if a.shape == tuple(shape) and a.dtype == dtype:
                return self.spares.pop(i)
        return np.empty(shape, dtype)

    def __getstate__(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "recycle": self.recycle, "data": {}, "spares": [], "pid": -1}
