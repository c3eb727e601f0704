"""Training and evaluation batches cut from a split held on the run's device, without a DataLoader.

A paper-size synthetic split (200 x 200, 6 variables, about 1,800 weeks) is about 2.3 GB in
float32: it fits in a GPU's memory. :class:`DeviceCube` copies a loaded split there once (inputs
already normalised by the dataset, the extreme classes, the true drivers) and
:class:`DeviceBatches` cuts every batch with index tensors: the window of ``delta_t`` weeks
(newest first), the augmentation flips and the training crop are one gather per tensor, so the
training loop has no worker processes, no collation and no host-to-device copies.

The random draws are the DataLoader path's (``n_workers 0``): one int64 when an epoch's iterator
is made, three numbers per sample for the augmentation (``SyntheticDataset.draw_flips``), then the
crop windows (``dataset.crops.draw_windows``), all from torch's CPU RNG in the same order. So
for the same seed and sampler the batches equal the DataLoader's bit for bit (the values are
copies, not recomputed) and the RNG state after an epoch is the same: a run's checkpoints and its
``--resume`` do not depend on the path. (DataLoader workers draw from their own streams, so with
``n_workers`` > 0 the DataLoader's samples differ from both.)

Covered: the ``synthetic`` family (``dataset.synthetic.SyntheticDataset``). Other datasets keep
the DataLoader (:func:`plan` says why).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, Sampler

from dataset.crops import draw_windows

__all__ = ["DeviceCube", "DeviceBatches", "supports", "cube_bytes", "plan", "device_cube"]

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # dataset -> its DeviceCube


def supports(dataset: Dataset) -> bool:
    """Whether ``dataset``'s samples can be cut on the device (the synthetic family's datasets)."""
    from dataset.synthetic import SyntheticDataset

    return isinstance(dataset, SyntheticDataset)


def cube_bytes(dataset: Dataset) -> int:
    """Bytes the split takes on the device: float32 inputs, uint8 drivers, extreme maps and window masks."""
    v, t, h, w = dataset.normalised_inputs().shape
    return v * t * h * w * (4 + 1) + 2 * t * h * w + len(dataset) * h * w


def plan(cfg: Any, device: torch.device, dataset: Dataset) -> tuple[bool, str]:
    """Whether to cut ``dataset``'s batches on ``device`` (``--device_data``), and why, for the log."""
    mode = getattr(cfg, "device_data", "off")
    if mode == "off":
        return False, "device_data off: DataLoader"
    if mode == "auto" and device.type != "cuda":
        return False, f"device_data auto: DataLoader on {device.type} (the device path is for CUDA; 'on' forces it)"
    if not supports(dataset):
        return False, f"device_data {mode}: DataLoader, {type(dataset).__name__} has no device path (synthetic only)"
    gb = cube_bytes(dataset) / 1e9
    cap = float(getattr(cfg, "device_data_max_gb", 0.0))
    if gb > cap:
        return False, f"device_data {mode}: DataLoader, the split needs {gb:.2f} GB > device_data_max_gb {cap:g}"
    held = _CACHE.get(dataset)
    if held is not None and held.device == device:
        return True, f"device_data {mode}: batches cut on {device} from the split held there ({gb:.2f} GB)"
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if gb * 1e9 > 0.5 * free:
            return False, (f"device_data {mode}: DataLoader, the split needs {gb:.2f} GB, more than half of the "
                           f"{free / 1e9:.1f} GB free on {device}")
    return True, f"device_data {mode}: batches cut on {device} from the split held there ({gb:.2f} GB)"


def device_cube(dataset: Dataset, device: torch.device) -> DeviceCube:
    """The dataset's cube on ``device``, made once and kept while the dataset lives."""
    cube = _CACHE.get(dataset)
    if cube is None or cube.device != device:
        cube = DeviceCube(dataset, device)
        _CACHE[dataset] = cube
    return cube


