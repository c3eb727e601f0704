"""The extreme gate's predictor as gradient-boosted trees (``driver_gate_model: flag_trees | input_trees``).

Why: the extreme gate (utils/driver_gate.py) keeps a flag only where an extreme is predicted at
its pixel after it, so the gate is as good as that prediction. The model's own 3D-CNN classifier
learns while the flags move under it, with balanced class weights; on benchmarks of the
published generator it predicts extremes where none follows (docs/results/paper-size.md).
Trees fit once, after training, on the training split's windows and extremes, each pixel a row:

- ``input_trees``: the features are the inputs the encoder reads (each variable's first channel
  in every week of the window, minus the week's spatial median when the spatial-anomaly channel
  is on), with balanced class weights. They do not depend on the checkpoint. On paper-size
  events they predict the test extremes far better than the classifier and make the gate keep
  the drivers (docs/results/paper-size.md), so `recipe_30min.yaml` uses them.
- ``flag_trees``: the features are the checkpoint's flags (each flag, and the share of flagged
  pixels in the ``box`` x ``box`` neighbourhood), unweighted. Measured worse than the classifier
  (test driver F1 19.62 against 49.79 % on data seed 61); in no preset.

No ground truth of the split being tested is used: the trees see the training split's inputs or
flags and its extremes only. Nothing is written to a file: a test fits them again, deterministically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.collectors import Collector

__all__ = ["MAX_ROWS", "check_box", "window_features", "input_features", "features_for", "rows_model", "GateRows",
           "boosted_trees", "GateTrees", "variable_lift", "TreeGated"]

_EPS = 1e-6  # keeps a probability's logit finite

#: rows of a batch: (the model's input x, the model's output) -> float32 [N * H * W, F]
Features = Callable[[Tensor, Any], Tensor]


def check_box(box: int) -> None:
    """The neighbourhood of the share features is an odd number of pixels wide, centred on the pixel."""
    if box < 1 or box % 2 == 0:
        raise ValueError(f"option 'gate_trees_box' is {box}; give an odd width of 1 or more pixels")


def _rows(feats: Tensor) -> Tensor:
    """[N, F, H, W] -> [N * H * W, F]: one row per sample, then pixel in row-major order."""
    n, f, h, w = feats.shape
    return feats.permute(0, 2, 3, 1).reshape(n * h * w, f)


def window_features(anomaly: Tensor, box: int) -> Tensor:
    """uint8 flags [N, V, T, H, W] -> float32 [N * H * W, 2 * V * T].

    Per variable and week: the pixel's flag, then the share of flagged pixels in the ``box`` x
    ``box`` window centred on it (pixels outside the grid count as unflagged).
    """
    if anomaly.dim() != 5:
        raise ValueError(f"flags must be [N, V, T, H, W], got {tuple(anomaly.shape)}")
    check_box(box)
    n, v, t, h, w = anomaly.shape
    flags = anomaly.float().reshape(n * v, 1, t, h, w)
    share = F.avg_pool3d(flags, (1, box, box), stride=1, padding=(0, box // 2, box // 2), count_include_pad=True)
    return _rows(torch.cat([flags.reshape(n, v * t, h, w), share.reshape(n, v * t, h, w)], dim=1))


def input_features(x: Tensor, spatial: bool) -> Tensor:
    """Inputs [N, V, C, T, H, W] -> float32 [N * H * W, V * T]: each variable's first channel in every
    week, minus that week's median over the grid when ``spatial`` (what the anomaly prior reads too)."""
    if x.dim() != 6:
        raise ValueError(f"inputs must be [N, V, C, T, H, W], got {tuple(x.shape)}")
    from models.ide import spatial_residual

    v0 = x[:, :, 0].float()  # [N, V, T, H, W]
    if spatial:
        v0 = spatial_residual(v0)
    n, v, t, h, w = v0.shape
    return _rows(v0.reshape(n, v * t, h, w))


def features_for(kind: str, box: int = 5, spatial: bool = False) -> Features:
    """The row function of ``driver_gate_model`` ``kind``."""
    if kind == "flag_trees":
        check_box(box)
        return lambda x, out: window_features(out.anomaly, box)
    if kind == "input_trees":
        return lambda x, out: input_features(x, spatial)
    raise ValueError(f"option 'driver_gate_model' is {kind!r} here; trees are flag_trees or input_trees")


class _NoForward(nn.Module):
    """Stands in for the model while input rows are collected: they are read from the batch alone."""

    def forward(self, x: Tensor) -> None:
        return None


def rows_model(kind: str, model: nn.Module) -> nn.Module:
    """What the training split runs through to collect ``kind``'s rows: the model for flag rows, nothing
    for input rows (they do not depend on the checkpoint, so no forward pass is spent on them)."""
    return model if kind == "flag_trees" else _NoForward()


#: rows the trees are fit on at most; a larger split gives a seeded random share of its rows
MAX_ROWS = 2_000_000


