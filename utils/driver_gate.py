"""The extreme gate: a driver flag counts only where the model predicts an extreme that it can drive.

A per-variable encoder sees one variable, so it cannot tell a driver from a random anomaly of
the same shape; what tells them apart is what follows. With ``--driver_gate extreme`` a flag of
week ``j`` at a pixel is kept only if the predicted extreme probability at that pixel exceeds
the gate threshold in some week ``j - before .. j + weeks`` (``weeks`` defaults to
``delta_t - 1``: the weeks over which a flag can sit in the window of the extreme it drives;
``before`` to 0). A driver can also outlast its extreme's onset: the published generator's
drivers lie from 9 weeks before to 4 weeks after it, so ``--driver_gate_window val`` chooses the
window among :data:`WINDOW_BEFORE` weeks before and ``delta_t - 1`` or ``delta_t + 1`` after,
with the threshold. No ground truth is used at test time; the threshold is a probability, chosen
on the validation split by driver F1 (from :data:`GATE_GRID`, where 0 keeps every flag) or given
with ``--driver_gate_threshold``. Findings: docs/results/paper-size.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["GATE_GRID", "WINDOW_BEFORE", "GateSetting", "GateSpec", "ExtremeGate", "gate_spec", "followed_within"]

#: candidate thresholds of a gate chosen on the validation split; 0 keeps every flag (no gate)
GATE_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)

#: weeks before a flag that a window chosen on the validation split may reach back (``driver_gate_window val``)
WINDOW_BEFORE: tuple[int, ...] = (0, 2, 4)


@dataclass(frozen=True)
class GateSetting:
    """A chosen gate: a predicted extreme above ``threshold`` from ``before`` weeks before a flag to
    ``weeks`` after it keeps the flag."""

    before: int
    weeks: int
    threshold: float

    def as_record(self) -> dict[str, Any]:
        """The keys of ``drivers.gate`` in ``metrics_<split>.json``."""
        return {"threshold": self.threshold, "weeks": self.weeks, "weeks_before": self.before}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GateSetting:
        """From ``drivers.gate``; files written before the window existed have no ``weeks_before`` (0)."""
        return cls(int(record.get("weeks_before", 0)), int(record["weeks"]), float(record["threshold"]))

    def describe(self) -> str:
        span = f"within {self.weeks} weeks after" if self.before == 0 else \
            f"from {self.before} weeks before to {self.weeks} weeks after"
        return f"an extreme of probability > {self.threshold:g} {span} the flag"


@dataclass(frozen=True)
class GateSpec:
    """``weeks`` a flag may lead its extreme and ``before`` it may follow its onset; ``threshold`` None:
    choose it on the split by driver F1; ``windows`` (``(before, weeks)`` pairs): choose the window too."""

    weeks: int
    threshold: float | None = None
    before: int = 0
    windows: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.weeks < 0:
            raise ValueError(f"option 'driver_gate_weeks' is {self.weeks}; give 0 or more weeks")
        if self.before < 0:
            raise ValueError(f"option 'driver_gate_weeks_before' is {self.before}; give 0 or more weeks")
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"option 'driver_gate_threshold' is {self.threshold}; give a probability in [0, 1)")

    @property
    def fixed(self) -> GateSetting | None:
        """The one setting when nothing is left to choose, else None."""
        if self.threshold is None or self.windows is not None:
            return None
        return GateSetting(self.before, self.weeks, float(self.threshold))

    def candidates(self) -> list[GateSetting]:
        """Every setting to try, narrowest window and lowest threshold first (ties keep the first)."""
        thresholds = GATE_GRID if self.threshold is None else (float(self.threshold),)
        windows = self.windows if self.windows is not None else ((self.before, self.weeks),)
        return [GateSetting(b, w, t) for b, w in windows for t in thresholds]


def gate_spec(cfg: Any) -> GateSpec | None:
    """The gate the options ask for, or None (``driver_gate: none``)."""
    mode = getattr(cfg, "driver_gate", "none")
    if mode == "none":
        return None
    if mode != "extreme":
        raise ValueError(f"option 'driver_gate' is {mode!r} here; utils.run.resolve_gate makes auto extreme or none")
    weeks = cfg.driver_gate_weeks if cfg.driver_gate_weeks is not None else cfg.delta_t - 1
    windows = None
    if getattr(cfg, "driver_gate_window", "fixed") == "val":
        windows = tuple((b, a) for b in WINDOW_BEFORE for a in (cfg.delta_t - 1, cfg.delta_t + 1))
    return GateSpec(int(weeks), cfg.driver_gate_threshold, int(getattr(cfg, "driver_gate_weeks_before", 0)), windows)


def followed_within(extreme: np.ndarray, weeks: int, before: int = 0) -> np.ndarray:
    """bool [T, H, W]: ``extreme`` (bool, chronological) holds at the pixel in some week
    ``t - before .. t + weeks``."""
    out = extreme.copy()
    for d in range(1, weeks + 1):
        out[:-d] |= extreme[d:]
    for d in range(1, before + 1):
        out[d:] |= extreme[:-d]
    return out


class ExtremeGate:
    """Per-week extreme probabilities of a split (from each window's target week) and the gate they make.

    ``prob[j, h, w]`` is the probability of the window whose target (newest) week is split week ``j``;
    weeks that are no window's target stay at 0 and never open the gate.
    """

    def __init__(self, spec: GateSpec, t_first: int, n_time: int, height: int, width: int) -> None:
        self.spec, self.t_first = spec, int(t_first)
        self.prob = torch.zeros(n_time, height, width, dtype=torch.float32)
        self.seen = False

    def update(self, logits: torch.Tensor | None, timestep: torch.Tensor | Sequence[int]) -> None:
        """``logits`` [N, 1, H, W] of the windows whose newest weeks are ``timestep`` [N]."""
        if logits is None:
            raise ValueError("option 'driver_gate' is extreme, but this method predicts no extreme map to gate by; "
                             "use --driver_gate none")
        self.seen = True
        probs = torch.sigmoid(logits.detach().float())[:, 0].cpu()
        for n, t in enumerate(torch.as_tensor(timestep).reshape(-1).tolist()):
            j = int(t) - self.t_first
            if 0 <= j < self.prob.shape[0]:
                self.prob[j] = torch.maximum(self.prob[j], probs[n])

    def all_reduce(self) -> None:
        """Each window is seen on one rank and the rest hold 0 there: the maximum is a sum."""
        from utils.metrics import _all_reduce_sum

        self.prob = _all_reduce_sum(self.prob)

    def setting(self, setting: GateSetting | float) -> GateSetting:
        """``setting`` itself, or a bare threshold with the spec's window."""
        if isinstance(setting, GateSetting):
            return setting
        return GateSetting(self.spec.before, self.spec.weeks, float(setting))

    def mask(self, setting: GateSetting | float) -> np.ndarray:
        """bool [T, H, W]: some week of the window around ``j`` at the pixel has probability above the
        threshold (a bare threshold: the spec's window)."""
        s = self.setting(setting)
        return followed_within((self.prob > s.threshold).numpy(), s.weeks, s.before)

    def apply(self, flags: np.ndarray, setting: GateSetting | float) -> np.ndarray:
        """uint8 flags [V, T, H, W] with every flag outside the gate cleared."""
        return (flags.astype(bool) & self.mask(setting)[None]).astype(np.uint8)

    def choose(self, flags: np.ndarray, truth: np.ndarray, names: Sequence[str],
               valid: np.ndarray | None = None) -> tuple[GateSetting, dict[str, Any]]:
        """The candidate setting with the best pooled driver F1 (ties: the narrower window, then the lower
        threshold) and its scores (on the ``valid`` pixels only, when given)."""
        from utils.metrics import driver_scores

        best: tuple[GateSetting, dict[str, Any]] | None = None
        for setting in self.spec.candidates():
            scores = driver_scores(self.apply(flags, setting), truth, names, valid)
            if best is None or scores["pooled"]["f1"] > best[1]["pooled"]["f1"]:
                best = (setting, scores)
        assert best is not None
        return best
