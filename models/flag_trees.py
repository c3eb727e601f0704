"""Extremes predicted from a trained model's flags by gradient-boosted trees (``driver_gate_model: trees``).

Why: the extreme gate (utils/driver_gate.py) keeps a flag only where an extreme is predicted at
its pixel after it, so the gate is as good as that prediction. The model's own 3D-CNN classifier
learns while the flags move under it, with balanced class weights; on benchmarks of the
published generator whose test split has few extremes it predicts extremes where one driver
variable is anomalous without the others (docs/results/paper-size.md). Trees fit once, after
training, on the frozen flags of the training split, learn such conjunctions from each pixel's
window of flags, and their probabilities are calibrated (unweighted log-loss), so the gate's
threshold chosen on the validation split should transfer to other splits. Measured on paper-size
events they do worse than the classifier (test driver F1 19.62 against 49.79 % on data seed 61,
40.43 against 64.00 % on seed 53; docs/results/paper-size.md), so no preset uses them.

Features of a pixel in a window: every variable's flag in every week of the window, and the share
of flagged pixels in the ``box`` x ``box`` neighbourhood (events are patches, flags are noisy).
No ground truth of the split being tested is used: the trees see the training split's flags and
extremes only. Nothing is written to a file: a test fits them again, deterministically.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.collectors import Collector

__all__ = ["check_box", "window_features", "FlagRows", "FlagTrees", "TreeGated"]

_EPS = 1e-6  # keeps a probability's logit finite


def check_box(box: int) -> None:
    """The neighbourhood of the share features is an odd number of pixels wide, centred on the pixel."""
    if box < 1 or box % 2 == 0:
        raise ValueError(f"option 'gate_trees_box' is {box}; give an odd width of 1 or more pixels")


def window_features(anomaly: Tensor, box: int) -> Tensor:
    """uint8 flags [N, V, T, H, W] -> float32 [N * H * W, 2 * V * T] (row = sample, then pixel in row-major order).

    Per variable and week: the pixel's flag, then the share of flagged pixels in the ``box`` x
    ``box`` window centred on it (pixels outside the grid count as unflagged).
    """
    if anomaly.dim() != 5:
        raise ValueError(f"flags must be [N, V, T, H, W], got {tuple(anomaly.shape)}")
    check_box(box)
    n, v, t, h, w = anomaly.shape
    flags = anomaly.float().reshape(n * v, 1, t, h, w)
    share = F.avg_pool3d(flags, (1, box, box), stride=1, padding=(0, box // 2, box // 2), count_include_pad=True)
    feats = torch.cat([flags.reshape(n, v * t, h, w), share.reshape(n, v * t, h, w)], dim=1)
    return feats.permute(0, 2, 3, 1).reshape(n * h * w, 2 * v * t)


class FlagRows(Collector):
    """Engine collector of a split's tree rows: each pixel's window features and its extreme label.

    Pixels outside ``mask_valid`` (real data) are left out. Features are stored as float32;
    a 32 x 32 crop of a 416-week training split with 6 variables and 8 weeks takes about 160 MB.
    """

    name = None

    def __init__(self, box: int) -> None:
        self.box = box
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def update(self, batch: dict, out: Any) -> None:
        feats = window_features(out.anomaly, self.box).cpu().numpy()
        label = (batch["mask_extreme"] > 0.5).reshape(-1).cpu().numpy()
        keep = slice(None)
        if batch.get("mask_valid") is not None:
            keep = (batch["mask_valid"] > 0.5).reshape(-1).cpu().numpy()
        self.x.append(feats[keep])
        self.y.append(label[keep])

    def all_reduce(self) -> None:
        """Every rank fits the same trees: gather all ranks' rows, in rank order."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (self.x, self.y))
            self.x = [a for xs, _ in gathered for a in xs]
            self.y = [a for _, ys in gathered for a in ys]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.x:
            raise ValueError("the training split gave no rows to fit the gate's trees on")
        return np.concatenate(self.x), np.concatenate(self.y)


class FlagTrees:
    """Gradient-boosted trees (scikit-learn) from window features to the probability of an extreme."""

    def __init__(self, box: int = 5, max_iter: int = 200, seed: int = 0) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.box = box
        self.model = HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=0.1, early_stopping=False, random_state=seed
        )
        self.fitted = False

    def fit(self, x: np.ndarray, y: np.ndarray) -> FlagTrees:
        y = np.asarray(y, dtype=bool)
        if y.all() or not y.any():
            raise ValueError(
                "driver_gate_model trees: the training split has "
                + ("no extreme" if not y.any() else "only extremes")
                + " at the model's pixels to learn from; use --driver_gate_model classifier"
            )
        self.model.fit(x, y)
        self.fitted = True
        return self

    def logits(self, anomaly: Tensor) -> Tensor:
        """Flags [N, V, T, H, W] -> extreme logits [N, 1, H, W] (float32, on the flags' device)."""
        n, _, _, h, w = anomaly.shape
        x = window_features(anomaly, self.box).cpu().numpy()
        p = torch.from_numpy(self.model.predict_proba(x)[:, 1].astype(np.float32))
        return torch.logit(p.clamp(_EPS, 1 - _EPS)).reshape(n, 1, h, w).to(anomaly.device)


class TreeGated(nn.Module):
    """A model whose extreme logits are the trees' (from its own flags); flags and the rest unchanged."""

    def __init__(self, model: nn.Module, trees: FlagTrees) -> None:
        super().__init__()
        if not trees.fitted:
            raise ValueError("TreeGated needs fitted trees (FlagTrees.fit)")
        self.model, self.trees = model, trees

    def forward(self, x: Tensor) -> Any:
        out = self.model(x)
        return dataclasses.replace(out, logits=self.trees.logits(out.anomaly))
