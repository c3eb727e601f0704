"""Zero-copy reads of contiguous netCDF-4 variables through memory maps.

Why: a full-grid ERA5-Land sample reads 8 weekly files (100 MB) and 8 climatology weeks
(200 MB). Through netCDF4 every file costs an open (~7 ms: the library parses all metadata)
and every byte a copy out of the page cache. A variable stored *contiguous and unfiltered*
(one block of the HDF5 file, as the weekly files and the climatology are written) can
instead be read as a NumPy view of a memory map of the file: the offset comes from h5py
(~0.1 ms per variable, once per file and process), there is no copy, and DataLoader workers
share the pages of the OS page cache instead of each holding its own climatology cache.

Only variables whose stored values *are* the values qualify: native float or integer type,
no ``scale_factor`` / ``add_offset``, and a ``_FillValue`` / ``missing_value`` that is NaN or
absent. Everything else (chunked or compressed variables, packed data, netCDF-3 files, a
missing h5py) makes ``mapped_vars`` return None and callers read through netCDF4 as before,
so the numbers never depend on the path taken.
"""

from __future__ import annotations

import mmap
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:  # optional at import time: without h5py every read goes through netCDF4
    import h5py
except ImportError:  # pragma: no cover - h5py is in requirements.txt
    h5py = None

MAX_MAPPED_FILES = 16  # per process: a sample needs its 8-16 weekly files and the climatology
_PACKING = ("scale_factor", "add_offset")
_FILLS = ("_FillValue", "missing_value")


@dataclass(frozen=True)
class MappedVar:
    """A read-only view of one whole variable and its dimension names."""

    array: np.ndarray
    dims: tuple[str, ...]


_Layout = tuple[int, tuple[int, ...], np.dtype, tuple[str, ...]]  # offset, shape, dtype, dims
# path -> ((mtime_ns, size), {variable: layout or None}): a few hundred bytes per file, kept
# for the life of the process so later epochs open no file at all.
_LAYOUTS: dict[str, tuple[tuple[int, int], dict[str, _Layout | None]]] = {}
# path -> ((mtime_ns, size), map): the most recently used files; views handed out keep
# their map alive after it leaves this table.
_MAPS: OrderedDict[str, tuple[tuple[int, int], mmap.mmap]] = OrderedDict()
# path -> ((mtime_ns, size), map) of the files every sample reads (mapped with ``populate``):
# never evicted, so a large climatology is mapped once per process.
_STATIC: dict[str, tuple[tuple[int, int], mmap.mmap]] = {}
# (variable, shape) -> dimension names. Resolving dimension scales costs ~1 ms per variable
# in h5py, so it is done once per process for each variable name and shape: the files of one
# tree share them (the loaders check the first file of each kind through netCDF4).
_DIMS: dict[tuple[str, tuple[int, ...]], tuple[str, ...]] = {}


def _plain(ds: h5py.Dataset) -> bool:
    """True when the stored values are the values (nothing for netCDF4 to decode)."""
    if ds.dtype.kind not in "fiu" or not ds.dtype.isnative:
        return False
    attrs = ds.attrs
    if any(k in attrs for k in _PACKING):
        return False
    for key in _FILLS:
        if key in attrs:
            fill = np.atleast_1d(attrs[key])
            if fill.dtype.kind != "f" or not np.isnan(fill).all():
                return False
    return True


def _dims(ds: h5py.Dataset, name: str) -> tuple[str, ...] | None:
    key = (name, tuple(ds.shape))
    if key not in _DIMS:
        names = []
        for scale in ds.dims:
            if len(scale) != 1:
                return None
            names.append(scale[0].name.rsplit("/", 1)[-1])
        _DIMS[key] = tuple(names)
    return _DIMS[key]


def _layout(ds: h5py.Dataset, name: str) -> _Layout | None:
    if ds.chunks is not None or ds.compression is not None or not _plain(ds):
        return None
    offset = ds.id.get_offset()
    dims = _dims(ds, name)
    if offset is None or dims is None or len(dims) != ds.ndim:
        return None
    return offset, tuple(ds.shape), ds.dtype, dims


