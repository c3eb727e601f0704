"""Writers of real-data trees in the published layouts (ERA5-Land + NOAA_CORDEX, CERRA + NOAA_CERRA).

Two levels:

- low-level writers (``write_weekly``, ``write_noaa``, ``write_masks``, ``write_climatology``,
  ``write_statistics``) that put given arrays into files exactly as the loaders expect them —
  tests build hand-made trees with known values from these;
- ``make_tree``: a plausible small (or full-size) tree. Values have physical ranges (t2m in K,
  tp in m, swvl1 in m3/m3, ...), a seasonal cycle and a south-north gradient; NaN over sea
  (ERA5-Land is land-only; CERRA has values everywhere and a fractional lsm); winter cold
  surface in the north; a no-vegetation patch; a few weeks with two NOAA files and one week
  per year without any. Droughts are planted: each event is a space-time blob in which VHI
  falls to ~15, preceded (``LEAD`` weeks) and accompanied by anomalies of the driver
  variables (e.g. low soil moisture, warm skin), so a model can learn something.

The weather noise is not per-pixel white noise (which no codec compresses and no real field
looks like): each variable's weekly anomaly is Gaussian-smoothed in space (``CORR_PIXELS``
pixels, about 300 km at 0.11 degrees) and AR(1) in time (``AR1``, week to week), with the
variance of ``VarSpec.noise``; the within-week spread and the NOAA indices' noise are smooth
in space too. So compressed sizes and codec speeds of converted stores (``dataset.to_zarr``)
are those of plausible fields.

All arrays are given and written in *file order*: rows south-to-north (latitude increasing),
as in the published files. The climatology file holds the generator's own per-pixel weekly
mean and std (what an infinitely long training period would give); the statistics JSON is
computed from the written weekly means (land pixels only).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import netCDF4
import numpy as np
from scipy import ndimage

N_WEEKS = 52
CORR_PIXELS = 3.0  # spatial correlation length (Gaussian sigma, pixels) of the weather noise
AR1 = 0.6  # week-to-week autocorrelation of the weather noise
LEAD = 2  # weeks by which planted driver anomalies precede the drought
ERA5_LAND_GRIDS = {
    "EUR-11": (412, 424),
    "AFR-11": (804, 776),
    "NAM-11": (520, 620),
    "SAM-11": (668, 584),
    "CAS-11": (400, 612),
    "EAS-11": (668, 812),
}
CERRA_GRID = (1069, 1069)
STATISTICS = ("min", "max", "mean", "std")  # deliberately not (mean, std) first: loaders index by label


@dataclass(frozen=True)
class VarSpec:
    """Generating model of one variable: mean + amp*season + grad*(lat-0.5) + noise*N + drought*profile."""

    mean: float
    amp: float  # seasonal amplitude (peak late July)
    grad: float  # south -> north difference
    noise: float  # week-to-week std
    spread: float  # typical within-week std (the 'std' statistic)
    drought: float  # anomaly in drought blobs (0: not a driver)
    lo: float = -math.inf
    hi: float = math.inf


ERA5_LAND_SPECS = {
    "d2m": VarSpec(278.0, 6.0, -8.0, 1.5, 2.0, -3.0),
    "t2m": VarSpec(283.0, 8.0, -10.0, 1.5, 3.0, 3.5),
    "fal": VarSpec(0.2, -0.03, 0.05, 0.01, 0.01, 0.0, 0.05, 0.9),
    "sp": VarSpec(98000.0, -300.0, 500.0, 400.0, 300.0, 0.0),
    "e": VarSpec(-0.0015, -0.001, 0.0005, 0.0003, 0.0004, 0.0006, -0.01, 0.001),
    "tp": VarSpec(0.0025, 0.0005, 0.0, 0.0008, 0.002, -0.0018, 0.0, 0.05),
    "skt": VarSpec(283.0, 9.0, -10.0, 2.0, 4.0, 4.5),
    "stl1": VarSpec(283.0, 7.0, -10.0, 1.2, 1.5, 3.0),
    "swvl1": VarSpec(0.3, -0.05, 0.0, 0.02, 0.01, -0.08, 0.01, 0.5),
}
CERRA_SPECS = {
    "al": VarSpec(20.0, -3.0, 5.0, 1.0, 1.0, 0.0, 2.0, 90.0),  # %
    "hcc": VarSpec(30.0, 0.0, 5.0, 10.0, 15.0, 0.0, 0.0, 100.0),  # %
    "lcc": VarSpec(40.0, -10.0, 10.0, 10.0, 15.0, -20.0, 0.0, 100.0),
    "liqvsm": VarSpec(0.25, -0.05, 0.02, 0.02, 0.01, -0.08, 0.01, 0.5),  # m3 m-3
    "mcc": VarSpec(30.0, -5.0, 5.0, 10.0, 15.0, -10.0, 0.0, 100.0),
    "msl": VarSpec(101300.0, 200.0, -500.0, 500.0, 400.0, 400.0),  # Pa
    "r2": VarSpec(75.0, -10.0, 8.0, 5.0, 8.0, -15.0, 5.0, 100.0),  # %
    "si10": VarSpec(4.0, -0.5, 1.0, 0.8, 1.5, 0.0, 0.0, 40.0),  # m s-1
    "skt": VarSpec(285.0, 9.0, -12.0, 2.0, 4.0, 4.5),  # K
    "sot": VarSpec(285.0, 7.0, -12.0, 1.2, 1.5, 3.0),  # K
    "sp": VarSpec(97000.0, -200.0, 500.0, 400.0, 300.0, 0.0),  # Pa
    "sr": VarSpec(0.3, 0.0, 0.1, 0.01, 0.01, 0.0, 0.0, 3.0),  # m
    "t2m": VarSpec(284.0, 8.0, -12.0, 1.5, 3.0, 3.5),  # K
    "tcc": VarSpec(60.0, -15.0, 10.0, 10.0, 20.0, -25.0, 0.0, 100.0),  # %
    "tciwv": VarSpec(18.0, 8.0, -6.0, 3.0, 4.0, -4.0, 0.0, 70.0),  # kg m-2
    "tp": VarSpec(2.5, -0.5, 0.5, 0.8, 2.0, -1.8, 0.0, 100.0),  # kg m-2 per day
    "vsw": VarSpec(0.28, -0.05, 0.02, 0.02, 0.01, -0.08, 0.01, 0.5),  # m3 m-3
    "wdir10": VarSpec(220.0, 0.0, 0.0, 40.0, 60.0, 0.0, 0.0, 360.0),  # degrees
}


# --------------------------------------------------------------------------------------
# low-level writers (file order: rows south-to-north)
# --------------------------------------------------------------------------------------


def _grid_coords(ds: netCDF4.Dataset, dims: tuple[str, str], shape: tuple[int, int], cerra: bool) -> None:
    """Row/col coordinates (increasing = south-to-north) and 2-D lat/lon."""
    h, w = shape
    ds.createDimension(dims[0], h)
    ds.createDimension(dims[1], w)
    if cerra:
        r = np.arange(h, dtype=np.float64) * 5500.0
        c = np.arange(w, dtype=np.float64) * 5500.0
        names = ("latitude", "longitude")
        lat = 30.0 + 40.0 * (np.arange(h) / max(h - 1, 1))[:, None] + 0.0 * c[None, :]
        lon = -25.0 + 70.0 * (np.arange(w) / max(w - 1, 1))[None, :] + 0.0 * r[:, None]
    else:
        r = (np.arange(h) - h / 2) * 0.11
        c = (np.arange(w) - w / 2) * 0.11
        names = ("lat", "lon")
        lat = 50.0 + r[:, None] + 0.02 * c[None, :]
        lon = 10.0 + c[None, :] / np.cos(np.deg2rad(lat))
    for name, values in ((dims[0], r), (dims[1], c)):
        v = ds.createVariable(name, "f8", (name,))
        v[:] = values
    for name, values in zip(names, (lat, lon)):
        v = ds.createVariable(name, "f4", dims)
        v.units = "degrees_north" if name.startswith("lat") else "degrees_east"
        v[:] = values.astype(np.float32)


def _strings(ds: netCDF4.Dataset, name: str, labels: tuple[str, ...] | list[str]) -> None:
    ds.createDimension(name, len(labels))
    v = ds.createVariable(name, str, (name,))
    v[:] = np.array(labels, dtype=object)


def write_weekly(
    path: Path,
    data: dict[str, np.ndarray],
    dims: tuple[str, str],
    statistics: tuple[str, ...] = STATISTICS,
    cerra: bool = False,
) -> None:
    """One weekly climate file: ``data[var]`` float [len(statistics), H, W] -> (statistic, *dims)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = next(iter(data.values())).shape[-2:]
    with netCDF4.Dataset(path, "w") as ds:
        _grid_coords(ds, dims, shape, cerra)
        _strings(ds, "statistic", statistics)
        for name, values in data.items():
            v = ds.createVariable(name, "f4", ("statistic", *dims), fill_value=np.float32(np.nan))
            v[:] = values.astype(np.float32)


