"""Reading a reanalysis tree converted to one zarr store (``python -m dataset.to_zarr``).

The store (zarr format 3) holds what the loaders read from the ERA5-Land / CERRA + NOAA trees,
with the values the trees' readers produce (decoded float32, file row order):

    /                 attrs: idee_store (format version), dataset, name, region, grid, dims,
                      statistics_json (the trees' <prefix>_statistic_train.json), coord_attrs,
                      grid_mapping; coordinates time (YYYYWWW), <row dim>, <col dim>, lat, lon
    /<variable>       float32 (time, statistic = [mean, std], row, col), one chunk per week
    /noaa/VCI, TCI    float32 (noaa_time, file, row, col): the week's NOAA files in name order
    /noaa/mask_cold_surface  uint8 (noaa_time, file, row, col)
    /noaa/n_files     int8 (noaa_time): files of the week (the labels' VHI rule averages them)
    /static/lsm, /static/no_vegetation   float32 (row, col)
    /climatology/<variable>  float32 (climatology = [mean, std], stat = [mean, std], week 1..52, row, col)

Why a chunk reader of its own: a sample reads 8 weeks x 9 variables (whole EUR-11 grid: 100
MB) and the climatology weeks of its window. zarr-python's array indexing costs a fraction of
a millisecond per chunk in its asyncio machinery and copies every chunk once more; here, for a
local store whose arrays use the plain ``bytes`` codec and at most one Blosc compressor
(what ``dataset.to_zarr`` writes), every chunk of the sample is read and decompressed by a
thread pool (Blosc releases the GIL), straight into the output when a chunk covers exactly
the requested window. Arrays with no compressor (the converter's default for the
climatology, read by every sample) are memory-mapped like the netCDF trees (``dataset.mapped``):
no copy, pages shared by all DataLoader workers. Anything else (other codecs, an fsspec URL)
is read through zarr's own API, with the same values.
"""

from __future__ import annotations

import mmap
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset.real_common import DataLayoutError

STORE_FORMAT = 1  # attrs["idee_store"]: bump when the layout above changes
_POOL: tuple[int, ThreadPoolExecutor] | None = None