def _layouts(path: str, stamp: tuple[int, int], names: tuple[str, ...]) -> dict[str, _Layout | None]:
    known = _LAYOUTS.get(path)
    if known is None or known[0] != stamp:
        known = (stamp, {})
        _LAYOUTS[path] = known
    layouts = known[1]
    todo = [n for n in names if n not in layouts]
    if todo:
        try:
            with h5py.File(path, "r") as f:
                _record(f, layouts, todo)
        except (OSError, ValueError):  # not HDF5 (netCDF-3) or unreadable: netCDF4 will say why
            layouts.update({n: None for n in todo})
    return layouts


def _record(f: h5py.File, layouts: dict[str, _Layout | None], names: list[str] | tuple[str, ...],
            shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    """Layouts of ``names`` of an open file (and their shapes into ``shapes``; absent names are left out)."""
    for n in names:
        obj = f.get(n)
        if not isinstance(obj, h5py.Dataset):
            layouts[n] = None
            continue
        if n not in layouts:
            layouts[n] = _layout(obj, n)
        if shapes is not None:
            shapes[n] = tuple(obj.shape)


def scan(path: Path | str, names: tuple[str, ...] | list[str]) -> dict[str, tuple[int, ...]] | None:
    """Shapes of the variables ``names`` of a netCDF-4 (HDF5) file that has them, from one h5py open.

    Lets a loader check every file of a split before training: HDF5 compares the file's
    size with the size its superblock records, so a truncated file fails here, not hours
    into a run. The layouts of ``names`` are remembered for ``mapped_vars`` (DataLoader
    workers forked later inherit them and open nothing). None without h5py or for a file
    that is not HDF5 (netCDF-3, or no netCDF at all: netCDF4 then reads or rejects it);
    OSError for an HDF5 file that cannot be opened (truncated, damaged)."""
    if h5py is None:
        return None
    path = str(path)
    st = os.stat(path)
    if st.st_size == 0 or not h5py.is_hdf5(path):
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    known = _LAYOUTS.get(path)
    if known is None or known[0] != stamp:
        known = (stamp, {})
        _LAYOUTS[path] = known
    shapes: dict[str, tuple[int, ...]] = {}
    with h5py.File(path, "r") as f:
        _record(f, known[1], names, shapes)
    return shapes


def _map(path: str, stamp: tuple[int, int], populate: bool) -> mmap.mmap:
    table = _STATIC if populate else _MAPS
    hit = table.get(path)
    if hit is None or hit[0] != stamp:
        flags = mmap.MAP_SHARED | (getattr(mmap, "MAP_POPULATE", 0) if populate else 0)
        with open(path, "rb") as fh:
            hit = (stamp, mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ))
        table[path] = hit
        while len(_MAPS) > MAX_MAPPED_FILES:
            _MAPS.popitem(last=False)
    if not populate:
        _MAPS.move_to_end(path)
    return hit[1]


def mapped_vars(path: Path | str, names: tuple[str, ...] | list[str], populate: bool = False) -> list[MappedVar] | None:
    """Read-only views of the variables ``names`` of one file, or None unless all of them can
    be mapped (the caller then reads the file through netCDF4).

    ``populate`` is for files that every sample reads (the climatology): every page is mapped
    at once (``MAP_POPULATE``) instead of a page fault per 64 kB on first touch, and the map
    stays for the life of the process."""
    if h5py is None:
        return None
    path = str(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    layouts = _layouts(path, stamp, tuple(names))
    if stamp[1] == 0 or any(layouts[n] is None for n in names):
        return None
    buffer = _map(path, stamp, populate)
    out = []
    for n in names:
        offset, shape, dtype, dims = layouts[n]  # type: ignore[misc]
        if offset + int(np.prod(shape)) * dtype.itemsize > len(buffer):
            return None  # truncated file: let netCDF4 report it
        out.append(MappedVar(np.ndarray(shape, dtype, buffer=buffer, offset=offset), dims))
    return out


def clear() -> None:
    """Forget every map of this process (tests; files rewritten in place keep their stamp)."""
    _LAYOUTS.clear()
    _MAPS.clear()
    _STATIC.clear()
    _DIMS.clear()