def write_noaa(
    path: Path,
    vci: np.ndarray,
    tci: np.ndarray,
    cold: np.ndarray,
    dims: tuple[str, str],
    alpha: float = 0.5,
    cerra: bool = False,
) -> None:
    """One NOAA VH file: VCI, TCI, VHI (= alpha VCI + (1-alpha) TCI), mask_cold_surface."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        _grid_coords(ds, dims, vci.shape, cerra)
        for name, values in (("VCI", vci), ("TCI", tci), ("VHI", alpha * vci + (1 - alpha) * tci)):
            v = ds.createVariable(name, "f4", dims, fill_value=np.float32(np.nan))
            v[:] = values.astype(np.float32)
        v = ds.createVariable("mask_cold_surface", "u1", dims)
        v[:] = cold.astype(np.uint8)


def write_masks(path: Path, dims: tuple[str, str], cerra: bool = False, **masks: np.ndarray) -> None:
    """A static file (masks or CERRA static variables): each keyword a [H, W] array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = next(iter(masks.values())).shape
    with netCDF4.Dataset(path, "w") as ds:
        _grid_coords(ds, dims, shape, cerra)
        for name, values in masks.items():
            v = ds.createVariable(name, "f4", dims)
            v[:] = values.astype(np.float32)


def write_climatology(
    path: Path,
    dims: tuple[str, str],
    shape: tuple[int, int],
    variables: list[str],
    week_fn,
    cerra: bool = False,
) -> None:
    """Per var (climatology[mean,std], stat[mean,std], week 1..52, *dims); ``week_fn(var, week)``
    returns float [2 (clim mean, std), 2 (stat mean, std), H, W] (written week by week)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        _grid_coords(ds, dims, shape, cerra)
        _strings(ds, "climatology", ("mean", "std"))
        _strings(ds, "stat", ("mean", "std"))
        ds.createDimension("week", N_WEEKS)
        ds.createVariable("week", "i4", ("week",))[:] = np.arange(1, N_WEEKS + 1, dtype=np.int32)
        for name in variables:
            v = ds.createVariable(name, "f4", ("climatology", "stat", "week", *dims), fill_value=np.float32(np.nan))
            for w in range(1, N_WEEKS + 1):
                v[:, :, w - 1] = week_fn(name, w).astype(np.float32)


def write_statistics(path: Path, stats: dict[str, dict[str, float]]) -> None:
    """``{"min","max","mean","std"}: {var: value}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stats, indent=1))


