"""Batches from DataLoader worker processes through reused shared-memory buffers.

PyTorch's default collate in a worker stacks every batch into a *fresh* shared-memory
file; with 4 kB pages, creating and filling one for a whole-grid ERA5-Land sample
(96 MB) costs 80-100 ms of page faults, as much as reading the sample. Here each
worker keeps a few shared buffers and stacks into one that the main process has
released. A buffer counts as released only when every tensor of its batch is gone
from the main process (a weak reference to the storage has expired), so a batch the
training loop keeps is never overwritten: when no buffer is free, the worker takes a
new one, and past ``MAX_SLOTS`` it falls back to PyTorch's default collate.

Use ``pooled_collate`` as a DataLoader's ``collate_fn``: in the main process (no
workers) it is ``default_collate``, and the batches it builds equal
``default_collate``'s in structure, values and dtypes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils.data import default_collate, get_worker_info
from torch.utils.data._utils.collate import collate, default_collate_fn_map

__all__ = ["MAX_SLOTS", "pooled_collate", "worker_pool_stats"]

MAX_SLOTS = 4  # per worker: prefetch_factor (2) in the queue, one in the loop, one spare
_ALIGN = 64


def _aligned(nbytes: int) -> int:
    return -(-nbytes // _ALIGN) * _ALIGN


class _Slot:
    __slots__ = ("buffer", "offset")

    def __init__(self, nbytes: int) -> None:
        self.buffer = torch.empty(nbytes, dtype=torch.uint8).share_memory_()
        self.offset = 0

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        view = self.buffer[self.offset : self.offset + n].view(dtype).view(shape)
        self.offset += _aligned(n)
        return view


class _WorkerPool:
    """The buffers of one worker process; ``busy[i]`` is 1 while the main process holds slot i."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.busy = torch.zeros(MAX_SLOTS, dtype=torch.uint8).share_memory_()
        self.slots: list[_Slot | None] = [None] * MAX_SLOTS
        self.reused = self.allocated = self.fallbacks = 0

    def acquire(self, nbytes: int) -> tuple[int, _Slot] | None:
        free = [i for i in range(MAX_SLOTS) if self.busy[i] == 0]
        fits = [i for i in free if self.slots[i] is not None and self.slots[i].buffer.numel() >= nbytes]
        if fits:
            i = fits[0]
            self.reused += 1
        elif free:
            i = next((j for j in free if self.slots[j] is None), free[0])
            self.slots[i] = _Slot(nbytes)  # a too-small old buffer is dropped (freed once unmapped)
            self.allocated += 1
        else:
            self.fallbacks += 1
            return None
        slot = self.slots[i]
        slot.offset = 0
        self.busy[i] = 1
        return i, slot


_pool: _WorkerPool | None = None


def _worker_pool() -> _WorkerPool:
    global _pool
    if _pool is None or _pool.pid != os.getpid():
        _pool = _WorkerPool()
    return _pool


def worker_pool_stats() -> dict[str, int]:
    """Counts of this worker's buffer reuses, new buffers and fallbacks (for tests and benchmarks)."""
    p = _worker_pool()
    return {"reused": p.reused, "allocated": p.allocated, "fallbacks": p.fallbacks}


def _nbytes(elem: Any, n: int) -> int:
    """Bytes the stacked tensors of a batch of ``n`` samples shaped like ``elem`` need (aligned)."""
    if isinstance(elem, Tensor | np.ndarray) and not (isinstance(elem, np.ndarray) and elem.dtype.kind in "OUS"):
        size = elem.numel() * elem.element_size() if isinstance(elem, Tensor) else elem.nbytes
        return _aligned(size * n)
    if isinstance(elem, Mapping):
        return sum(_nbytes(v, n) for v in elem.values())
    if isinstance(elem, Sequence) and not isinstance(elem, str | bytes):
        return sum(_nbytes(v, n) for v in elem)
    return 0


class _PooledBatch(dict):
    """A collated dict that, when unpickled in the main process, registers its slot for release."""

    def __init__(self, data: dict, busy: Tensor, slot: int | None, anchor: Tensor | None) -> None:
        super().__init__(data)
        self.busy, self.slot, self.anchor = busy, slot, anchor

    def __reduce__(self) -> tuple:
        return _receive, (dict(self), self.busy, self.slot, self.anchor)


_held: list[tuple[Tensor, int, StorageWeakRef]] = []  # main process: slots whose batch may still be alive


def _release_expired() -> None:
    keep = []
    for busy, slot, ref in _held:
        if ref.expired():
            busy[slot] = 0
        else:
            keep.append((busy, slot, ref))
    _held[:] = keep


def _receive(data: dict, busy: Tensor, slot: int | None, anchor: Tensor | None) -> dict:
    _release_expired()  # on every batch, pooled or not, so held buffers come back once dropped
    if slot is not None:
        _held.append((busy, slot, StorageWeakRef(anchor.untyped_storage())))
    return data


def pooled_collate(batch: list[Any]) -> Any:
    """``default_collate``, but in a worker the tensors are stacked into a reused shared buffer."""
    if get_worker_info() is None or not isinstance(batch[0], Mapping):
        return default_collate(batch)
    pool = _worker_pool()
    got = pool.acquire(_nbytes(batch[0], len(batch)))
    if got is None:
        return _PooledBatch(default_collate(batch), pool.busy, None, None)
    index, slot = got

    def stack(items: list[Tensor], *, collate_fn_map: Any = None) -> Tensor:
        out = slot.take((len(items), *items[0].shape), items[0].dtype)
        return torch.stack(items, 0, out=out)

    fns = {**default_collate_fn_map, Tensor: stack}
    data = collate(batch, collate_fn_map=fns)
    return _PooledBatch(data, pool.busy, index, slot.buffer[:1])
