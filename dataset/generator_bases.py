"""Base signals of the generated variables: sine / cosine / constant cycles or real weekly climatologies."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from dataset.generator_params import BASE_AMPLITUDE, BASE_KINDS, PUBLISHED_DEPENDENT, WEEKS, GeneratorParams, _cycle


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
