"""Extreme and driver metrics as docs/reference/metrics.md defines them.

Conventions (one place for all of them):

- Every ratio whose denominator is 0 is reported as 0 (e.g. precision when
  nothing is predicted positive), except where the quantity is *undefined by
  construction*: per-variable precision/recall/F1/IoU of a variable that never
  drives an extreme are ``None`` (JSON ``null``) while its false-positive rate
  stays visible.
- Counts are int64 (micro over the whole split); votes are uint8 and coverage a
  1-D count per week, so a paper-size split costs V*T*H*W bytes, not float64
  volumes.
- Samples are newest-first; :meth:`DriverVotes.update` is the one place that
  turns them into chronological order.

Both accumulators reduce across DDP ranks with ``all_reduce()`` (sum), so every
rank must call it exactly once per evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from utils.collectors import Collector
from utils.driver_gate import ExtremeGate, GateSetting, GateSpec
from utils.errors import ConfigError

__all__ = [
    "ExtremeMetrics",
    "DriverVotes",
    "scores_from_counts",
    "driver_scores",
    "naive_drivers",
    "valid_pixels",
    "ExtremeCollector",
    "DriverCollector",
    "ScoreThreshold",
]


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def scores_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Precision, recall, F1, IoU, OA (fractions in [0, 1]; 0/0 -> 0) plus the counts."""
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "oa": _ratio(tp + tn, tp + fp + fn + tn),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
    }


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a CPU tensor over ranks (no-op single-process); NCCL needs it on the rank's GPU."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    if dist.get_backend() == "nccl":
        dev = torch.device("cuda", torch.cuda.current_device())
        buf = t.to(dev)
        dist.all_reduce(buf)
        return buf.cpu()
    dist.all_reduce(t)
    return t


# --------------------------------------------------------------------------------------
# extremes
# --------------------------------------------------------------------------------------