class GateRows(Collector):
    """Engine collector of a split's tree rows: each pixel's window features and its extreme label.

    Pixels outside ``mask_valid`` (real data) are left out. Rows are stored as float32: input rows
    of a 32 x 32 crop of a 416-week training split with 6 variables and 8 weeks take about 80 MB.
    Where ``n_samples`` samples would give more than ``max_rows`` rows (a whole 100 x 100 grid, say),
    each row is kept with probability ``max_rows`` / rows, drawn from ``seed``, so memory stays bounded.
    """

    name = None

    def __init__(self, features: Features, n_samples: int | None = None, max_rows: int = MAX_ROWS,
                 seed: int = 0) -> None:
        self.features, self.n_samples, self.max_rows = features, n_samples, max_rows
        self.rng = np.random.default_rng(seed)
        self.share: float | None = None
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def update(self, batch: dict, out: Any) -> None:
        feats = self.features(batch["x"], out).cpu().numpy()
        label = (batch["mask_extreme"] > 0.5).reshape(-1).cpu().numpy()
        keep = np.ones(len(label), dtype=bool)
        if batch.get("mask_valid") is not None:
            keep = (batch["mask_valid"] > 0.5).reshape(-1).cpu().numpy()
        if self.share is None:
            pixels = len(label) // max(1, batch["x"].shape[0])
            total = (self.n_samples or 0) * pixels
            self.share = min(1.0, self.max_rows / total) if total > 0 else 1.0
        if self.share < 1.0:
            keep = keep & (self.rng.random(len(label)) < self.share)
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


def boosted_trees(max_iter: int, seed: int, balanced: bool) -> Any:
    """The classifier of the gate trees and of the variable lifts: scikit-learn's histogram gradient
    boosting, a fixed number of rounds (no early stopping: no rows are held out), seeded.
    ``balanced``: each class carries half the weight."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.1, early_stopping=False,
                                          random_state=seed, class_weight="balanced" if balanced else None)


def _one_class(y: np.ndarray) -> str | None:
    """What is wrong with labels ``y`` for a classifier: 'no extreme', 'only extremes' or None."""
    return "no extreme" if not y.any() else "only extremes" if y.all() else None


class GateTrees:
    """Gradient-boosted trees (scikit-learn) from a window's rows to the probability of an extreme.

    ``balanced``: each class carries half the weight (the input trees; the flag trees are unweighted).
    """

    def __init__(self, features: Features, max_iter: int = 200, seed: int = 0, balanced: bool = False) -> None:
        self.features = features
        self.model = boosted_trees(max_iter, seed, balanced)
        self.fitted = False

    def fit(self, x: np.ndarray, y: np.ndarray) -> GateTrees:
        y = np.asarray(y, dtype=bool)
        if (wrong := _one_class(y)) is not None:
            raise ValueError(f"driver_gate_model trees: the training split has {wrong} at the model's pixels "
                             "to learn from; use --driver_gate_model classifier")
        self.model.fit(x, y)
        self.fitted = True
        return self

    def logits(self, x: Tensor, out: Any) -> Tensor:
        """The model's input [N, V, C, T, H, W] and output -> extreme logits [N, 1, H, W] (float32, on x's device)."""
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        p = torch.from_numpy(self.model.predict_proba(self.features(x, out).cpu().numpy())[:, 1].astype(np.float32))
        return torch.logit(p.clamp(_EPS, 1 - _EPS)).reshape(n, 1, h, w).to(x.device)


def variable_lift(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], n_vars: int,
                  seed: int = 0, max_iter: int = 50) -> np.ndarray:
    """float64 [V]: how well each variable alone tells the extremes, as a lift over chance.

    ``train`` and ``val`` are (input rows, extreme labels) of two splits (:func:`input_features`: each
    variable's weeks side by side). Per variable, trees fit on the training rows of its weeks alone
    score the validation rows; the lift is their average precision over the validation share of
    extremes: about 1 for a variable that tells nothing of the extremes, far above for one that
    drives them. One variable at a time, so a driver whose information the others repeat still
    counts (shuffling it among all the variables costs the trees little: docs/results/paper-size.md).
    """
    from sklearn.metrics import average_precision_score

    (xt, yt), (xv, yv) = train, val
    yt, yv = np.asarray(yt, dtype=bool), np.asarray(yv, dtype=bool)
    if xt.shape[1] != xv.shape[1] or xt.shape[1] % n_vars:
        raise ValueError(f"input columns {xt.shape[1]} / {xv.shape[1]} do not split into {n_vars} variables")
    for name, y in (("training", yt), ("validation", yv)):
        if (wrong := _one_class(y)) is not None:
            raise ValueError(f"the {name} split has {wrong} to measure the variables on")
    weeks = xt.shape[1] // n_vars
    lift = np.empty(n_vars)
    for v in range(n_vars):
        cols = slice(v * weeks, (v + 1) * weeks)
        trees = boosted_trees(max_iter, seed, balanced=True).fit(xt[:, cols], yt)
        lift[v] = average_precision_score(yv, trees.predict_proba(xv[:, cols])[:, 1]) / yv.mean()
    return lift


class TreeGated(nn.Module):
    """A model whose extreme logits are the trees'; where ``keep`` (bool [V]) is given, the flags of the
    variables it leaves out are set to normal (``lift``: what chose them, by variable name); the rest
    unchanged."""

    def __init__(self, model: nn.Module, trees: GateTrees, keep: Any = None,
                 lift: dict[str, float] | None = None) -> None:
        super().__init__()
        if not trees.fitted:
            raise ValueError("TreeGated needs fitted trees (GateTrees.fit)")
        self.model, self.trees, self.lift = model, trees, lift
        self.keep = None if keep is None else torch.as_tensor(keep, dtype=torch.bool)

    def forward(self, x: Tensor) -> Any:
        out = self.model(x)
        out = dataclasses.replace(out, logits=self.trees.logits(x, out))
        if self.keep is None:
            return out
        keep = self.keep.to(out.anomaly.device).reshape(1, -1, *([1] * (out.anomaly.dim() - 2)))
        return dataclasses.replace(out, anomaly=out.anomaly * keep.to(out.anomaly.dtype))