def noaa_name(year: int, week: int, satellite: str = "npp") -> str:
    """NOAA STAR file name convention, ending in ``<YYYY><WWW>.VH.nc``."""
    return f"VHP.G04.C07.{satellite}.P{year:04d}{week:03d}.VH.nc"


# --------------------------------------------------------------------------------------
# the plausible tree
# --------------------------------------------------------------------------------------


@dataclass
class _Event:
    t0: int  # absolute week index of drought onset
    dur: int
    cy: float
    cx: float
    r: float


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float = CORR_PIXELS) -> np.ndarray:
    """Unit-variance Gaussian noise correlated over ``sigma`` pixels (float32, periodic edges).

    White noise filtered by a kernel ``k`` has variance ``sum(k^2)``; the field is divided by
    its square root (the kernel on this periodic grid, so small grids keep unit variance too)."""
    white = rng.standard_normal(shape).astype(np.float32)
    if sigma <= 0:
        return white
    return ndimage.gaussian_filter(white, sigma, mode="wrap") * _unit_scale(tuple(shape), sigma)


@functools.lru_cache(maxsize=8)
def _unit_scale(shape: tuple[int, int], sigma: float) -> np.float32:
    delta = np.zeros(shape, np.float64)
    delta[0, 0] = 1.0
    kernel = ndimage.gaussian_filter(delta, sigma, mode="wrap")
    return np.float32(1.0 / math.sqrt(float((kernel**2).sum())))


