"""How much of a dataset's normalised input the whole grid shares, and the ``spatial_anomaly`` choice it drives.

A signal that every pixel of the grid carries alike in a week (a seasonal cycle out of step with the
52-week climatology, a region-wide shift) is invisible to a per-pixel climatology and can bury local
anomalies: on benchmarks of the published generator at 1040 weeks it holds 89-99.6 % of the variance
of five of the six variables (docs/results/paper-size.md). ``spatial_anomaly: auto`` turns the
model's spatial-anomaly channel on exactly where that share is large, so one recipe serves data with and
without such a signal.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

SHARED_THRESHOLD = 0.5  # auto: on when the median variable's grid-shared share reaches this
N_SAMPLES = 16  # training samples read to measure it (evenly spaced, no augmentation drawn)


def grid_shared_share(dataset: Any, n_samples: int = N_SAMPLES) -> np.ndarray:
    """Per variable, the share of the input's variance held by its per-week grid mean.

    Reads ``n_samples`` evenly spaced items (``x`` [V, C, T, H, W]) under ``torch.random.fork_rng``,
    so augmentation draws leave the caller's random stream untouched.
    """
    n = len(dataset)
    if n < 1:
        raise ValueError("spatial_anomaly auto: the training split has no samples to measure")
    idx = np.unique(np.linspace(0, n - 1, min(n_samples, n)).round().astype(int))
    with torch.random.fork_rng(devices=[]):
        xs = [torch.as_tensor(dataset[int(i)]["x"]).double() for i in idx]
    x = torch.stack(xs).transpose(0, 1).flatten(1, -3)  # [V, S*C*T, H, W]
    total = x.flatten(1).var(dim=1, unbiased=False)
    shared = x.mean(dim=(-2, -1)).var(dim=1, unbiased=False)
    return (shared / total.clamp_min(1e-12)).numpy()


def resolve_spatial_anomaly(cfg: Any, train_set: Any, log=print) -> Any:
    """``cfg`` with ``spatial_anomaly`` 'auto' replaced by 'always' or 'none' (measured on ``train_set``)."""
    if cfg.spatial_anomaly != "auto":
        return cfg
    share = grid_shared_share(train_set)
    on = float(np.median(share)) >= SHARED_THRESHOLD
    figures = ", ".join(f"{v} {100 * s:.1f} %" for v, s in zip(cfg.variables, share))
    log(f"spatial_anomaly auto -> {'always' if on else 'none'}: the grid shares {figures} of the "
        f"training inputs' variance (on when the median reaches {100 * SHARED_THRESHOLD:.0f} %)")
    return dataclasses.replace(cfg, spatial_anomaly="always" if on else "none")
