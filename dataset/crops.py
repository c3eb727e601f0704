"""Random training crops: smaller spatial windows make steps cheaper on any convolutional or windowed model.

The training loader's collate function crops each batch (:class:`CroppingCollate`:
``train_crop`` pixels, a ``train_crop_focus`` share of them placed on an extreme), so only
the crop is moved to the device. The windows are drawn from torch's RNG of the process that
collates: the main process with ``n_workers 0`` (the run's seed and ``last.pth`` control it),
else each DataLoader worker's seeded stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

__all__ = ["draw_windows", "random_crop", "check_train_crop", "CroppingCollate"]


def check_train_crop(cfg: Any, dataset: Dataset) -> None:
    """A ``train_crop`` larger than the training samples is a mistake, not a request for the whole grid."""
    if cfg.train_crop <= 0 or len(dataset) == 0:
        return
    h, w = (int(n) for n in dataset[0]["x"].shape[-2:])
    if cfg.train_crop > min(h, w):
        raise ValueError(
            f"option 'train_crop' is {cfg.train_crop} but the training samples are {h} x {w} pixels; "
            f"use at most {min(h, w)}, or 0 to train on the whole window"
        )


def draw_windows(
    n: int, h: int, w: int, size: int, focus: float = 0.0,
    target: Callable[[int], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int, int] | None:
    """The top-left corners ``(y0, x0)`` [n] and size ``(sh, sw)`` of the windows of :func:`random_crop`.

    None when ``size`` covers the whole ``h`` x ``w`` grid (no draw). The draws come from torch's
    CPU RNG in a fixed order (all y0, all x0, then the focus draws), which the device batches of
    ``dataset.device_cube`` share, so both paths cut the same windows for the same RNG state.
    ``target(i)`` is sample i's target map flattened to ``h * w`` (CPU), asked only for the samples
    that get a focused window.
    """
    if size >= h and size >= w:
        return None
    sh, sw = min(size, h), min(size, w)
    y0 = torch.randint(0, h - sh + 1, (n,))
    x0 = torch.randint(0, w - sw + 1, (n,))
    if focus > 0 and target is not None:
        for i in torch.nonzero(torch.rand(n) < focus).flatten().tolist():
            pixels = torch.nonzero(target(i) > 0.5).flatten()
            if len(pixels) == 0:
                continue
            p = int(pixels[torch.randint(0, len(pixels), ())])
            py, px = divmod(p, w)  # window [y0, y0 + sh) must hold py: y0 in [py - sh + 1, py]
            y0[i] = int(torch.randint(max(0, py - sh + 1), min(py, h - sh) + 1, ()))
            x0[i] = int(torch.randint(max(0, px - sw + 1), min(px, w - sw) + 1, ()))
    return y0, x0, sh, sw


def random_crop(batch: dict, size: int, focus: float = 0.0) -> dict:
    """A random ``size`` x ``size`` window of every spatial tensor of each sample.

    Training on patches is cheaper per step; the models are convolutional/windowed, so
    they run on any size. Spatial tensors are those whose last two dims equal ``x``'s;
    all of a sample's tensors are cut at the same place. With ``focus`` > 0, that share
    of the samples that have an extreme at the target week (``mask_extreme``) get a window
    that contains one of its extreme pixels (chosen at random): a random window of a
    sparse label map often holds no positive pixel, and then the extreme loss carries no
    signal about drivers. The windows are :func:`draw_windows`'.
    """
    h, w = batch["x"].shape[-2:]
    n = int(batch["x"].shape[0])
    target = None
    if focus > 0 and "mask_extreme" in batch:
        flat = batch["mask_extreme"].detach().reshape(n, -1).cpu()
        target = flat.__getitem__
    drawn = draw_windows(n, h, w, size, focus, target)
    if drawn is None:
        return batch
    y0, x0, sh, sw = drawn
    same = len(set(y0.tolist())) == 1 and len(set(x0.tolist())) == 1
    out = {}
    for key, val in batch.items():
        if torch.is_tensor(val) and val.dim() >= 2 and tuple(val.shape[-2:]) == (h, w):
            if same or val.dim() < 3 or val.shape[0] != n:  # one window (or a tensor without batch dim)
                val = val[..., int(y0[0]) : int(y0[0]) + sh, int(x0[0]) : int(x0[0]) + sw]
            else:
                val = torch.stack([val[i, ..., int(y0[i]) : int(y0[i]) + sh, int(x0[i]) : int(x0[i]) + sw]
                                   for i in range(n)])
        out[key] = val
    return out


class CroppingCollate:
    """A DataLoader ``collate_fn`` that crops each batch with :func:`random_crop` (picklable for workers).

    In the main process it is ``collate`` then the crop. In a worker the crop comes first (on a
    plain collated batch) and the cropped samples then go through ``collate``, so a pooled
    collate (``utils.batch_transport``) still hands over its own shared buffers.
    """

    def __init__(self, collate: Callable[[list], dict], size: int, focus: float = 0.0) -> None:
        self.collate, self.size, self.focus = collate, int(size), float(focus)

    def __call__(self, samples: list) -> dict:
        from torch.utils.data import default_collate, get_worker_info

        if get_worker_info() is None:
            return random_crop(self.collate(samples), self.size, self.focus)
        batch = random_crop(default_collate(samples), self.size, self.focus)
        return self.collate([{k: v[i] for k, v in batch.items()} for i in range(len(samples))])