class _AR1:
    """Per-variable AR(1) anomaly fields: ``a_t = rho a_(t-1) + sqrt(1 - rho^2) e_t`` (unit variance)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int], rho: float = AR1) -> None:
        self.rng, self.shape, self.rho = rng, shape, rho
        self.state: dict[str, np.ndarray] = {}

    def step(self, name: str) -> np.ndarray:
        e = smooth_noise(self.rng, self.shape)
        prev = self.state.get(name)
        a = e if prev is None else self.rho * prev + math.sqrt(1 - self.rho**2) * e
        self.state[name] = a
        return a


def _season(week: int) -> float:
    return math.cos(2 * math.pi * (week - 29) / N_WEEKS)


class _World:
    """Static fields and drought events of one tree (all in file order)."""

    def __init__(self, shape: tuple[int, int], n_years: int, rng: np.random.Generator, cerra: bool) -> None:
        h, w = shape
        self.shape, self.rng, self.cerra = shape, rng, cerra
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.lat_frac = yy / max(h - 1, 1)  # 0 south .. 1 north
        # sea: a western strip plus a bay in the south-west
        sea = (xx < 0.15 * w) | (((yy - 0.2 * h) ** 2 + (xx - 0.3 * w) ** 2) < (0.12 * min(h, w)) ** 2)
        self.land_frac = np.where(sea, 0.0, 1.0).astype(np.float32)
        coast = (xx >= 0.15 * w) & (xx < 0.15 * w + 1)
        self.land_frac[coast] = 0.7 if cerra else 1.0
        self.land = self.land_frac > 0.5
        self.no_veg = (yy < 0.2 * h) & (xx > 0.75 * w)  # a desert patch in the south-east
        r = max(2.0, min(h, w) / 6)
        self.events: list[_Event] = []
        for _ in range(14 * n_years):
            self.events.append(
                _Event(
                    t0=int(rng.integers(0, n_years * N_WEEKS)),
                    dur=int(rng.integers(2, 8)),
                    cy=float(rng.uniform(0.25 * h, h)),
                    cx=float(rng.uniform(0.2 * w, w)),
                    r=float(rng.uniform(0.7, 1.3) * r),
                )
            )
        self.yy, self.xx = yy, xx

    def profile(self, t_abs: int, lead: int) -> np.ndarray:
        """Max bump of the events active at week ``t_abs`` (window starts ``lead`` weeks early)."""
        out = np.zeros(self.shape, np.float32)
        for e in self.events:
            if e.t0 - lead <= t_abs < e.t0 + e.dur:
                d2 = ((self.yy - e.cy) ** 2 + (self.xx - e.cx) ** 2) / e.r**2
                np.maximum(out, np.exp(-d2), out=out)
        return out * (self.land & ~self.no_veg)

    def cold(self, week: int) -> np.ndarray:
        if not (week <= 8 or week >= 47):
            return np.zeros(self.shape, bool)
        edge = 0.75 + 0.05 * self.rng.standard_normal()
        return self.lat_frac > edge

    def clim_mean(self, spec: VarSpec, week: int) -> np.ndarray:
        return spec.mean + spec.amp * _season(week) + spec.grad * (self.lat_frac - 0.5)


class TreeExists(ValueError):
    """``make_tree`` would replace files of an existing tree (the message names it and the way out)."""


def _year_folders(folder: Path) -> set[int]:
    return {int(d.name) for d in folder.iterdir() if d.is_dir() and d.name.isdigit() and len(d.name) == 4}


def _prepare_tree(root: Path, root_noaa: Path, years: list[int], overwrite: bool) -> None:
    """Refuse to write into an existing tree unless ``overwrite``; then only the requested years are
    rewritten, so a tree with other years is refused too (they would mix with the new data).

    A rerun with another seed must not silently replace the files earlier runs were trained on, and
    ``overwrite`` deletes no file of another year. Before the requested NOAA weeks are rewritten,
    their old files are removed: the old tree may have a second satellite where the new one has none."""
    existing = [f for f in (root, root_noaa) if f.is_dir() and any(f.iterdir())]
    if not existing:
        return
    if not overwrite:
        raise TreeExists(f"option 'out': {existing[0]} exists; pass --overwrite to replace it")
    others = sorted(set().union(*(_year_folders(f) for f in existing)) - set(years))
    if others:
        raise TreeExists(
            f"option 'out': {existing[0]} also holds years {' '.join(map(str, others))}, which --overwrite "
            "would keep beside the new data; remove them or add them to --years"
        )
    for y in years:
        folder = root_noaa / f"{y:04d}"
        if folder.is_dir():
            for f in folder.glob(f"VHP.*.P{y:04d}[0-9][0-9][0-9].VH.nc"):
                f.unlink()


def make_tree(
    dataset: str,
    out: Path,
    years: list[int],
    region: str = "EUR-11",
    shape: tuple[int, int] | None = None,
    full_grid: bool = False,
    seed: int = 0,
    variables: list[str] | None = None,
    statistics: tuple[str, ...] = STATISTICS,
    verbose: bool = False,
    overwrite: bool = False,
) -> dict[str, str]:
    """Write a plausible tree under ``out``; returns the config options that point the loader at it.

    An existing tree of the dataset (and region) under ``out`` raises :class:`TreeExists` unless
    ``overwrite`` (see ``_prepare_tree``)."""
    if dataset not in ("era5_land", "cerra"):
        raise ValueError(f"dataset must be era5_land or cerra, got {dataset!r}")
    cerra = dataset == "cerra"
    if not cerra and region not in ERA5_LAND_GRIDS:
        raise ValueError(f"region {region!r} is not one of {', '.join(ERA5_LAND_GRIDS)}")
    specs = CERRA_SPECS if cerra else ERA5_LAND_SPECS
    variables = list(variables or specs)
    unknown = [v for v in variables if v not in specs]
    if unknown:
        raise ValueError(f"variables {unknown} are not {dataset} variables ({', '.join(specs)})")
    for s in ("mean", "std"):
        if s not in statistics:
            raise ValueError(f"statistics {statistics} must include 'mean' and 'std'")
    if shape is None:
        shape = (CERRA_GRID if cerra else ERA5_LAND_GRIDS[region]) if full_grid else (32, 32)
    years, out = sorted(years), Path(out)
    rng = np.random.default_rng(seed)
    world = _World(shape, len(years), rng, cerra)
    if cerra:
        root, root_noaa = out / "CERRA", out / "NOAA_CERRA"
        dims, prefix = ("y", "x"), "CERRA"
        opts = {"dataset": "CERRA", "root_CERRA": str(root), "root_NOAA_CERRA": str(root_noaa)}
    else:
        root, root_noaa = out / "ERA5-Land" / region, out / "NOAA_CORDEX" / region
        dims, prefix = ("rlat", "rlon"), region
        opts = {
            "dataset": "ERA5_Land",
            "region": region,
            "root_ERA5_Land": str(out / "ERA5-Land"),
            "root_NOAA": str(out / "NOAA_CORDEX"),
        }
    opts.update({"x_max": str(shape[1]), "y_max": str(shape[0])})
    _prepare_tree(root, root_noaa, years, overwrite)
    land, no_veg = world.land, world.no_veg
    stat_pos = {s: i for i, s in enumerate(statistics)}
    weather = _AR1(rng, shape)
    sums = {v: np.zeros(4) for v in variables}  # n, sum, sumsq over land (weekly means)
    mins = {v: math.inf for v in variables}
    maxs = {v: -math.inf for v in variables}

    for yi, year in enumerate(years):
        no_noaa = {int(rng.integers(10, N_WEEKS + 1))}  # one week per year without NOAA data
        two_files = set(rng.choice(np.arange(1, N_WEEKS + 1), size=max(1, N_WEEKS // 7), replace=False).tolist())
        for week in range(1, N_WEEKS + 1):
            t_abs = yi * N_WEEKS + week - 1
            driver = world.profile(t_abs, LEAD)
            data = {}
            for name in variables:
                spec = specs[name]
                m = world.clim_mean(spec, week) + spec.noise * weather.step(name) + spec.drought * driver
                m = np.clip(m, spec.lo, spec.hi)
                sd = spec.spread * (1 + 0.2 * smooth_noise(rng, shape)) ** 2
                arr = np.empty((len(statistics), *shape), np.float32)
                for s, i in stat_pos.items():
                    arr[i] = {
                        "mean": m,
                        "std": sd,
                        "min": np.clip(m - 2 * sd, spec.lo, None),
                        "max": np.clip(m + 2 * sd, None, spec.hi),
                    }.get(s, m)
                if not cerra:
                    arr[:, ~land] = np.nan
                data[name] = arr
                lm = m[land]
                sums[name] += (lm.size, lm.sum(), (lm.astype(np.float64) ** 2).sum(), 0)
                mins[name], maxs[name] = min(mins[name], float(lm.min())), max(maxs[name], float(lm.max()))
            write_weekly(root / f"{year:04d}" / f"{year:04d}{week:03d}.nc", data, dims, statistics, cerra)
            if week in no_noaa:
                continue
            vhi = 55.0 + 10.0 * _season(week) + 6.0 * weather.step("VHI") - 42.0 * world.profile(t_abs, 0)
            vhi = np.where(no_veg, 12.0 + 3.0 * smooth_noise(rng, shape), vhi)
            cold = world.cold(week) & land
            vhi = np.where(cold, 20.0, vhi)  # cold surface: unreliable low values the masks must remove
            vhi = np.clip(vhi, 0.0, 100.0)
            vhi[~land] = np.nan
            sats = ("n19", "npp") if week in two_files else ("npp",)
            for k, sat in enumerate(sats):
                e = 0.0 if len(sats) == 1 else (1 if k == 0 else -1) * 3.0 * np.abs(smooth_noise(rng, shape))
                d = 5.0 * smooth_noise(rng, shape)
                v = np.clip(vhi + e + d, 0, 100)
                t = np.clip(vhi + e - d, 0, 100)
                write_noaa(root_noaa / f"{year:04d}" / noaa_name(year, week, sat), v, t, cold, dims, 0.5, cerra)
        if verbose:
            print(f"[sample tree] {dataset} {year} written", flush=True)

    # static files
    if cerra:
        write_masks(
            root / "CERRA_static_variables.nc",
            dims,
            True,
            lsm=world.land_frac,
            orog=np.where(land, 200 + 800 * world.lat_frac, 0.0),
        )
        write_masks(root_noaa / "masks.nc", dims, True, mask_no_vegetation=no_veg.astype(np.float32))
    else:
        write_masks(
            root_noaa / f"{prefix}_masks.nc",
            dims,
            False,
            lsm=land.astype(np.float32),
            mask_no_vegetation=no_veg.astype(np.float32),
        )

    def week_fn(name: str, week: int) -> np.ndarray:
        spec = specs[name]
        c = np.empty((2, 2, *shape), np.float32)
        c[0, 0] = world.clim_mean(spec, week)
        c[1, 0] = spec.noise
        c[0, 1] = spec.spread
        c[1, 1] = 0.4 * spec.spread
        if not cerra:
            c[:, :, ~land] = np.nan
        return c

    write_climatology(root / f"{prefix}_climatology_pixels_train.nc", dims, shape, variables, week_fn, cerra)
    stats: dict[str, dict[str, float]] = {"min": {}, "max": {}, "mean": {}, "std": {}}
    for name in variables:
        n, s, s2, _ = sums[name]
        mean = s / n
        stats["mean"][name] = mean
        stats["std"][name] = math.sqrt(max(s2 / n - mean**2, 0.0))
        stats["min"][name], stats["max"][name] = mins[name], maxs[name]
    write_statistics(root / f"{prefix}_statistic_train.json", stats)
    return opts
