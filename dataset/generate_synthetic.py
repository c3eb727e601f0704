"""Synthetic benchmark generator (DATA.md sections 1 and 2).

    python -m dataset.generate_synthetic --preset small --out data/synthetic/small [--seed 0]

writes ``datacube_<exp>.nc``, ``climatology_<exp>.nc``, ``statistic_<exp>.json`` and
``coupling_matrix_<exp>.npy`` into ``--out`` (``<exp>`` = the folder's name), in the
published format. From Python: ``generate("tiny", out_dir, seed=0)``.

Order of generation (one seeded ``numpy.random.Generator`` for everything, so one
seed gives identical array bytes): extremes (shape union, then temporal halo classes
2 and 3), coupling matrix, bases and dependent-variable weights, random anomalies of
the independent variables (dependent ones take their union), drivers (class-1 voxels
shifted by each coupled offset), noise and values per variable, statistics over the
training period. Values: with ``theta = B (2^kb - 1) + 2^kn N + ks std(N)``, a normal
voxel is ``B + N``, a random anomaly ``B + theta`` and a driver ``B + s_v |theta|``.

Two regimes (``--regime``): ``scaled`` (presets ``small``, ``tiny``) uses the calibrated
shapes of ``synthetic_events`` (sizes shrink with the grid unless ``--event_scale`` is given,
coverage kept at any scale) and 52-week bases; ``published`` (preset ``paper-exp1``, with
``event_scale`` 1.0 and ``base_oscillations`` 46) reproduces what the published generator
makes with its exp-1 settings on the requested grid: its shape families and counts scaled
with the volume, events centred in the grid, its coupling-matrix draw (centre U{0..13},
half-length U{5..14} // 2), unnormalised dependent weights in the exp-1 pairs (normal /
quadratic, Laplace / linear, Laplace / linear), 3-D red noise for variable 1, and bases with
``base_oscillations`` periods over the whole cube (annual only at 2392 weeks).
``scripts/compare_generators.py`` compares the regime statistics of benchmark folders.

``--base_climatology FILE.nc`` uses real per-pixel weekly climatologies as the bases
of the independent variables (exp-2/3 style): each chosen variable's "mean" weekly
climatology (any dim whose labels include "mean" is reduced to it; one remaining dim
must have 52 weeks, the last two are space) is mapped to the requested grid by
nearest-neighbour index mapping (row ``i`` takes source row ``floor((i + 0.5) * Hs / H)``,
same for columns: a subsample when shrinking, a repeat when growing), NaNs (sea) are
filled with that week's spatial mean, and the field is standardised (zero mean, unit
std over weeks and pixels) so the noise levels of section 2 keep their meaning.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from dataset.synthetic_events import (
    ANOMALY_SETS,
    EXTREMES,
    NOISES,
    PUBLISHED_ANOMALY_SETS,
    PUBLISHED_EXTREMES,
    Grid,
    paint_published,
    paint_set,
)

__all__ = ["GeneratorParams", "PRESETS", "Cube", "build", "write", "generate", "mismatch", "var_name", "main"]

WEEKS = 52
N_OFFSETS, EXTREME_COLUMN = 14, 9  # coupling columns: offsets -9..+4 around the extreme week
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
    # paper field shrunk to this grid, DATA.md); e.g. 1.0: a window of a paper-size field
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
        if not 1 <= self.n_independent <= self.n_vars:
            raise ValueError(f"option --n_independent is {self.n_independent}; need 1 <= it <= --n_vars {self.n_vars}")
        bad = [v for v in self.var_drop if not 1 <= v <= self.n_vars]
        if bad:
            raise ValueError(f"option --var_drop has {bad}; variables are 1-based, 1..{self.n_vars}")
        for opt in ("times_train", "times_val", "times_test"):
            a, b = getattr(self, opt)
            if not 1 <= a <= b <= self.n_weeks:
                raise ValueError(f"option --{opt} = {a} {b}; need 1 <= start <= end <= --n_weeks {self.n_weeks}")
        if self.extreme_density <= 0:
            raise ValueError(f"option --extreme_density is {self.extreme_density}; must be > 0")
        if self.event_scale is not None and self.event_scale <= 0:
            raise ValueError(f"option --event_scale is {self.event_scale}; must be > 0 (or unset)")
        if self.regime not in REGIMES:
            raise ValueError(f"option --regime is {self.regime!r}; must be one of {', '.join(REGIMES)}")
        if self.base_oscillations is not None and self.base_oscillations <= 0:
            raise ValueError(f"option --base_oscillations is {self.base_oscillations}; must be > 0 (or 'annual')")
        for opt in ("kb", "kn", "ks", "signs"):
            if not getattr(self, opt):
                raise ValueError(f"option {opt} is empty")
        return self

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


# ----------------------------------------------------------------------------------
# extremes, coupling, drivers
# ----------------------------------------------------------------------------------


def halo_classes(ext1: np.ndarray) -> np.ndarray:
    """Class 1 where extreme, 2 one week before/after, 3 two weeks (temporal dilation only)."""
    prio = ext1 * np.uint8(3)  # priority 3/2/1 for classes 1/2/3, so max() resolves overlaps
    for lag, p in ((1, 2), (2, 1)):
        near = ext1 * np.uint8(p)
        np.maximum(prio[lag:], near[:-lag], out=prio[lag:])
        np.maximum(prio[:-lag], near[lag:], out=prio[:-lag])
    out = np.where(prio > 0, np.uint8(4) - prio, np.uint8(0)).astype(np.uint8)
    return out


def _ensure_split_extremes(ext1: np.ndarray, p: GeneratorParams, rng: np.random.Generator) -> int:
    """Add a short one-pixel extreme to any split without one where its drivers fit; returns how many."""
    added = 0
    for a, b in (p.times_train, p.times_val, p.times_test):
        lo, hi = a - 1, b - 1
        if hi - lo + 1 >= N_OFFSETS:  # room for every offset -9..+4 inside the split
            lo, hi = lo + EXTREME_COLUMN, hi - (N_OFFSETS - 1 - EXTREME_COLUMN)
        if ext1[lo : hi + 1].any():
            continue
        t = int(rng.integers(lo, hi + 1))
        y, x = int(rng.integers(0, p.height)), int(rng.integers(0, p.width))
        ext1[t : min(t + 2, hi + 1), y, x] = 1
        added += 1
    return added


def coupling_matrix(p: GeneratorParams, rng: np.random.Generator) -> np.ndarray:
    """uint8 [V, 14]: a contiguous block of ones per driver variable; dropped variables stay 0.

    "scaled": length U{2..14}, start uniform; "published": centre U{0..13}, half-length
    U{5..14} // 2, the block ``[centre - half, centre + half)`` clipped to the 14 columns.
    """
    cm = np.zeros((p.n_vars, N_OFFSETS), np.uint8)
    for v in range(p.n_vars):
        if v + 1 in p.var_drop:
            continue
        if p.regime == "published":
            centre, half = int(rng.integers(0, N_OFFSETS)), int(rng.integers(5, N_OFFSETS + 1)) // 2
            cm[v, max(centre - half, 0) : centre + half] = 1
            continue
        length = int(rng.integers(2, N_OFFSETS + 1))
        start = int(rng.integers(0, N_OFFSETS - length + 1))
        cm[v, start : start + length] = 1
    return cm


def driver_mask(ext1: np.ndarray, row: np.ndarray, out: np.ndarray) -> None:
    """Voxel (t + k - 9, y, x) is a driver for each class-1 voxel (t, y, x) and coupled column k."""
    T = ext1.shape[0]
    for k in np.flatnonzero(row).tolist():
        off = k - EXTREME_COLUMN
        if abs(off) >= T:
            continue
        if off < 0:
            np.bitwise_or(out[: T + off], ext1[-off:], out=out[: T + off])
        else:
            np.bitwise_or(out[off:], ext1[: T - off], out=out[off:])


# ----------------------------------------------------------------------------------
# bases
# ----------------------------------------------------------------------------------


def synthetic_base(j: int, height: int, n_weeks: int | None = None, oscillations: float | None = None):
    """Independent base j: sine / cosine (amplitude 3) or 0, plus row/H - 0.5.

    Period 52 weeks (52 rows, indexed by week of year) unless ``oscillations`` is given: then
    ``n_weeks`` rows with ``oscillations`` periods over them (phase ``2 pi t n / (T - 1)``).
    """
    kind = BASE_KINDS[j % len(BASE_KINDS)]
    if oscillations is None:
        phase = 2 * np.pi * np.arange(WEEKS) / WEEKS
    else:
        phase = 2 * np.pi * np.arange(n_weeks) * oscillations / max(n_weeks - 1, 1)
    signal = {"sine": np.sin, "cosine": np.cos}.get(kind, np.zeros_like)(phase) * BASE_AMPLITUDE
    grad = np.arange(height) / height - 0.5
    return (signal[:, None, None] + grad[None, :, None]).astype(np.float32), kind


def _label_index(coord: xr.DataArray, label: str) -> int | None:
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(coord.values).ravel()]
    return names.index(label) if label in names else None


def _nearest_index(n_src: int, n_dst: int) -> np.ndarray:
    return np.minimum(((np.arange(n_dst) + 0.5) * n_src / n_dst).astype(np.int64), n_src - 1)


def _weekly_mean_field(da: xr.DataArray, path: str) -> np.ndarray:
    """Reduce a climatology variable to its (52, y, x) weekly mean."""
    for dim in list(da.dims[:-2]):
        if dim in da.coords:
            i = _label_index(da[dim], "mean")
            if i is not None:
                da = da.isel({dim: i})
    weeks = [d for d in da.dims[:-2] if da.sizes[d] == WEEKS]
    if da.ndim != 3 or not weeks:
        raise ValueError(
            f"--base_climatology {path}: variable '{da.name}' has dims {da.dims} after selecting 'mean'; "
            f"expected (week[52], y, x)"
        )
    return np.asarray(da.transpose(weeks[0], *da.dims[-2:]).values, dtype=np.float64)


def load_climatology_bases(path: str, names: tuple[str, ...] | None, height: int, width: int) -> list[np.ndarray]:
    """Standardised weekly-mean climatologies on the requested grid (see the module docstring)."""
    if not Path(path).is_file():
        raise ValueError(f"--base_climatology {path}: file does not exist")
    with xr.open_dataset(path, decode_times=False) as ds:
        if not names:
            names = tuple(v for v in ds.data_vars if ds[v].ndim >= 3)
        missing = [n for n in names if n not in ds.data_vars]
        if missing or not names:
            raise ValueError(f"--base_variables {list(names)}: not in {path} (it has {sorted(map(str, ds.data_vars))})")
        out = []
        for n in names:
            arr = _weekly_mean_field(ds[n], path)
            arr = arr[:, _nearest_index(arr.shape[1], height)][:, :, _nearest_index(arr.shape[2], width)]
            for w in range(WEEKS):
                bad = ~np.isfinite(arr[w])
                if bad.any():
                    arr[w][bad] = np.nanmean(arr[w]) if (~bad).any() else 0.0
            std = arr.std()
            out.append(((arr - arr.mean()) / (std if std > 0 else 1.0)).astype(np.float32))
    return out


def make_bases(p: GeneratorParams, rng: np.random.Generator) -> tuple[list[np.ndarray], list[str]]:
    """Bases of all variables: independent ones, then noise-free weighted sums for dependent ones."""
    if p.base_climatology:
        ind = load_climatology_bases(p.base_climatology, p.base_variables, p.height, p.width)
        desc = [f"climatology:{n}" for n in (p.base_variables or [f"#{i}" for i in range(len(ind))])]
    else:
        osc = p.base_oscillations
        pairs = [synthetic_base(j, p.height, p.n_weeks, osc) for j in range(p.n_independent)]
        ind = [b for b, _ in pairs]
        desc = [k if osc is None else f"{k}:{osc:g} periods over the cube" for _, k in pairs]
    bases = list(ind)
    for d in range(p.n_vars - len(ind)):
        if p.regime == "published":  # the exp-1 config's weight/coupling pairs, weights not normalised
            dist, kind = _cycle(PUBLISHED_DEPENDENT, d)
            w = rng.standard_normal(len(ind)) if dist == "normal" else rng.laplace(0.0, 1.0, len(ind))
        else:
            dist = "normal" if rng.random() < 0.5 else "laplace"
            w = rng.standard_normal(len(ind)) if dist == "normal" else rng.laplace(0.0, 1.0, len(ind))
            w = w / max(np.linalg.norm(w), 1e-12)
            kind = "linear" if rng.random() < 0.5 else "quadratic"
        terms = ind if kind == "linear" else [(b.astype(np.float64) ** 2 - 1) / math.sqrt(2) for b in ind]
        bases.append(sum(wi * b for wi, b in zip(w.tolist(), terms)).astype(np.float32))
        desc.append(f"dependent:{dist}:{kind}:weights=" + ",".join(f"{x:.6f}" for x in w))
    return bases, desc


# ----------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------


def chunked_mean_std(a: np.ndarray) -> tuple[float, float]:
    """Mean and (population) std in float64 without a full-size float64 temporary."""
    n = a.size
    mean = sum(float(a[i : i + _CHUNK].sum(dtype=np.float64)) for i in range(0, a.shape[0], _CHUNK)) / n
    ss = sum(float(((a[i : i + _CHUNK].astype(np.float64) - mean) ** 2).sum()) for i in range(0, a.shape[0], _CHUNK))
    return mean, math.sqrt(ss / n)


def base_at(base: np.ndarray, flat_idx: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Base values at flat voxel indices of the (T, H, W) cube (row = t % rows: week of year for 52 rows)."""
    t, y, x = np.unravel_index(flat_idx, shape)
    period = base.shape[0]
    return np.broadcast_to(base, (period, shape[1], shape[2]))[t % period, y, x]