def decode_threads() -> int:
    """Threads that decompress chunks in this process: ``IDEE_ZARR_THREADS``, else the usable cores
    shared among the processes that read at once on this machine (torchrun's ``LOCAL_WORLD_SIZE``
    ranks x DataLoader workers), at least 1 and at most 8."""
    env = os.environ.get("IDEE_ZARR_THREADS")
    if env:
        return max(1, int(env))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    readers = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    try:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        if info is not None:
            readers *= max(1, info.num_workers)
    except ImportError:  # pragma: no cover - torch is a requirement
        pass
    return max(1, min(8, cores // readers))


def _pool() -> ThreadPoolExecutor:
    """The decoding pool of this process (a forked DataLoader worker makes its own)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(decode_threads(), thread_name_prefix="zarr-decode"))
    return _POOL[1]


def is_local(store: str) -> bool:
    return "://" not in str(store) or str(store).startswith("file://")


def _path(store: str) -> str:
    """``store`` without a ``file://`` prefix (zarr and the chunk reader take plain local paths)."""
    return str(store).removeprefix("file://")


#: a folder holding one of these files is a zarr store (format 3, consolidated 2, or plain 2)
ZARR_MARKERS = ("zarr.json", ".zmetadata", ".zgroup")


def store_marker(path: Path) -> Path | None:
    """The metadata file that makes the folder ``path`` a zarr store; None when it is not one."""
    return next((path / m for m in ZARR_MARKERS if (path / m).is_file()), None) if path.is_dir() else None


def is_zarr_store(path: Path) -> bool:
    """Whether ``path`` is a folder that zarr wrote (the only kind of folder ``--overwrite`` may delete)."""
    return store_marker(path) is not None


def open_store(store: str) -> Any:
    """The root group (read-only); a path that is not an IDEE store is a one-line error."""
    import zarr

    path = _path(store)
    if is_local(path) and not Path(path).exists():
        raise DataLayoutError(
            f"option 'store': {store} does not exist; write the store with python -m dataset.to_zarr or fix the path"
        )
    if is_local(path) and not Path(path, "zarr.json").is_file():
        raise DataLayoutError(
            f"option 'store': {store} is not a zarr 3 store (no zarr.json); write one with python -m dataset.to_zarr"
        )
    try:
        group = zarr.open_group(path, mode="r")
    except Exception as err:  # noqa: BLE001 - zarr and fsspec raise many kinds
        raise DataLayoutError(f"option 'store': cannot open {store} as a zarr group ({err})") from err
    if group.attrs.get("idee_store") != STORE_FORMAT:
        raise DataLayoutError(
            f"option 'store': {store} is not a reanalysis store of format {STORE_FORMAT} (attrs idee_store = "
            f"{group.attrs.get('idee_store')!r}); rewrite it with python -m dataset.to_zarr"
        )
    return group


# --------------------------------------------------------------------------------------
# chunk reading
# --------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """How to read one array fast: chunk files under ``root``, decoded by ``codec`` (None: raw)."""

    root: Path
    chunks: tuple[int, ...]
    dtype: np.dtype
    fill: Any
    codec: str | None  # "blosc" or None (raw little-endian bytes)
    encode_key: Any


def _plan(array: Any, store_root: Path | None) -> _Plan | None:
    """A fast-read plan for a local array with the bytes codec and at most one Blosc codec."""
    if store_root is None:
        return None
    meta = array.metadata
    try:
        codecs = [type(c).__name__ for c in meta.codecs]
        chunks = tuple(int(c) for c in meta.chunk_grid.chunk_shape)
    except AttributeError:
        return None
    if not codecs or codecs[0] != "BytesCodec" or len(codecs) > 2 or (len(codecs) == 2 and codecs[1] != "BloscCodec"):
        return None
    endian = getattr(meta.codecs[0], "endian", None)
    dtype = np.dtype(array.dtype)
    if dtype.itemsize > 1 and getattr(endian, "value", endian) not in ("little", None):
        return None
    return _Plan(
        root=store_root / array.path,
        chunks=chunks,
        dtype=dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype,
        fill=array.fill_value,
        codec="blosc" if len(codecs) == 2 else None,
        encode_key=meta.encode_chunk_key,
    )


class StoreArray:
    """One array of a store, read as ``array[(*lead, rows, cols)]`` into a given buffer.

    ``lead`` holds one int or ``slice(None)`` per leading dimension (a whole-dimension slice
    must be one chunk along that dimension, as the converter writes)."""

    def __init__(self, array: Any, store_root: Path | None) -> None:
        self.array = array
        self.shape = tuple(array.shape)
        self.plan = _plan(array, store_root)
        self._maps: dict[str, np.ndarray] = {}

    def read(self, lead: tuple[Any, ...], rows: slice, cols: slice, out: np.ndarray) -> list[Any]:
        """Fill ``out`` (shape: the whole-slice leading dims + (rows, cols)); returns futures to wait
        for (empty when done already)."""
        plan = self.plan
        if plan is None or not self._chunk_aligned(lead):
            # zarr's API (fsspec URLs, other codecs): one call per array, several at once from the pool,
            # so that the latencies of an object store overlap (zarr's own event loop serves them all)
            return [_pool().submit(self._read_api, (*lead, rows, cols), out)]
        c = plan.chunks
        ch, cw = c[-2], c[-1]
        base = [i // c[d] if isinstance(i, (int, np.integer)) else 0 for d, i in enumerate(lead)]
        inner = tuple(int(i) % c[d] if isinstance(i, (int, np.integer)) else slice(None) for d, i in enumerate(lead))
        jobs = []
        for cy in range(rows.start // ch, (rows.stop - 1) // ch + 1):
            for cx in range(cols.start // cw, (cols.stop - 1) // cw + 1):
                r0, r1 = max(rows.start, cy * ch), min(rows.stop, (cy + 1) * ch)
                c0, c1 = max(cols.start, cx * cw), min(cols.stop, (cx + 1) * cw)
                dest = out[..., r0 - rows.start : r1 - rows.start, c0 - cols.start : c1 - cols.start]
                src = (*inner, slice(r0 - cy * ch, r1 - cy * ch), slice(c0 - cx * cw, c1 - cx * cw))
                key = plan.encode_key((*base, cy, cx))
                whole = (r1 - r0, c1 - c0) == (ch, cw) and all(
                    isinstance(i, slice) or c[d] == 1 for d, i in enumerate(lead)
                )
                jobs.append((key, src, dest, whole))
        if plan.codec is None:
            for key, src, dest, _ in jobs:
                m = self._mapped(key)
                if m is None:
                    dest[...] = plan.fill
                else:
                    dest[...] = m[src]
            return []
        pool = _pool()
        return [pool.submit(self._decode, key, src, dest, whole) for key, src, dest, whole in jobs]

    def _read_api(self, index: tuple[Any, ...], out: np.ndarray) -> None:
        out[...] = np.asarray(self.array[index])

    def view(self, lead: tuple[Any, ...], rows: slice, cols: slice) -> np.ndarray | None:
        """A read-only view of a raw (uncompressed) local array when the window lies in one chunk."""
        plan = self.plan
        if plan is None or plan.codec is not None or not self._chunk_aligned(lead):
            return None
        c = plan.chunks
        ch, cw = c[-2], c[-1]
        if rows.start // ch != (rows.stop - 1) // ch or cols.start // cw != (cols.stop - 1) // cw:
            return None
        cy, cx = rows.start // ch, cols.start // cw
        base = [i // c[d] if isinstance(i, (int, np.integer)) else 0 for d, i in enumerate(lead)]
        inner = tuple(int(i) % c[d] if isinstance(i, (int, np.integer)) else slice(None) for d, i in enumerate(lead))
        m = self._mapped(plan.encode_key((*base, cy, cx)))
        if m is None:
            return None
        return m[
            (*inner, slice(rows.start - cy * ch, rows.stop - cy * ch), slice(cols.start - cx * cw, cols.stop - cx * cw))
        ]

    def _chunk_aligned(self, lead: tuple[Any, ...]) -> bool:
        c = self.plan.chunks  # type: ignore[union-attr]
        return len(lead) + 2 == len(c) and all(
            isinstance(i, (int, np.integer)) or (i == slice(None) and c[d] >= self.shape[d]) for d, i in enumerate(lead)
        )

    def _mapped(self, key: str) -> np.ndarray | None:
        """The raw chunk file ``key`` as a read-only array (mapped once per process)."""
        hit = self._maps.get(key)
        if hit is None:
            path = self.plan.root / key  # type: ignore[union-attr]
            if not path.is_file():
                return None
            flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)  # all pages at once, not a fault per page
            with open(path, "rb") as fh:
                buf = mmap.mmap(fh.fileno(), 0, flags=flags, prot=mmap.PROT_READ)
            hit = np.ndarray(self.plan.chunks, self.plan.dtype, buffer=buf)  # type: ignore[union-attr]
            self._maps[key] = hit
        return hit

    def _decode(self, key: str, src: tuple[Any, ...], dest: np.ndarray, whole: bool) -> None:
        from numcodecs import blosc

        plan = self.plan
        path = plan.root / key  # type: ignore[union-attr]
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # chunk never written: the fill value
            dest[...] = plan.fill  # type: ignore[union-attr]
            return
        if whole and dest.flags.c_contiguous and dest.dtype == plan.dtype:  # type: ignore[union-attr]
            blosc.decompress(data, dest)
            return
        chunk = _scratch(plan.chunks, plan.dtype)  # type: ignore[union-attr]
        blosc.decompress(data, chunk)
        dest[...] = chunk[src]

    def __getstate__(self) -> dict[str, Any]:  # maps are per process
        return {**self.__dict__, "_maps": {}}


_LOCAL = threading.local()


def _scratch(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A per-thread decoding buffer, reused (fresh memory costs a page fault per 4 kB)."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = np.empty(shape, dtype)
        _LOCAL.buf = buf
    return buf


def wait(futures: list[Any]) -> None:
    for f in futures:
        f.result()


# --------------------------------------------------------------------------------------
# the store of one tree, as the loader sees it
# --------------------------------------------------------------------------------------


class ReanalysisStore:
    """The arrays of a converted tree and its week index, opened once per dataset object."""

    def __init__(self, store: str, expected: str) -> None:
        self.store = str(store)
        self.group = open_store(self.store)
        attrs = dict(self.group.attrs)
        self.attrs = attrs
        if attrs.get("name") != expected:
            raise DataLayoutError(
                f"option 'store': {store} holds {attrs.get('name')!r}, not {expected!r} (options 'dataset' / 'region')"
            )
        self.root = Path(_path(self.store)) if is_local(self.store) else None
        self.grid = tuple(int(v) for v in attrs["grid"])
        self.dims = tuple(attrs["dims"])
        labels = np.asarray(self.group["time"][:]).astype(np.int64)
        self.time_index = {(int(v) // 1000, int(v) % 1000): i for i, v in enumerate(labels)}
        noaa_labels = np.asarray(self.group["noaa/noaa_time"][:]).astype(np.int64)
        n_files = np.asarray(self.group["noaa/n_files"][:]).astype(np.int64)
        self.noaa_index = {
            (int(v) // 1000, int(v) % 1000): (i, int(n)) for i, (v, n) in enumerate(zip(noaa_labels, n_files))
        }
        self._arrays: dict[str, StoreArray] = {}

    def array(self, name: str) -> StoreArray:
        hit = self._arrays.get(name)
        if hit is None:
            if name not in self.group:
                have = ", ".join(
                    sorted(k for k in self.group.array_keys() if k not in ("time", *self.dims, "lat", "lon"))
                )
                raise DataLayoutError(f"option 'store': {self.store} has no variable '{name}' (it holds: {have})")
            hit = StoreArray(self.group[name], self.root)
            self._arrays[name] = hit
        return hit

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers without the zarr handles (reopened on first use)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("group", "_arrays")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.group = open_store(self.store)
        self._arrays = {}
