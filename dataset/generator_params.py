"""Settings of the synthetic benchmark generator: constants, ``GeneratorParams``, the presets, the ``Cube``.

Kept apart from the generation code (``dataset.generate_synthetic``) so the bases
(``dataset.generator_bases``) and the files (``dataset.generator_files``) read the same
settings without importing the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

N_OFFSETS, EXTREME_COLUMN = 14, 9  # coupling columns: offsets -9..+4 around the extreme week
WEEKS = 52
EXP1_K = (0.35, 0.35, 0.9, 0.35, 0.35, 0.35)
EXP1_SIGNS = (1, 1, -1, -1, -1, -1)
INDEPENDENT_NOISE = (("red", 0.2), ("laplace", 0.08), ("white", 0.07))
DEPENDENT_NOISE = ("white", 0.065)
PUBLISHED_INDEPENDENT_NOISE = (("red3d", 0.2), ("laplace", 0.08), ("white", 0.07))
PUBLISHED_DEPENDENT = (("normal", "quadratic"), ("laplace", "linear"), ("laplace", "linear"))  # exp-1 config
REGIMES = ("scaled", "published")
BASE_KINDS = ("sine", "cosine", "constant")
BASE_AMPLITUDE = 3.0
CLIMATOLOGY_STATS = ("min", "max", "mean", "median", "std")
MIN_SPLIT_WEEKS = 2  # the smallest delta_t a model takes: a shorter split has no sample
_CHUNK = 64  # weeks per chunk of the float64 reductions (bounds their temporaries)


def var_name(i: int) -> str:
    """Published naming, 1-based: var_01..var_09, then var10, var11.. (no underscore)."""
    return f"var_{i:02d}" if i < 10 else f"var{i}"


@dataclass
class GeneratorParams:
    """Everything that defines a benchmark; ``extreme_density`` multiplies the extreme event counts."""

    n_weeks: int = 156
    height: int = 16
    width: int = 16
    n_vars: int = 6
    n_independent: int = 3
    var_drop: tuple[int, ...] = (1, 5)
    times_train: tuple[int, int] = (1, 104)
    times_val: tuple[int, int] = (105, 130)
    times_test: tuple[int, int] = (131, 156)
    extreme_density: float = 1.0
    # event sizes relative to the paper's 200-pixel grid; None: min(H, W) / 200 (the whole
    # paper field shrunk to this grid, docs/guides/synthetic.md); e.g. 1.0: a window of a paper-size field
    event_scale: float | None = None
    # "scaled": our calibrated shapes, coverage kept at any scale, window padding for an explicit
    # event_scale; "published": the published generator's exp-1 shape families, coupling-matrix
    # draw, dependent weights and 3-D red noise, events centred in the grid (see the module docstring)
    regime: str = "scaled"
    # None: sine/cosine bases with a 52-week period; a number: that many periods over the whole
    # cube, phase 2 pi t n / (T - 1) for t = 0..T-1 (the published generator's nOsc; exp 1: 46)
    base_oscillations: float | None = None
    kb: tuple[float, ...] = EXP1_K
    kn: tuple[float, ...] = EXP1_K
    ks: tuple[float, ...] = EXP1_K
    signs: tuple[int, ...] = EXP1_SIGNS
    base_climatology: str | None = None
    base_variables: tuple[str, ...] | None = None
    seed: int = 0
    preset: str = "custom"

    def validate(self) -> GeneratorParams:
        """Raise ValueError naming the option when the parameters cannot make a cube."""
        for opt in ("n_weeks", "height", "width", "n_vars"):
            if getattr(self, opt) < 1:
                raise ValueError(f"option --{opt} is {getattr(self, opt)}; must be >= 1")
        if self.seed < 0:
            raise ValueError(f"option --seed is {self.seed}; must be >= 0")
        if not 1 <= self.n_independent <= self.n_vars:
            raise ValueError(f"option --n_independent is {self.n_independent}; need 1 <= it <= --n_vars {self.n_vars}")
        bad = [v for v in self.var_drop if not 1 <= v <= self.n_vars]
        if bad:
            raise ValueError(f"option --var_drop has {bad}; variables are 1-based, 1..{self.n_vars}")
        self._validate_splits()
        self._validate_numbers()
        if self.regime not in REGIMES:
            raise ValueError(f"option --regime is {self.regime!r}; must be one of {', '.join(REGIMES)}")
        return self

    def _validate_splits(self) -> None:
        """Splits inside the cube, long enough for a window, and disjoint: the statistics and the
        climatology come from ``times_train`` only, so a shared week leaks into validation and test."""
        splits = ("times_train", "times_val", "times_test")
        for opt in splits:
            a, b = getattr(self, opt)
            if not 1 <= a <= b <= self.n_weeks:
                raise ValueError(
                    f"option --{opt} = {a} {b} does not fit --n_weeks {self.n_weeks}: need 1 <= first <= last "
                    f"<= {self.n_weeks} (with another --n_weeks, give all of --times_train, --times_val, --times_test)"
                )
            if b - a + 1 < MIN_SPLIT_WEEKS:
                raise ValueError(
                    f"option --{opt} = {a} {b} holds {b - a + 1} week; a sample needs at least "
                    f"delta_t = {MIN_SPLIT_WEEKS} weeks"
                )
        for i, first in enumerate(splits):
            for second in splits[i + 1 :]:
                (a0, b0), (a1, b1) = getattr(self, first), getattr(self, second)
                if max(a0, a1) <= min(b0, b1):
                    raise ValueError(
                        f"options --{first} = {a0} {b0} and --{second} = {a1} {b1} share weeks "
                        f"{max(a0, a1)}-{min(b0, b1)}; give disjoint splits (the statistics come from the "
                        "training weeks only)"
                    )

    def _validate_numbers(self) -> None:
        """Finite positive scales: a NaN or infinite one would write a cube of NaN or fail mid-generation."""
        if not (math.isfinite(self.extreme_density) and self.extreme_density > 0):
            raise ValueError(f"option --extreme_density is {self.extreme_density}; must be a finite number > 0")
        for opt, unset in (("event_scale", "grid"), ("base_oscillations", "annual")):
            val = getattr(self, opt)
            if val is not None and not (math.isfinite(val) and val > 0):
                raise ValueError(f"option --{opt} is {val}; must be a finite number > 0 (or '{unset}')")
        for opt in ("kb", "kn", "ks", "signs"):
            vals = getattr(self, opt)
            if not vals:
                raise ValueError(f"option {opt} is empty")
            if not all(math.isfinite(v) for v in vals):
                raise ValueError(f"option {opt} is {vals}; every value must be finite")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_weeks, self.height, self.width)

    @property
    def names(self) -> list[str]:
        return [var_name(i) for i in range(1, self.n_vars + 1)]
_SPLITS_PAPER = {"times_train": (1, 1768), "times_val": (1769, 2080), "times_test": (2081, 2392)}


PRESETS: dict[str, GeneratorParams] = {
    # The paper's exp 1 cube (46 years of weeks on 200 x 200 pixels) as the published generator
    # makes it, on any grid: its shape families at the paper's sizes (event_scale 1.0), counts
    # scaled with the volume, bases with 46 oscillations over the cube (annual at 2392 weeks only).
    "paper-exp1": GeneratorParams(
        n_weeks=2392,
        height=200,
        width=200,
        preset="paper-exp1",
        event_scale=1.0,
        regime="published",
        base_oscillations=46.0,
        **_SPLITS_PAPER,
    ),
    # Quick start data. Coverage is the paper's at any size (see synthetic_events), so no
    # densification is needed (factor 1.0): seed 0 has ~10 000 class-1 voxels in ~160 events,
    # 6 880 of them in the train split, extremes in >90 % of the weeks of every split.
    "small": GeneratorParams(
        n_weeks=728,
        height=32,
        width=32,
        preset="small",
        times_train=(1, 520),
        times_val=(521, 624),
        times_test=(625, 728),
    ),
    # Tests: 3x the paper's extreme density so each 26-week split holds several events.
    "tiny": GeneratorParams(
        n_weeks=156,
        height=16,
        width=16,
        extreme_density=3.0,
        preset="tiny",
        times_train=(1, 104),
        times_val=(105, 130),
        times_test=(131, 156),
    ),
}


@dataclass
class Cube:
    """A generated benchmark in memory (``noise`` only kept when asked for, for tests)."""

    params: GeneratorParams
    values: list[np.ndarray]  # per variable float32 (T, H, W)
    anomaly: np.ndarray  # uint8 (V, T, H, W): random anomalies (never drivers)
    drivers: np.ndarray  # uint8 (V, T, H, W): anomaly_extreme
    extreme: np.ndarray  # uint8 (T, H, W) in {0, 1, 2, 3}
    coupling: np.ndarray  # uint8 (V, 14)
    bases: list[np.ndarray]  # per variable float32 (P, H, 1 or W), row (t-1) % P; P = 52 or n_weeks
    noise_std: list[float]
    latitude: np.ndarray
    longitude: np.ndarray
    attrs: dict[str, str] = field(default_factory=dict)
    noise: list[np.ndarray] | None = None


def _cycle(seq: tuple, i: int):
    return seq[i % len(seq)]


def chunked_mean_std(a: np.ndarray) -> tuple[float, float]:
    """Mean and (population) std in float64 without a full-size float64 temporary."""
    n = a.size
    mean = sum(float(a[i : i + _CHUNK].sum(dtype=np.float64)) for i in range(0, a.shape[0], _CHUNK)) / n
    ss = sum(float(((a[i : i + _CHUNK].astype(np.float64) - mean) ** 2).sum()) for i in range(0, a.shape[0], _CHUNK))
    return mean, math.sqrt(ss / n)