def make_values(
    noise: np.ndarray,
    base: np.ndarray,
    anomaly: np.ndarray,
    drivers: np.ndarray,
    k: tuple[float, float, float],
    sign: int,
) -> float:
    """Turn ``noise`` into the variable's values in place; returns std(N). ``k`` = (kb, kn, ks)."""
    kb, kn, ks = k
    shape = noise.shape
    std_n = chunked_mean_std(noise)[1]
    flat = noise.reshape(-1)
    idx_a, idx_d = np.flatnonzero(anomaly), np.flatnonzero(drivers)
    n_a, n_d = flat[idx_a], flat[idx_d]  # fancy indexing copies: noise before the base is added
    period = base.shape[0]
    for t0 in range(0, shape[0], period):
        t1 = min(t0 + period, shape[0])
        noise[t0:t1] += base[: t1 - t0]
    b_a, b_d = base_at(base, idx_a, shape), base_at(base, idx_d, shape)
    flat[idx_a] = 2.0**kb * b_a + 2.0**kn * n_a + ks * std_n
    theta = b_d * (2.0**kb - 1) + n_d * 2.0**kn + std_n * ks
    flat[idx_d] = b_d + sign * np.abs(theta)
    return std_n


# ----------------------------------------------------------------------------------
# the whole cube
# ----------------------------------------------------------------------------------


