"""Synthetic benchmark generator (docs/guides/synthetic.md; files: docs/reference/file-formats.md).

    python -m dataset.generate_synthetic --preset small --out data/synthetic/small [--seed 0]

writes ``datacube_<exp>.nc``, ``climatology_<exp>.nc``, ``statistic_<exp>.json`` and
``coupling_matrix_<exp>.npy`` into ``--out`` (``<exp>`` = the folder's name), in the
published format. From Python: ``generate("tiny", out_dir, seed=0)``. A folder that already holds
a benchmark is refused unless ``--overwrite`` (``overwrite=True``): runs trained on it would
otherwise read other data without notice.

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
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

from dataset.generator_bases import load_climatology_bases, make_bases
from dataset.generator_files import BenchmarkExists, check_out_dir, write
from dataset.generator_params import (
    DEPENDENT_NOISE,
    EXTREME_COLUMN,
    INDEPENDENT_NOISE,
    N_OFFSETS,
    PRESETS,
    PUBLISHED_INDEPENDENT_NOISE,
    REGIMES,
    Cube,
    GeneratorParams,
    _cycle,
    chunked_mean_std,
    var_name,
)
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

__all__ = [
    "GeneratorParams", "PRESETS", "Cube", "BenchmarkExists", "build", "write", "generate", "mismatch", "var_name",
    "main",
]


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


# ----------------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------------


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
    preset_or_params: str | GeneratorParams,
    out_dir: str | Path,
    seed: int | None = None,
    *,
    overwrite: bool = False,
    **overrides,
) -> Path:
    """Generate and write a benchmark; returns ``out_dir`` (``tiny`` takes about a second).

    A folder holding a benchmark raises :class:`BenchmarkExists` before anything is generated,
    unless ``overwrite``."""
    params = resolve(preset_or_params, seed, **overrides)
    check_out_dir(out_dir, overwrite)
    return write(build(params), out_dir, overwrite)


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
    ap.add_argument(
        "--overwrite", action="store_true", help="replace the benchmark in an --out that already holds one"
    )
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
    preset, out, seed, overwrite = args.pop("preset"), args.pop("out"), args.pop("seed"), args.pop("overwrite")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if v is not None}
    if overrides.get("event_scale") == _SHRINK:
        overrides["event_scale"] = None
    if overrides.get("base_oscillations") == "annual":
        overrides["base_oscillations"] = None
    start = time.time()
    notes: list[str] = []
    try:
        params = resolve(preset, seed, notes, **overrides)
        check_out_dir(out, overwrite)  # before the (for large presets, minutes of) generation
        for note in notes:
            print(f"[generate_synthetic] {note}")
        path = write(build(params), out, overwrite)
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
