"""Worker batches through reused shared buffers: same batches as default_collate, never overwritten while held."""

from __future__ import annotations

import gc
import io
import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
import torch.multiprocessing  # noqa: F401  (registers the tensor reducers with ForkingPickler)
from torch.multiprocessing.reductions import shared_cache
from torch.utils.data import DataLoader, Dataset, default_collate

from utils import batch_transport
from utils.batch_transport import MAX_SLOTS, pooled_collate, worker_pool_stats


class Samples(Dataset):
    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {
            "x": torch.randn(3, 5, 7, generator=g),
            "mask": (torch.rand(5, 7, generator=g) > 0.5).to(torch.uint8),
            "flag": torch.rand(5, 7, generator=g) > 0.3,
            "np": np.full((2, 3), i, np.int16),
            "timestep": torch.tensor(i, dtype=torch.int64),
            "week": f"2021{i:03d}",
            "w": 0.5 * i,
        }


def _assert_same(a, b) -> None:
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict))
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a, b)
    else:
        assert a == b


def test_worker_batches_equal_default_collate_and_survive_being_held():
    ds = Samples()
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=pooled_collate)
    held = list(loader)  # 8 batches kept alive: the workers must not reuse their buffers
    assert len(held) == 8
    for k, batch in enumerate(held):
        assert type(batch) is dict  # the main process sees a plain dict
        _assert_same(batch, default_collate([ds[i] for i in range(3 * k, 3 * k + 3)]))


def test_in_process_is_default_collate():
    ds = Samples()
    _assert_same(pooled_collate([ds[0], ds[1]]), default_collate([ds[0], ds[1]]))


def _send(batch):
    """Pickle as a worker does and unpickle as the main process does (same process here)."""
    buf = io.BytesIO()
    ForkingPickler(buf, pickle.HIGHEST_PROTOCOL).dump(batch)
    shared_cache.clear()  # else the "main process" would get the worker's own storage back
    return pickle.loads(buf.getvalue())


def test_buffers_are_reused_only_after_release(monkeypatch):
    monkeypatch.setattr(batch_transport, "get_worker_info", lambda: object())
    monkeypatch.setattr(batch_transport, "_pool", None)
    monkeypatch.setattr(batch_transport, "_held", [])
    ds = Samples()
    kept = [_send(pooled_collate([ds[i]])) for i in range(MAX_SLOTS)]
    assert worker_pool_stats() == {"reused": 0, "allocated": MAX_SLOTS, "fallbacks": 0}
    extra = _send(pooled_collate([ds[MAX_SLOTS]]))  # every buffer held: default collate
    assert worker_pool_stats()["fallbacks"] == 1
    for i, b in enumerate(kept + [extra]):
        _assert_same(b, default_collate([ds[i]]))

    del kept, extra, b
    gc.collect()
    for i in range(10):  # dropped at once: the buffers cycle
        got = _send(pooled_collate([ds[i]]))
        _assert_same(got, default_collate([ds[i]]))
        del got
    stats = worker_pool_stats()  # the main process notices releases when the next batch arrives: one more fallback
    assert stats == {"reused": 9, "allocated": MAX_SLOTS, "fallbacks": 2}


@pytest.mark.parametrize("n", [1, 2])
def test_a_held_batch_keeps_its_values_while_others_flow(monkeypatch, n):
    monkeypatch.setattr(batch_transport, "get_worker_info", lambda: object())
    monkeypatch.setattr(batch_transport, "_pool", None)
    monkeypatch.setattr(batch_transport, "_held", [])
    ds = Samples()
    first = _send(pooled_collate([ds[0]] * n))
    view = first["x"][0, 1]  # only a view survives: the buffer must stay reserved
    expected = view.clone()
    del first
    for i in range(1, 12):
        _send(pooled_collate([ds[i]] * n))
    assert torch.equal(view, expected)
