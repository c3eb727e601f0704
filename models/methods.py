"""The methods IDEE trains: IDE and every baseline, registered by name.

A method is a ``torch.nn.Module`` that follows :class:`Method` and one registration::

    from models.methods import MethodSpec, register_method

    register_method(MethodSpec("mymethod", "My method", build=MyModel))

``--method mymethod`` then trains and tests it through every entry script and on every
dataset family; the table script, ``--help`` and the docs list it. Built-in methods live in
``models/build.py`` (IDE) and the ``Baselines_*/models.py`` modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from utils.registry import Registry

__all__ = [
    "Method",
    "ScoringMethod",
    "ScoreOutput",
    "ThresholdedScores",
    "MethodSpec",
    "METHODS",
    "register_method",
    "build_method",
    "method_spec",
]


@runtime_checkable
class Method(Protocol):
    """What the engine calls on a model.

    ``forward(x)`` returns an output with ``anomaly`` (uint8 driver flags ``[N, V, T, H, W]``)
    and ``logits`` (extreme logits ``[N, 1, H, W]`` or None); ``compute_loss(out, batch)``
    returns the loss and a dict of named float parts for the log. A loss without gradient
    (``requires_grad`` False) skips the optimiser step (non-gradient methods).

    Optional hooks, called when defined: ``fit_epoch_start(epoch)``, ``fit_epoch_end(epoch)``;
    ``ddp_find_unused_parameters = True`` for models with parameters a step may not use.
    """

    def forward(self, x: torch.Tensor) -> Any:
        """Driver flags (and extreme logits) of a batch ``x`` [N, V, C, T, H, W], newest week first."""

    def compute_loss(self, out: Any, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of ``out`` on ``batch`` and its named parts for the log."""


@runtime_checkable
class ScoringMethod(Method, Protocol):
    """A method whose flags are ``score > threshold``, with the threshold chosen after training.

    ``threshold`` is set by the test run from a rule (``driver_threshold_rule``) before the
    flags are scored. During training validation it is infinite and only extremes are scored;
    ``scores_drivers_in_validation(False)`` lets a method skip costly driver scores there.
    """

    threshold: float

    def scores_drivers_in_validation(self, on: bool) -> None:
        """Whether validation passes compute driver scores (off when they are costly)."""


class ScoreOutput:
    """Model-contract output of a method that scores drivers (high score = driver).

    ``anomaly`` = score > threshold (uint8); ``logits`` None unless the method also predicts
    extremes; ``extra`` holds method-specific tensors its loss needs (e.g. feature magnitudes).
    """

    def __init__(self, anomaly: torch.Tensor, score: torch.Tensor, logits: torch.Tensor | None = None,
                 **extra: Any) -> None:
        self.anomaly, self.score, self.logits, self.extra = anomaly, score, logits, extra

    @classmethod
    def from_scores(cls, score: torch.Tensor, threshold: float, logits: torch.Tensor | None = None,
                    **extra: Any) -> ScoreOutput:
        """Flags at ``score > threshold``: the one rule every scoring method shares."""
        return cls((score > threshold).to(torch.uint8), score, logits, **extra)


class ThresholdedScores:
    """Base of the built-in scoring methods: no flags until a threshold is set; validation skips nothing."""

    threshold: float = math.inf

    def scores_drivers_in_validation(self, on: bool) -> None:  # noqa: B027 - a hook most methods ignore
        """Called with False before training (validation scores extremes only); a no-op by default."""


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: its name, table label and builder, and what the runs need to know."""

    name: str
    label: str  # row label of the comparison table
    build: Callable[[Any], nn.Module]  # Config -> model
    scores: bool = False  # True: a ScoringMethod (threshold chosen after training)
    family: str = "IDE"  # group in the docs and the table (MIL, one-class, reconstruction, attribution)
    # options the comparison table fixes for this method, and defaults its command line may override
    table_options: Mapping[str, Any] = field(default_factory=dict)
    table_defaults: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line for --help and the docs
    # raises ValueError (naming the option) when a training run with these options cannot be meaningful
    check_training: Callable[[Any], None] | None = None


METHODS: Registry[MethodSpec] = Registry(
    "method",
    "method",
    builtins=(
        "models.build",
        "Baselines_MIL.models",
        "Baselines_OneClass.models",
        "Baselines_Reconstruction.models",
        "Baselines_Attribution.models",
    ),
)


def register_method(spec: MethodSpec, *, replace: bool = False) -> MethodSpec:
    """Make ``spec.name`` a valid ``--method`` everywhere (``replace``: a script's own variant)."""
    return METHODS.register(spec.name, spec, replace=replace)


def method_spec(name: str) -> MethodSpec:
    """The registered method ``name``; an unknown name is one line with the choices."""
    return METHODS.get(name)


def build_method(cfg: Any) -> nn.Module:
    """The model of ``cfg.method``, built from ``cfg``."""
    return method_spec(cfg.method).build(cfg)