class DeviceCube:
    """A synthetic split on ``device``: what ``SyntheticDataset.__getitem__`` slices, stored once.

    ``x`` float32 [V, n_times, H, W] (normalised, chronological), ``anomaly`` uint8 [V, n_times, H, W],
    ``target`` uint8 [n_times, H, W] (extreme class 1), ``window_any`` uint8 [n_samples, H, W]
    (any class 1..3 in the sample's weeks), ``timestep`` int64 [n_samples]. The host keeps the
    class-1 maps (uint8, small) for the focused crops' draws, so drawing needs no device read.
    """

    def __init__(self, dataset: Dataset, device: torch.device) -> None:
        self.device = torch.device(device)
        self.delta_t = int(dataset.delta_t)
        self.is_aug = bool(dataset.is_aug)
        self.n = len(dataset)
        self.draw_flips = dataset.draw_flips
        extreme = dataset.extreme_classes()  # classes 0..3, chronological [n_times, H, W]
        self.height, self.width = int(extreme.shape[1]), int(extreme.shape[2])
        with warnings.catch_warnings():  # read-only views: never written (on CPU the cube shares them)
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            self.x = torch.from_numpy(np.ascontiguousarray(dataset.normalised_inputs())).to(self.device)
            self.anomaly = torch.from_numpy(np.ascontiguousarray(dataset.drivers_truth())).to(self.device)
        self.target_host = np.ascontiguousarray(extreme == 1)
        self.target = torch.from_numpy(self.target_host.view(np.uint8)).to(self.device)
        in_event = torch.from_numpy(((extreme >= 1) & (extreme <= 3)).view(np.uint8)).to(self.device)
        window_any = in_event[: self.n].clone()
        for k in range(1, self.delta_t):
            window_any |= in_event[k : k + self.n]
        self.window_any = window_any
        labels = np.asarray(dataset.time_labels, dtype=np.int64)
        self.timestep = torch.from_numpy(labels[self.delta_t - 1 : self.delta_t - 1 + self.n].copy()).to(self.device)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.x, self.anomaly, self.target, self.window_any))

    def batch(self, index: list[int], crop: int = 0, focus: float = 0.0, augment: bool | None = None) -> dict:
        """The batch of samples ``index`` as the DataLoader path builds it (same RNG draws, same values).

        Draws, on the CPU: the flips of each sample in order (when augmenting), then the crop windows.
        Cuts, on the device: one gather per tensor with the weeks newest first and the rows and columns
        of each sample's flipped window.
        """
        n, t, h, w = len(index), self.delta_t, self.height, self.width
        augment = self.is_aug if augment is None else augment
        flips = [self.draw_flips() if augment else (False, False) for _ in index]
        sh, sw = h, w
        y0 = torch.zeros(n, dtype=torch.int64)
        x0 = torch.zeros(n, dtype=torch.int64)
        if crop > 0:
            drawn = draw_windows(n, h, w, crop, focus, lambda i: self._flipped_target(index[i], *flips[i]))
            if drawn is not None:
                y0, x0, sh, sw = drawn
        # one small host-to-device copy per batch: (sample, y0, x0, flip_y, flip_x) of each sample
        per_sample = torch.stack([torch.tensor(index, dtype=torch.int64), y0, x0,
                                  torch.tensor([f[0] for f in flips], dtype=torch.int64),
                                  torch.tensor([f[1] for f in flips], dtype=torch.int64)], dim=1)
        idx, y0, x0, fy, fx = per_sample.to(self.device, non_blocking=True).unbind(1)
        # rows/cols of the flipped sample's window, as rows/cols of the stored (unflipped) cube
        rows = y0[:, None] + torch.arange(sh, device=self.device)[None]
        cols = x0[:, None] + torch.arange(sw, device=self.device)[None]
        rows = torch.where(fy[:, None] == 1, h - 1 - rows, rows)
        cols = torch.where(fx[:, None] == 1, w - 1 - cols, cols)
        weeks = idx[:, None] + (t - 1 - torch.arange(t, device=self.device))[None]  # newest first
        tw, r3, c3 = weeks[:, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        x = self.x[:, tw, r3, c3].transpose(0, 1)  # [n, V, T, sh, sw]
        anomaly = self.anomaly[:, tw, r3, c3].transpose(0, 1)
        r2, c2 = rows[:, :, None], cols[:, None, :]
        newest = (idx + t - 1)[:, None, None]
        return {
            "x": x.unsqueeze(2).contiguous(),
            "mask_extreme": self.target[newest, r2, c2].float(),
            "mask_extreme_loss": self.window_any[idx[:, None, None], r2, c2].float(),
            "mask_anomaly": anomaly.float().contiguous(),
            "timestep": self.timestep[idx],
        }

    def _flipped_target(self, i: int, flip_y: bool, flip_x: bool) -> torch.Tensor:
        """Sample i's target map as the augmented sample holds it, flattened (CPU): for the focused crops."""
        m = self.target_host[i + self.delta_t - 1]
        if flip_y:
            m = m[::-1]
        if flip_x:
            m = m[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(m).reshape(-1).view(np.uint8))


class DeviceBatches:
    """An iterable of batches from a :class:`DeviceCube`, in ``sampler``'s order, like a DataLoader.

    ``len`` is the number of batches (the last may be short, as ``drop_last=False``); every
    ``iter`` draws the one int64 that a DataLoader iterator draws, so the RNG stream of a run is the
    same on both paths.
    """

    def __init__(self, cube: DeviceCube, sampler: Sampler[int], batch_size: int, crop: int = 0,
                 focus: float = 0.0, augment: bool | None = None) -> None:
        self.cube, self.sampler = cube, sampler
        self.batch_sampler = BatchSampler(sampler, batch_size, drop_last=False)
        self.crop, self.focus, self.augment = int(crop), float(focus), augment

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_sampler.batch_size)

    def __iter__(self) -> Iterator[dict]:
        torch.empty((), dtype=torch.int64).random_()  # the base seed a DataLoader iterator draws
        for index in self.batch_sampler:
            yield self.cube.batch(list(index), self.crop, self.focus, self.augment)
