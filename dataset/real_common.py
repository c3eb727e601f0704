"""Shared machinery of the real-data loaders (ERA5-Land, CERRA): one implementation for both.

A real-data sample is one *target week* (year, week) of a split plus its T-week window
``w, w-1, .., w-T+1`` (newest first; weeks <= 0 wrap into week 52, 51, .. of the previous
year). Reading is per sample and per crop only: every weekly file of the window is opened
once, read for the crop and closed; the large static files (climatology) are opened lazily,
once per process (DataLoader worker), and never pickled. The small static masks are read
for the crop once, at construction.

Normalisation (``is_norm``):

- ``is_clima_scale`` true (default): channel ``c`` of variable ``v`` (statistic ``mean`` or
  ``std`` of the week) is normalised per pixel by the training climatology of *that
  statistic* and *that week of year*:
  ``(x[v, c, t] - clim[v][climatology=mean, stat=c, week_t]) / clim[v][climatology=std, stat=c, week_t]``.
- ``is_clima_scale`` false: global statistics of the JSON file, ``(x - mean_v) / std_v``
  for the ``mean`` channel and ``x / std_v`` for the ``std`` channel (a spread has no
  offset). When the JSON holds per-statistic values (``{"mean": {v: {"mean": .., "std": ..}}}``)
  each channel uses its own ``(x - mean) / std``.

Then values are clipped to ``[-clip_value, clip_value]`` (only when normalised; raw physical
values are never clipped), average-pooled to ``window_size`` (NaN-aware) and NaN is replaced
by ``nan_fill``. A zero climatological std gives inf/NaN, which the clip and fill bound.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from dataset.mapped import mapped_vars, scan
from utils.errors import UserError

N_WEEKS = 52
WEEKLY_FILE = re.compile(r"^(\d{4})(\d{3})\.nc$")


class DataLayoutError(UserError, ValueError):
    """A file, variable or grid of a real-data tree is missing or wrong; the message names it.

    A :class:`UserError`: raised while samples are read (a damaged file met in an epoch), it
    still ends the entry scripts with one line, not a traceback."""


# --------------------------------------------------------------------------------------
# weeks and windows
# --------------------------------------------------------------------------------------


def window_weeks(year: int, week: int, delta_t: int) -> list[tuple[int, int]]:
    """(year, week) of the window, newest first; weeks <= 0 wrap into the previous year."""
    out = []
    for lag in range(delta_t):
        y, w = year, week - lag
        while w <= 0:
            y, w = y - 1, w + N_WEEKS
        out.append((y, w))
    return out


def week_label(year: int, week: int) -> str:
    """``YYYYWWW`` label of a week, the file-name convention of the published trees."""
    return f"{year:04d}{week:03d}"


def list_weekly_files(year_dir: Path) -> dict[int, Path]:
    """week -> ``<YYYY><WWW>.nc`` of one year folder (one ``listdir``, no file opened)."""
    out: dict[int, Path] = {}
    for name in os.listdir(year_dir):
        m = WEEKLY_FILE.match(name)
        if m and int(m.group(1)) == int(year_dir.name):
            out[int(m.group(2))] = year_dir / name
    return out


# --------------------------------------------------------------------------------------
# netCDF access
# --------------------------------------------------------------------------------------


def open_nc(path: Path, what: str) -> netCDF4.Dataset:
    """Open a netCDF file read-only; missing or unreadable files raise errors naming ``what``."""
    if not Path(path).is_file():
        raise DataLayoutError(f"{what}: file {path} does not exist")
    try:
        ds = netCDF4.Dataset(str(path), "r")
    except OSError as err:
        raise DataLayoutError(f"{what}: cannot read {path} ({err}); {DAMAGED}") from err
    ds.set_auto_maskandscale(False)  # ~2x faster reads; ``_decode`` applies fill/scale itself
    return ds


DAMAGED = "the file is truncated or damaged: download or extract it again"


def check_file(path: Path, names: list[str], grid: tuple[int, int] | None, what: str) -> tuple[int, int]:
    """Check before training that ``path`` opens, holds ``names`` and has the grid ``grid`` (the
    last two dimensions; None: take the first variable's); returns the grid.

    One h5py open per file (``dataset.mapped.scan``), netCDF4 for files that are not HDF5."""
    if not Path(path).is_file():
        raise DataLayoutError(f"{what}: file {path} does not exist")
    try:
        shapes = scan(path, names)
    except OSError as err:
        raise DataLayoutError(f"{what}: cannot read {path} ({err}); {DAMAGED}") from err
    if shapes is None or len(shapes) < len(names):  # netCDF-3, or a variable missing: netCDF4 names them
        ds = open_nc(path, what)
        try:
            shapes = {n: tuple(get_var(ds, n, path).shape) for n in names}
        finally:
            ds.close()
    for n in names:
        got = tuple(shapes[n][-2:])
        if grid is None:
            grid = got  # type: ignore[assignment]
        if len(shapes[n]) < 2 or got != tuple(grid):
            raise DataLayoutError(
                f"{path}: variable '{n}' has grid {got} but the dataset grid is {tuple(grid)} ({what}); "
                "the file belongs to another grid or region: replace it with the tree's own"
            )
    return grid  # type: ignore[return-value]


_SHARED: dict[tuple[str, int, int], tuple[int, netCDF4.Dataset]] = {}


def shared_handle(path: Path, what: str) -> netCDF4.Dataset:
    """A read-only handle kept open for the life of the process, one per file.

    For the large static files (climatology) read by every sample. One handle per process and
    file, shared by all dataset objects: netCDF/HDF5 can crash when several handles of one file
    are opened and closed independently. A forked DataLoader worker opens its own."""
    st = Path(path).stat() if Path(path).is_file() else None
    if st is None:
        return open_nc(path, what)  # raises the clear error
    key = (str(Path(path).resolve()), st.st_ino, st.st_mtime_ns)
    hit = _SHARED.get(key)
    if hit is None or hit[0] != os.getpid():
        hit = (os.getpid(), open_nc(path, what))
        _SHARED[key] = hit
    return hit[1]


def _decode(var: netCDF4.Variable, raw: np.ndarray) -> np.ndarray:
    """float32 with NaN for ``_FillValue``/``missing_value`` and CF packing (scale/offset) applied."""
    a = np.asarray(raw, dtype=np.float32)
    attrs = var.ncattrs()
    for key in ("_FillValue", "missing_value"):
        if key in attrs:
            for fv in np.atleast_1d(var.getncattr(key)):
                if not np.isnan(fv):
                    a[np.asarray(raw) == fv] = np.nan
    if "scale_factor" in attrs:
        a *= np.float32(var.getncattr("scale_factor"))
    if "add_offset" in attrs:
        a += np.float32(var.getncattr("add_offset"))
    return a


def get_var(ds: netCDF4.Dataset, name: str, path: Path) -> netCDF4.Variable:
    if name not in ds.variables:
        have = ", ".join(sorted(ds.variables))
        raise DataLayoutError(f"{path}: variable '{name}' is missing (the file holds: {have})")
    return ds.variables[name]


def _plan(
    name: str, path: Path, dims: tuple[str, ...], shape: tuple[int, ...], grid: tuple[int, int], sel: dict[str, Any]
) -> tuple[list[Any], list[int] | None]:
    """Leading indices of a variable for ``sel`` and the transpose that orders the result as
    ``sel`` (None when already in order); errors name the file, variable and dimension."""
    if len(shape) < 2 or tuple(shape[-2:]) != tuple(grid):
        raise DataLayoutError(
            f"{path}: variable '{name}' has grid {tuple(shape[-2:])} (dims {dims}) "
            f"but the dataset grid is {tuple(grid)}; the files do not match"
        )
    index: list[Any] = []
    for dim, size in zip(dims[:-2], shape[:-2]):
        if dim in sel:
            index.append(sel[dim])
        elif size == 1:
            index.append(0)
        else:
            raise DataLayoutError(
                f"{path}: variable '{name}' has an unexpected dimension '{dim}' of size {size} "
                f"(dims {dims}; expected {tuple(sel)} + 2 spatial)"
            )
    missing = set(sel) - set(dims[:-2])
    if missing:
        raise DataLayoutError(f"{path}: variable '{name}' lacks dimension(s) {sorted(missing)} (dims {dims})")
    kept = [d for d in dims[:-2] if d in sel and not isinstance(sel[d], (int, np.integer))]
    wanted = [d for d in sel if not isinstance(sel[d], (int, np.integer))]
    if kept == wanted:
        return index, None
    n = len(kept)
    return index, [kept.index(d) for d in wanted] + [n, n + 1]


def read_var(
    ds: netCDF4.Dataset,
    name: str,
    path: Path,
    grid: tuple[int, int],
    rows: slice,
    cols: slice,
    sel: dict[str, Any] | None = None,
) -> np.ndarray:
    """Read ``name`` as float32 ``[*sel dims in the order of sel, rows, cols]``.

    The last two dimensions are the spatial ones (checked against ``grid``); every other
    dimension must be indexed by name in ``sel`` (an int drops it, a list keeps it) or have
    size 1 (it is dropped).
    """
    var = get_var(ds, name, path)
    index, order = _plan(name, path, tuple(var.dimensions), tuple(var.shape), grid, sel or {})
    out = _decode(var, _read_raw(var, index, rows, cols))
    return out.transpose(order) if order else out


def _view(array: np.ndarray, index: list[Any], rows: slice, cols: slice) -> np.ndarray:
    """``array[(*index, rows, cols)]`` with outer (per-axis) semantics for integer lists: a view
    when every list is a contiguous increasing run, else a copy."""
    basic: list[Any] = []
    takes: list[tuple[int, list[int]]] = []
    axis = 0
    for ix in index:
        if isinstance(ix, (int, np.integer)):
            basic.append(int(ix))
            continue
        ix = [int(i) for i in ix]
        if ix and ix == list(range(ix[0], ix[0] + len(ix))):
            basic.append(slice(ix[0], ix[0] + len(ix)))
        else:
            basic.append(slice(None))
            takes.append((axis, ix))
        axis += 1
    out = array[(*basic, rows, cols)]
    for ax, ix in takes:
        out = np.take(out, ix, axis=ax)
    return out


def map_fields(
    path: Path,
    names: list[str],
    grid: tuple[int, int],
    rows: slice,
    cols: slice,
    sel: dict[str, Any] | None = None,
    populate: bool = False,
) -> list[np.ndarray] | None:
    """Like ``read_fields`` but only from memory maps (``dataset.mapped``): read-only views
    (float32 files) or None when the file cannot be mapped."""
    mapped = mapped_vars(path, names, populate)
    if mapped is None:
        return None
    out = []
    for name, m in zip(names, mapped):
        index, order = _plan(name, path, m.dims, m.array.shape, grid, sel or {})
        a = np.asarray(_view(m.array, index, rows, cols), dtype=np.float32)
        out.append(a.transpose(order) if order else a)
    return out


def read_fields(
    path: Path,
    what: str,
    names: list[str],
    grid: tuple[int, int],
    rows: slice,
    cols: slice,
    sel: dict[str, Any] | None = None,
    *,
    writable: bool = True,
) -> list[np.ndarray]:
    """Variables ``names`` of one file as float32 ``[*sel dims, rows, cols]`` (see ``read_var``).

    Memory-mapped where the file allows (no open, no copy; read-only views unless
    ``writable``), else through one netCDF4 open for all of them. Same values either way."""
    views = map_fields(path, names, grid, rows, cols, sel)
    if views is not None:
        return [v if v.flags.writeable or not writable else v.copy() for v in views]
    ds = open_nc(path, what)
    try:
        return [read_var(ds, n, path, grid, rows, cols, sel) for n in names]
    finally:
        ds.close()


def _runs(positions: list[int]) -> list[tuple[int, int, int]]:
    """Sorted unique positions -> contiguous runs (file start, count, output offset)."""
    runs: list[tuple[int, int, int]] = []
    for k, p in enumerate(positions):
        if runs and p == runs[-1][0] + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1, runs[-1][2])
        else:
            runs.append((p, 1, k))
    return runs


def _read_raw(var: netCDF4.Variable, index: list[Any], rows: slice, cols: slice) -> np.ndarray:
    """``var[(*index, rows, cols)]`` with ints / integer lists as leading indices, read as hyperslabs.

    netCDF4's ``__getitem__`` spends ~0.2 ms per call in Python index parsing, more than the
    read itself for small crops; the low-level ``Variable._get(start, count, stride)`` skips it.
    Falls back to ``__getitem__`` where that method is absent."""
    getter = getattr(var, "_get", None)
    if getter is None:
        return np.asarray(var[(*index, rows, cols)])
    uniq, reorder, scalar = [], [], []
    for ix in index:
        is_int = isinstance(ix, (int, np.integer))
        u = [int(ix)] if is_int else sorted({int(i) for i in ix})
        uniq.append(u)
        scalar.append(is_int)
        reorder.append(None if is_int or list(ix) == u else [u.index(int(i)) for i in ix])
    h, w = rows.stop - rows.start, cols.stop - cols.start
    out = np.empty([len(u) for u in uniq] + [h, w], dtype=var.dtype)
    for combo in itertools.product(*[_runs(u) for u in uniq]):
        start = np.array([r[0] for r in combo] + [rows.start, cols.start], dtype=np.intp)
        count = np.array([r[1] for r in combo] + [h, w], dtype=np.intp)
        block = getter(start, count, np.ones(len(start), dtype=np.intp))
        out[tuple(slice(r[2], r[2] + r[1]) for r in combo)] = np.asarray(block).reshape(count)
    for axis in range(len(index) - 1, -1, -1):
        if reorder[axis] is not None:
            out = np.take(out, reorder[axis], axis=axis)
    squeeze = tuple(a for a, is_int in enumerate(scalar) if is_int)
    return out.squeeze(axis=squeeze) if squeeze else out


def read_labels(ds: netCDF4.Dataset, name: str, path: Path) -> list[str]:
    """String labels of a coordinate (vlen strings or char arrays)."""
    var = get_var(ds, name, path)
    values = var[:]
    if values.dtype.kind == "S" and values.ndim == 2:
        values = netCDF4.chartostring(values)
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values).tolist()]


def label_index(labels: list[str], wanted: tuple[str, ...], path: Path, coord: str) -> list[int]:
    """Positions of ``wanted`` labels in a coordinate; errors name the file and coordinate."""
    missing = [w for w in wanted if w not in labels]
    if missing:
        raise DataLayoutError(f"{path}: coordinate '{coord}' = {labels} lacks {missing}")
    return [labels.index(w) for w in wanted]


def rows_south_to_north(row_coord: np.ndarray | None) -> bool:
    """The row-order rule of every reader (loaders and figures): True when rows run south-to-north.

    Decided from the 1-D coordinate of the row dimension when there is one (increasing =
    south-to-north); without it the published convention (south-to-north) is assumed. Readers
    flip such rows so that row 0 is the northernmost everywhere (samples, crops, ``--box``, maps).
    """
    if row_coord is not None:
        c = np.asarray(row_coord, dtype=np.float64)
        if c.ndim == 1 and c.size > 1:
            return bool(c[-1] > c[0])
    return True


def north_up_flip(ds: netCDF4.Dataset, var_name: str, path: Path) -> bool:
    """``rows_south_to_north`` for a variable of an open netCDF4 file."""
    dim = get_var(ds, var_name, path).dimensions[-2]
    coord = ds.variables[dim][:] if dim in ds.variables and ds.variables[dim].ndim == 1 else None
    return rows_south_to_north(coord)