def _cycle(seq: tuple, i: int):
    return seq[i % len(seq)]


def _counts_str(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items())


def _lat_lon(p: GeneratorParams) -> tuple[np.ndarray, np.ndarray]:
    """A plain north-up 0.1-degree grid (no model uses the static inputs)."""
    lat = 60.0 - 0.1 * np.arange(p.height)
    lon = 0.1 * np.arange(p.width)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    return la.astype(np.float32), lo.astype(np.float32)


def _scale_note(p: GeneratorParams) -> str:
    if p.event_scale is None:
        return " (min(H, W) / 200)"
    return " (events centred in the grid)" if p.regime == "published" else " (window of a larger field)"


def identity_attrs(p: GeneratorParams) -> dict[str, str]:
    """The datacube attributes that say which settings made it (checked by ``mismatch``)."""
    scale = Grid(*p.shape, p.event_scale).space_scale
    return {
        "preset": p.preset,
        "seed": str(p.seed),
        "n_weeks": str(p.n_weeks),
        "height": str(p.height),
        "width": str(p.width),
        "n_vars": str(p.n_vars),
        "extreme_density": str(p.extreme_density),
        "event_scale": f"{scale:g}" + _scale_note(p),
        "regime": p.regime,
        "base_oscillations": "annual" if p.base_oscillations is None else f"{p.base_oscillations:g}",
    }