class ExtremeMetrics:
    """Micro confusion counts of thresholded probabilities over a whole split."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)
        self.counts = torch.zeros(4, dtype=torch.int64)  # tp, fp, fn, tn

    def update(self, probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        """``probs``/``target``/``valid`` of equal shape (e.g. [N, H, W]); prediction = probs >= threshold."""
        probs, target = torch.as_tensor(probs), torch.as_tensor(target)
        if probs.shape != target.shape:
            raise ValueError(f"ExtremeMetrics: probs {tuple(probs.shape)} vs target {tuple(target.shape)}")
        pred = probs.detach().float() >= self.threshold
        true = target.detach() > 0.5
        if valid is None:
            keep = torch.ones_like(pred)
        else:
            keep = torch.as_tensor(valid).detach().to(pred.device) > 0.5
            if keep.shape != pred.shape:
                raise ValueError(f"ExtremeMetrics: valid {tuple(keep.shape)} vs probs {tuple(pred.shape)}")
        tp = (pred & true & keep).sum()
        fp = (pred & ~true & keep).sum()
        fn = (~pred & true & keep).sum()
        tn = (~pred & ~true & keep).sum()
        self.counts += torch.stack([tp, fp, fn, tn]).cpu()

    def all_reduce(self) -> ExtremeMetrics:
        self.counts = _all_reduce_sum(self.counts)
        return self

    def compute(self) -> dict[str, float]:
        return scores_from_counts(*self.counts.tolist())


# --------------------------------------------------------------------------------------
# drivers
# --------------------------------------------------------------------------------------


def _counts(pred: np.ndarray, true: np.ndarray, valid: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """TP, FP, FN, TN of two bool volumes [..., H, W]; with ``valid`` [H, W], its pixels only."""
    size = pred.size
    if valid is not None:
        pred, true = pred & valid, true & valid
        size = int(np.count_nonzero(valid)) * (pred.size // valid.size)
    tp = int(np.count_nonzero(pred & true))
    n_pred, n_true = int(np.count_nonzero(pred)), int(np.count_nonzero(true))
    fp, fn = n_pred - tp, n_true - tp
    return tp, fp, fn, size - tp - fp - fn


def driver_scores(pred: np.ndarray, truth: np.ndarray, names: Sequence[str],
                  valid: np.ndarray | None = None) -> dict[str, Any]:
    """Pooled and per-variable scores of two binary [V, T, H, W] volumes (chronological).

    Per variable: precision, recall, F1, IoU, OA, FPR and counts; for a variable
    without any true driver, precision/recall/F1/IoU are ``None`` (undefined) and
    its false-positive rate shows how much it was wrongly flagged. ``valid`` [H, W]
    (a datacube's ``--mask``) limits every count to its pixels, as for the extremes.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"driver volume {pred.shape} does not match the ground truth {truth.shape}")
    if len(names) != pred.shape[0]:
        raise ValueError(f"{len(names)} variable names for {pred.shape[0]} variables")
    if valid is not None:
        valid = np.asarray(valid) > 0.5
        if valid.shape != pred.shape[2:]:
            raise ValueError(f"valid-pixel mask {valid.shape} does not match the driver volume {pred.shape}")
    total = np.zeros(4, dtype=np.int64)
    per_var: dict[str, dict[str, Any]] = {}
    for v, name in enumerate(names):  # one variable at a time keeps temporaries small
        c = _counts(pred[v] > 0, truth[v] > 0, valid)
        total += c
        s = scores_from_counts(*c)
        s["fpr"] = _ratio(c[1], c[1] + c[3])
        s["n_true"] = c[0] + c[2]
        s["n_pred"] = c[0] + c[1]
        if s["n_true"] == 0:
            for key in ("precision", "recall", "f1", "iou"):
                s[key] = None
        per_var[str(name)] = s
    pooled = scores_from_counts(*total.tolist())
    pooled["fpr"] = _ratio(total[1], total[1] + total[3])
    return {"pooled": pooled, "per_variable": per_var}


def valid_pixels(dataset: Any) -> np.ndarray | None:
    """bool [H, W]: the pixels a split's driver scores count (a datacube's ``--mask``); None: every pixel."""
    valid = getattr(dataset, "valid_pixels", None)
    return None if valid is None else np.asarray(valid) > 0.5


class DriverVotes:
    """Majority-vote re-assembly of newest-first per-sample driver flags into a chronological split volume.

    ``votes[v, j, h, w]`` counts the windows that flagged week ``j`` (0 = ``t_first``);
    ``coverage[j]`` counts the windows that covered week ``j`` (every sample covers
    the whole crop, so coverage is 1-D). Assembled flag = ``2 * votes >= coverage``
    where ``coverage > 0`` (mean >= 0.5, ties positive); uncovered weeks are normal.
    """

    def __init__(self, n_vars: int, t_first: int, t_last: int, height: int, width: int, delta_t: int) -> None:
        if t_last < t_first:
            raise ValueError(f"DriverVotes: empty split (t_first {t_first} > t_last {t_last})")
        self.n_vars, self.t_first, self.t_last, self.delta_t = n_vars, int(t_first), int(t_last), delta_t
        self.n_time = self.t_last - self.t_first + 1
        dtype = torch.uint8 if delta_t <= 255 else torch.int32  # a week gets at most delta_t votes
        self.votes = torch.zeros(n_vars, self.n_time, height, width, dtype=dtype)
        self.coverage = torch.zeros(self.n_time, dtype=torch.int64)

    def update(self, flags: torch.Tensor, timestep: torch.Tensor | Sequence[int]) -> None:
        """``flags`` [N, V, T, H, W] newest-first (t=0 = newest week), ``timestep`` [N] newest week labels.

        Weeks of a window that fall outside [t_first, t_last] are ignored.
        """
        flags = torch.as_tensor(flags).detach()
        want = (self.n_vars, *self.votes.shape[2:])
        if flags.dim() != 5 or tuple(flags.shape[1:2] + flags.shape[3:]) != want:
            raise ValueError(
                f"DriverVotes: flags {tuple(flags.shape)} do not match [N, {self.n_vars}, T, "
                f"{self.votes.shape[2]}, {self.votes.shape[3]}]"
            )
        flags = (flags.cpu() > 0).to(self.votes.dtype).flip(2)  # chronological: index 0 = oldest week
        steps = torch.as_tensor(timestep).reshape(-1).tolist()
        if len(steps) != flags.shape[0]:
            raise ValueError(f"DriverVotes: {len(steps)} timesteps for {flags.shape[0]} samples")
        t = flags.shape[2]
        for n, newest in enumerate(steps):
            start = int(newest) - t + 1 - self.t_first  # split index of the oldest week of the window
            lo, hi = max(start, 0), min(start + t, self.n_time)
            if lo >= hi:
                continue
            self.votes[:, lo:hi] += flags[n, :, lo - start : hi - start]
            self.coverage[lo:hi] += 1

    def all_reduce(self) -> DriverVotes:
        self.votes = _all_reduce_sum(self.votes)
        self.coverage = _all_reduce_sum(self.coverage)
        return self

    def assembled(self) -> np.ndarray:
        """uint8 [V, T_split, H, W]: majority vote, ties positive, uncovered weeks 0."""
        cov = self.coverage.view(1, -1, 1, 1)
        flag = (2 * self.votes.to(torch.int32) >= cov) & (cov > 0)
        return flag.to(torch.uint8).numpy()

    def compute(self, truth: np.ndarray | torch.Tensor, names: Sequence[str]) -> dict[str, Any]:
        truth = truth.numpy() if isinstance(truth, torch.Tensor) else np.asarray(truth)
        return driver_scores(self.assembled(), truth, names)


def naive_drivers(extremes: np.ndarray, delta_t: int, newest: Sequence[int] | None = None) -> np.ndarray:
    """Naive reference: flag every week of a window wherever its pixel has an extreme in that window.

    ``extremes`` [T_split, H, W] (chronological, nonzero = class-1 extreme); windows end at
    split indices ``newest`` (default: every full window, as the synthetic loader builds them).
    Returns uint8 [T_split, H, W] assembled with the same majority vote as :class:`DriverVotes`;
    it is the same for every variable (broadcast it to [V, ...] with ``np.broadcast_to``).
    """
    ext = torch.as_tensor(np.asarray(extremes) == 1)
    n_time, h, w = ext.shape
    if newest is None:
        newest = range(delta_t - 1, n_time)
    votes = DriverVotes(1, 0, n_time - 1, h, w, delta_t)
    for end in newest:
        lo = max(end - delta_t + 1, 0)
        hit = ext[lo : end + 1].any(0)
        votes.update(hit.view(1, 1, 1, h, w).expand(1, 1, delta_t, h, w), [end])
    return votes.assembled()[0]


# --------------------------------------------------------------------------------------
# collectors: what the engine hands each (batch, out) to during evaluation
# --------------------------------------------------------------------------------------


class ExtremeCollector(Collector):
    """Engine collector for the extreme map at t=0 (skips methods whose ``out.logits`` is None)."""

    name = "extremes"
    checkpoint_keys = {"F1": (("f1",), False)}

    def __init__(self, threshold: float = 0.5) -> None:
        self.metrics = ExtremeMetrics(threshold)
        self.seen = False

    def update(self, batch: dict, out: Any) -> None:
        if getattr(out, "logits", None) is None:
            return
        self.seen = True
        probs = torch.sigmoid(out.logits.detach().float())[:, 0]
        self.metrics.update(probs, batch["mask_extreme"], batch.get("mask_valid"))

    def all_reduce(self) -> None:
        self.metrics.all_reduce()

    def result(self) -> dict[str, Any]:
        # a rank with no batch may not have seen logits; counts are summed, so this is only cosmetic
        return self.metrics.compute() if self.seen or int(self.metrics.counts.sum()) else {}


class DriverCollector(Collector):
    """Engine collector for the driver flags of a split with known ground truth (synthetic).

    ``dataset`` must expose ``time_labels`` (chronological, consecutive labels of the split),
    ``variables`` and ``drivers_truth()`` -> [V, T_split, H, W] (the crop).
    """

    name = "drivers"
    checkpoint_keys = {"driver_F1": (("pooled", "f1"), False)}

    def __init__(self, dataset: Any, delta_t: int, gate: GateSpec | None = None) -> None:
        labels = [int(t) for t in np.asarray(dataset.time_labels).reshape(-1)]
        self.truth = np.asarray(dataset.drivers_truth())
        self.valid = valid_pixels(dataset)
        self.names = [str(v) for v in dataset.variables]
        if self.truth.ndim != 4 or self.truth.shape[:2] != (len(self.names), len(labels)):
            raise ValueError(
                f"drivers_truth() has shape {self.truth.shape}; expected [{len(self.names)} variables, "
                f"{len(labels)} weeks, H, W]"
            )
        if labels != list(range(labels[0], labels[0] + len(labels))):
            raise ValueError("DriverCollector needs consecutive time labels for the split")
        _, _, height, width = self.truth.shape
        self.time_labels = labels
        self.votes = DriverVotes(len(self.names), labels[0], labels[-1], height, width, delta_t)
        self.gate = None if gate is None else ExtremeGate(gate, labels[0], len(labels), height, width)
        self.gate_setting: GateSetting | None = None if gate is None else gate.fixed
        self._result: dict[str, Any] | None = None

    def update(self, batch: dict, out: Any) -> None:
        self.votes.update(out.anomaly, batch["timestep"])
        if self.gate is not None:
            self.gate.update(getattr(out, "logits", None), batch["timestep"])

    def all_reduce(self) -> None:
        self.votes.all_reduce()
        if self.gate is not None:
            self.gate.all_reduce()

    def flags(self) -> np.ndarray:
        """uint8 [V, T_split, H, W]: the re-assembled flags, gated when a gate is set (after ``result``
        when the gate's threshold is chosen on this split)."""
        flags = self.votes.assembled()
        if self.gate is None:
            return flags
        if self.gate_setting is None:
            raise RuntimeError("DriverCollector: the gate is chosen in result(); call it first")
        return self.gate.apply(flags, self.gate_setting)

    def result(self) -> dict[str, Any]:
        if self._result is None:
            flags = self.votes.assembled()
            if self.gate is None:
                self._result = driver_scores(flags, self.truth, self.names, self.valid)
            else:
                ungated = driver_scores(flags, self.truth, self.names, self.valid)["pooled"]
                self.gate_setting, self._result = self.gate.choose(flags, self.truth, self.names, self.valid)
                self._result["gate"] = {**self.gate_setting.as_record(), "ungated": ungated}
        return self._result


# --------------------------------------------------------------------------------------
# score-based methods (baselines): output type and validation-split threshold
# --------------------------------------------------------------------------------------


_N_KEYS = 1 << 16


def _score_keys(x: torch.Tensor) -> torch.Tensor:
    """Order-preserving int64 keys in [0, 65536) of the bfloat16 rounding of ``x`` (one bin each)."""
    s = x.detach().float().nan_to_num(0.0).to(torch.bfloat16).view(torch.int16).to(torch.int64)
    return torch.where(s >= 0, s + 32768, 32767 - (s & 0x7FFF))


def _key_values(keys: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_score_keys` (float64)."""
    keys = keys.to(torch.int64)
    s = torch.where(keys >= 32768, keys - 32768, (32767 - keys) - 32768)
    return s.to(torch.int16).view(torch.bfloat16).to(torch.float64)


class ScoreThreshold(Collector):
    """Collector that picks a driver-score threshold on a split (the validation split, never test).

    ``rule='val_f1'``: maximise the per-sample driver F1 against ``mask_anomaly`` (the
    validation ground truth, as IDE's best_driver_F1 checkpoint uses it);
    ``rule='normal_percentile'``: label-free, the ``percentile`` of scores at pixels
    without any extreme in the window. Scores are histogrammed exactly at bfloat16
    resolution (65536 ordered bins), so memory does not grow with the split.
    """

    name = "threshold"

    def __init__(self, rule: str = "val_f1", percentile: float = 99.0) -> None:
        if rule not in ("val_f1", "normal_percentile"):
            raise ValueError(f"option 'driver_threshold_rule': {rule!r} is not val_f1 or normal_percentile")
        self.rule, self.percentile = rule, float(percentile)
        self.hist = torch.zeros(2, _N_KEYS, dtype=torch.int64)  # [negatives | normal, positives]

    def update(self, batch: dict, out: Any) -> None:
        keys = _score_keys(out.score)
        if self.rule == "val_f1":
            pos = batch["mask_anomaly"].to(keys.device) > 0.5
            self.hist[0] += torch.bincount(keys[~pos], minlength=_N_KEYS).cpu()
            self.hist[1] += torch.bincount(keys[pos], minlength=_N_KEYS).cpu()
        else:
            normal = batch["mask_extreme_loss"].to(keys.device) < 0.5
            if "mask_valid" in batch:  # real data: only the split's land pixels with vegetation count
                normal &= batch["mask_valid"].to(keys.device) > 0.5
            normal = normal[:, None, None].expand_as(keys)
            self.hist[0] += torch.bincount(keys[normal], minlength=_N_KEYS).cpu()

    def all_reduce(self) -> None:
        self.hist = _all_reduce_sum(self.hist)

    def result(self) -> dict[str, Any]:
        """``threshold`` (flag = score > threshold) and, for val_f1, the per-sample F1 it reaches."""
        neg, pos = self.hist[0], self.hist[1]
        if self.rule == "val_f1" and int(pos.sum()) == 0:  # every threshold scores F1 0: none is better
            raise ConfigError("option 'driver_threshold_rule': val_f1 found no true driver on the validation "
                              "split to choose the threshold on; use normal_percentile, or fixed with "
                              "--driver_threshold")
        if self.rule == "normal_percentile" and int(neg.sum()) == 0:
            raise ConfigError("option 'driver_threshold_rule': normal_percentile found no normal pixel (valid, "
                              "with no extreme in its window) on the validation split to take the percentile "
                              "of; use val_f1, or fixed with --driver_threshold")
        finite = torch.isfinite(_key_values(torch.arange(_N_KEYS)))  # NaN / inf bit patterns are no threshold
        finite[-1] = False
        # flags above bin k: tp(k) = positives in bins > k
        tp = pos.flip(0).cumsum(0).flip(0)[1:]
        fp = neg.flip(0).cumsum(0).flip(0)[1:]
        if self.rule == "val_f1":
            fn = int(pos.sum()) - tp
            f1 = (2 * tp).double() / (2 * tp + fp + fn).clamp_min(1).double()
            f1[~finite[:-1]] = -1.0
            k = int(torch.argmax(f1))
            extra = {"f1_samples": float(f1[k])}
        else:
            total = int(neg.sum())
            below = neg.cumsum(0)
            k = int(torch.searchsorted(below, torch.tensor(total * self.percentile / 100.0).ceil().long()))
            k = min(k, int(torch.nonzero(finite).max()))
            extra = {"percentile": self.percentile}
        lo, hi = _key_values(torch.tensor([k, k + 1])).tolist()
        threshold = (lo + hi) / 2 if all(map(math.isfinite, (lo, hi))) else lo
        return {"threshold": float(threshold), "rule": self.rule, **extra}