_IDENTITY_DEFAULTS = {"regime": "scaled", "base_oscillations": "annual"}  # files written before these options


def mismatch(out_dir: str | Path, params: GeneratorParams) -> str | None:
    """Why the benchmark in ``out_dir`` was not made with ``params`` (None when it was)."""
    path = Path(out_dir) / f"datacube_{Path(out_dir).name}.nc"
    with xr.open_dataset(path) as ds:
        found = dict(ds.attrs)
    if "event_scale" not in found:  # written before the option existed: always the shrunk field
        found["event_scale"] = identity_attrs(dataclasses.replace(params, event_scale=None))["event_scale"]
    for k, v in _IDENTITY_DEFAULTS.items():
        found.setdefault(k, v)
    diffs = [
        f"{k}: file has {found.get(k, '(absent)')!r}, wanted {v!r}"
        for k, v in identity_attrs(params.validate()).items()
        if str(found.get(k, "(absent)")) != v
    ]
    return f"{path} was generated with other settings ({'; '.join(diffs)})" if diffs else None


def build(params: GeneratorParams, keep_noise: bool = False) -> Cube:
    """Generate the benchmark in memory (see the module docstring for the order of draws)."""
    p = params.validate()
    rng = np.random.default_rng(p.seed)
    grid, shape, V = Grid(*p.shape, p.event_scale), p.shape, p.n_vars
    if p.base_climatology:
        n_ind = len(load_climatology_bases(p.base_climatology, p.base_variables, 1, 1))
        if n_ind > V:
            raise ValueError(f"--base_climatology gives {n_ind} independent variables but --n_vars is {V}")
        p = dataclasses.replace(p, n_independent=n_ind)

    published = p.regime == "published"
    ext1 = np.zeros(shape, np.uint8)
    if published:
        ext_counts = paint_published(ext1, PUBLISHED_EXTREMES, grid, p.extreme_density, rng)
    else:
        ext_counts = paint_set(ext1, EXTREMES, grid, p.extreme_density, rng)
    forced = _ensure_split_extremes(ext1, p, rng)
    extreme = halo_classes(ext1)
    coupling = coupling_matrix(p, rng)
    bases, base_desc = make_bases(p, rng)

    drivers = np.zeros((V, *shape), np.uint8)
    for v in range(V):
        driver_mask(ext1, coupling[v], drivers[v])
    del ext1

    anomaly = np.zeros((V, *shape), np.uint8)
    anom_desc = []
    for j in range(p.n_independent):
        sset = _cycle(PUBLISHED_ANOMALY_SETS if published else ANOMALY_SETS, j)
        paint = paint_published if published else paint_set
        anom_desc.append(f"{var_name(j + 1)}:set_{sset.name}:" + _counts_str(paint(anomaly[j], sset, grid, 1.0, rng)))
        if p.n_independent < V:
            np.bitwise_or(anomaly[p.n_independent], anomaly[j], out=anomaly[p.n_independent])
    for v in range(p.n_independent + 1, V):
        anomaly[v] = anomaly[p.n_independent]
    for v in range(V):  # a driver is never also a random anomaly
        anomaly[v] &= np.uint8(1) - drivers[v]

    values, stds, noises, noise_desc = [], [], [], []
    for v in range(V):
        ind_noise = PUBLISHED_INDEPENDENT_NOISE if published else INDEPENDENT_NOISE
        kind, sigma = _cycle(ind_noise, v) if v < p.n_independent else DEPENDENT_NOISE
        x = NOISES[kind](rng, shape, sigma)
        if keep_noise:
            noises.append(x.copy())
        k = (_cycle(p.kb, v), _cycle(p.kn, v), _cycle(p.ks, v))
        stds.append(make_values(x, bases[v], anomaly[v], drivers[v], k, int(_cycle(p.signs, v))))
        values.append(x)
        noise_desc.append(f"{var_name(v + 1)}:{kind}:{sigma}")

    lat, lon = _lat_lon(p)
    names = p.names
    attrs = {
        "title": "IDEE synthetic benchmark (spatio-temporal drivers of extremes)",
        "generator": "dataset.generate_synthetic",
        **identity_attrs(p),
        "n_independent": str(p.n_independent),
        "var_drop": " ".join(map(str, p.var_drop)),
        "driver_variables": " ".join(n for n, row in zip(names, coupling) if row.any()),
        "extreme_events": _counts_str(ext_counts) + f" forced_split_events={forced}",
        "extreme_shapes": repr(PUBLISHED_EXTREMES if published else EXTREMES),
        "anomaly_events": "; ".join(anom_desc),
        "anomaly_shapes": "; ".join(repr(s) for s in (PUBLISHED_ANOMALY_SETS if published else ANOMALY_SETS)),
        "dependent_anomalies": "union of the independent variables' random anomalies",
        "bases": "; ".join(f"{n}:{d}" for n, d in zip(names, base_desc)),
        "base_climatology": str(p.base_climatology or ""),
        "noise": "; ".join(noise_desc),
        "noise_std": " ".join(f"{s:.6f}" for s in stds),
        "kb": " ".join(str(_cycle(p.kb, v)) for v in range(V)),
        "kn": " ".join(str(_cycle(p.kn, v)) for v in range(V)),
        "ks": " ".join(str(_cycle(p.ks, v)) for v in range(V)),
        "signs": " ".join(str(_cycle(p.signs, v)) for v in range(V)),
        "values": "normal B+N; random anomaly B+theta; driver B+s|theta|; theta=B(2^kb-1)+2^kn N+ks std(N)",
        "coupling_offsets": "column k = offset k-9 weeks from the extreme (-9..+4)",
        "times_train": "{} {}".format(*p.times_train),
        "times_val": "{} {}".format(*p.times_val),
        "times_test": "{} {}".format(*p.times_test),
    }
    return Cube(
        p,
        values,
        anomaly,
        drivers,
        extreme,
        coupling,
        bases,
        stds,
        lat,
        lon,
        attrs,
        noises if keep_noise else None,
    )


# ----------------------------------------------------------------------------------
# statistics and files
# ----------------------------------------------------------------------------------


def climatology(x: np.ndarray, times: tuple[int, int]) -> np.ndarray:
    """float32 (5, 52, H, W): min, max, mean, median, std of each week of year over ``times`` (1-based)."""
    t = np.arange(times[0] - 1, times[1])
    out = np.full((len(CLIMATOLOGY_STATS), WEEKS, *x.shape[1:]), np.nan, np.float32)
    for w in range(WEEKS):
        sel = t[t % WEEKS == w]
        if len(sel) == 0:
            continue
        a = x[sel].astype(np.float64)
        for i, fn in enumerate((np.min, np.max, np.mean, np.median, np.std)):
            out[i, w] = fn(a, axis=0)
    return out


def global_stats(x: np.ndarray, times: tuple[int, int]) -> dict[str, float]:
    a = x[times[0] - 1 : times[1]]
    mean, std = chunked_mean_std(a)
    return {
        "min": float(a.min()),
        "max": float(a.max()),
        "mean": mean,
        "median": float(np.median(a)),
        "std": std,
    }


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write(cube: Cube, out_dir: str | Path) -> Path:
    """Write the four files into ``out_dir`` (datacube last, so its presence means a complete set)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exp, p, names = out.name, cube.params, cube.params.names
    if not exp:
        raise ValueError(f"--out {out_dir}: need a folder name (it names the experiment)")

    np.save(out / f"coupling_matrix_{exp}.npy", cube.coupling)
    stats = {s: {} for s in CLIMATOLOGY_STATS}
    clim_vars = {}
    for n, x in zip(names, cube.values):
        for s, val in global_stats(x, p.times_train).items():
            stats[s][n] = val
        clim_vars[n] = (("climatology", "time", "y", "x"), climatology(x, p.times_train))
    with open(out / f"statistic_{exp}.json", "w") as fh:
        json.dump(stats, fh, indent=1)
    clim = xr.Dataset(
        clim_vars,
        coords={"climatology": np.array(CLIMATOLOGY_STATS), "time": np.arange(1, WEEKS + 1, dtype=np.int32)},
        attrs={
            "description": "per-pixel statistics of each week of year over the training period",
            "times_train": cube.attrs["times_train"],
        },
    )
    enc = {n: {"_FillValue": None, "dtype": "float32"} for n in names}
    enc["time"] = {"dtype": "int32", "_FillValue": None}
    tmp = out / f".climatology_{exp}.nc.tmp"
    clim.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=enc)
    _replace(tmp, out / f"climatology_{exp}.nc")

    dims3 = ("time", "y", "x")
    data = {n: (dims3, x) for n, x in zip(names, cube.values)}
    data["anomaly"] = (("var", *dims3), cube.anomaly)
    data["anomaly_extreme"] = (("var", *dims3), cube.drivers)
    data["extreme"] = (dims3, cube.extreme)
    ds = xr.Dataset(
        data,
        coords={
            "time": np.arange(1, p.n_weeks + 1, dtype=np.int32),
            "var": np.array(names),
            "latitude": (("y", "x"), cube.latitude),
            "longitude": (("y", "x"), cube.longitude),
        },
        attrs=cube.attrs,
    )
    enc = {n: {"_FillValue": None, "dtype": "float32"} for n in [*names, "latitude", "longitude"]}
    enc.update({n: {"_FillValue": None, "dtype": "uint8"} for n in ("anomaly", "anomaly_extreme", "extreme")})
    enc["time"] = {"dtype": "int32", "_FillValue": None}
    tmp = out / f".datacube_{exp}.nc.tmp"
    ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=enc)
    _replace(tmp, out / f"datacube_{exp}.nc")
    return out


def fit_to_n_vars(params: GeneratorParams, overrides: dict) -> list[str]:
    """With ``n_vars`` given, restrict the preset's own variable choices to 1..n_vars (in place).

    The preset's ``var_drop`` keeps only variables that exist and its ``n_independent`` is
    capped at ``n_vars``; values given explicitly are left alone (``validate`` rejects them
    when out of range). Returns one note per change, for the user.
    """
    n = overrides.get("n_vars")
    if n is None or n < 1:
        return []
    notes = []
    if "var_drop" not in overrides:
        kept = tuple(v for v in params.var_drop if v <= n)
        if kept != params.var_drop:
            overrides["var_drop"] = kept
            notes.append(f"--n_vars {n}: the preset's var_drop {list(params.var_drop)} restricted to {list(kept)}")
    if "n_independent" not in overrides and params.n_independent > n:
        overrides["n_independent"] = n
        notes.append(f"--n_vars {n}: the preset's n_independent {params.n_independent} capped at {n}")
    return notes


def resolve(
    preset_or_params: str | GeneratorParams,
    seed: int | None = None,
    notes: list[str] | None = None,
    **overrides,
) -> GeneratorParams:
    """A preset name or params, with ``seed`` and field overrides applied (validated).

    The preset's dropped and independent variables follow ``n_vars`` (``fit_to_n_vars``);
    the notes of what changed are appended to ``notes``.
    """
    if isinstance(preset_or_params, str):
        if preset_or_params not in PRESETS:
            raise ValueError(f"--preset {preset_or_params!r} is not one of {', '.join(PRESETS)}")
        params = PRESETS[preset_or_params]
    else:
        params = preset_or_params
    if seed is not None:
        overrides["seed"] = seed
    changed = fit_to_n_vars(params, overrides)
    if notes is not None:
        notes.extend(changed)
    return dataclasses.replace(params, **overrides).validate()


def generate(
    preset_or_params: str | GeneratorParams, out_dir: str | Path, seed: int | None = None, **overrides
) -> Path:
    """Generate and write a benchmark; returns ``out_dir`` (``tiny`` takes about a second)."""
    return write(build(resolve(preset_or_params, seed, **overrides)), out_dir)


# ----------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------


_SHRINK = "grid"


def _event_scale(text: str) -> float | str:
    if text == _SHRINK:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor '{_SHRINK}'") from None


def _oscillations(text: str) -> float | str:
    if text == "annual":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'annual'") from None


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m dataset.generate_synthetic",
        description="Write a synthetic benchmark (datacube, climatology, statistics, coupling matrix) "
        "in the published format into --out (the folder name names the experiment).",
    )
    ap.add_argument("--preset", default="small", choices=list(PRESETS), help="starting point (default: small)")
    ap.add_argument("--out", required=True, help="output folder, e.g. data/synthetic/small")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 0)")
    ap.add_argument("--n_vars", type=int)
    ap.add_argument("--n_independent", type=int)
    ap.add_argument(
        "--var_drop",
        type=int,
        nargs="*",
        help="1-based variables that drive nothing (default: the preset's, restricted to 1..--n_vars)",
    )
    ap.add_argument("--height", type=int)
    ap.add_argument("--width", type=int)
    ap.add_argument("--n_weeks", type=int)
    for split in ("train", "val", "test"):
        ap.add_argument(f"--times_{split}", type=int, nargs=2, metavar=("FIRST", "LAST"), help="1-based, inclusive")
    ap.add_argument("--extreme_density", type=float, help="multiplies the extreme event counts")
    ap.add_argument(
        "--event_scale",
        type=_event_scale,
        help="event sizes relative to the paper's 200 px grid: 'grid' = min(height, width)/200, the paper's "
        "field shrunk to the grid (default of small and tiny); a number, e.g. 1.0 (default of paper-exp1), "
        "gives events that size",
    )
    ap.add_argument(
        "--regime",
        choices=REGIMES,
        help="'scaled' (small, tiny): our calibrated shapes, coverage kept at any event scale, an explicit "
        "--event_scale paints the grid as a window of a larger field; 'published' (paper-exp1): the published "
        "generator's exp-1 shapes, coupling, weights and 3-D red noise, events centred in the grid",
    )
    ap.add_argument(
        "--base_oscillations",
        type=_oscillations,
        help="'annual' (small, tiny): sine/cosine bases with a 52-week period; a number N (paper-exp1: 46): "
        "N periods over the whole cube, as the published generator (annual only at 2392 weeks)",
    )
    ap.add_argument("--base_climatology", help="netCDF of per-pixel weekly climatologies used as bases")
    ap.add_argument("--base_variables", nargs="+", help="variables of --base_climatology (default: all)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    preset, out, seed = args.pop("preset"), args.pop("out"), args.pop("seed")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if v is not None}
    if overrides.get("event_scale") == _SHRINK:
        overrides["event_scale"] = None
    if overrides.get("base_oscillations") == "annual":
        overrides["base_oscillations"] = None
    start = time.time()
    notes: list[str] = []
    try:
        params = resolve(preset, seed, notes, **overrides)
        for note in notes:
            print(f"[generate_synthetic] {note}")
        path = write(build(params), out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"[generate_synthetic] {params.preset} seed {params.seed}: {params.n_weeks} weeks x "
        f"{params.height} x {params.width}, {params.n_vars} variables -> {path} ({time.time() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
