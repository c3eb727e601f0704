"""A small daily datacube in a layout of none of the published trees, for trying ``train_datacube.py``.

Three fields with a seasonal cycle and noise correlated in space (Gaussian filter) and time
(AR(1)): ``t2m_daily`` (K), ``precip`` (mm/day, non-negative) and ``soil_water`` (m3/m3). The
target is a continuous vegetation index ``veg_index`` (0-100) that falls when the soil water of
the previous four weeks was low and the temperature high, so the drivers are known by
construction (a threshold rule such as ``--target_below 30`` turns it into extremes). Latitude
runs north to south, time is a date axis named ``time``, and a land mask ``land`` marks valid
pixels. Written as a zarr store or a netCDF file; an existing one is refused unless ``overwrite``
(and then only a zarr store or a file is replaced, never an ordinary folder).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

__all__ = ["make_datacube"]


def _field(rng: np.random.Generator, n_days: int, shape: tuple[int, int], sigma: float, rho: float) -> np.ndarray:
    """Unit-variance noise, smooth in space (``sigma`` pixels) and AR(1) in time (``rho`` per day)."""
    out = np.empty((n_days, *shape), np.float32)
    prev = np.zeros(shape, np.float32)
    for t in range(n_days):
        white = ndimage.gaussian_filter(rng.standard_normal(shape), sigma).astype(np.float32)
        white /= white.std() + 1e-9
        prev = rho * prev + np.sqrt(1 - rho**2) * white
        out[t] = prev
    return out


def make_datacube(out: str | Path, years: list[int], shape: tuple[int, int] = (24, 24), seed: int = 0,
                  fmt: str = "zarr", overwrite: bool = False) -> dict[str, str]:
    """Write the cube to ``out`` (a ``.zarr`` store or a ``.nc`` file); returns the train/test options.

    An existing ``out`` raises :class:`dataset.to_zarr.StoreExists` (checked first, so nothing is
    generated in vain) unless ``overwrite``: a cube regenerated with another seed must not silently
    replace the one earlier runs were trained on."""
    from dataset.to_zarr import check_out, remove_out

    out = Path(out)
    check_out(out, overwrite, store=fmt == "zarr")
    rng = np.random.default_rng(seed)
    days = pd.date_range(f"{min(years)}-01-01", f"{max(years)}-12-31", freq="D")
    n = len(days)
    season = np.sin(2 * np.pi * (days.dayofyear.to_numpy() - 100) / 365.25).astype(np.float32)[:, None, None]
    temp_anom = _field(rng, n, shape, 3.0, 0.9)
    water_anom = _field(rng, n, shape, 4.0, 0.97)
    t2m = 285.0 + 10.0 * season + 3.0 * temp_anom
    precip = np.maximum(0.0, 2.0 + 3.0 * _field(rng, n, shape, 2.0, 0.3) + 1.5 * water_anom).astype(np.float32)
    soil = (0.30 + 0.05 * season + 0.06 * water_anom).astype(np.float32)
    # the index reacts to the last 28 days of dry soil and heat, plus its own noise
    stress = ndimage.uniform_filter1d(-water_anom + 0.5 * temp_anom, size=28, axis=0, origin=13)
    veg = np.clip(60.0 - 18.0 * stress + 6.0 * _field(rng, n, shape, 2.0, 0.8), 0.0, 100.0).astype(np.float32)
    lat = np.linspace(52.0, 40.0, shape[0])  # north to south
    lon = np.linspace(-5.0, 10.0, shape[1])
    land = np.ones(shape, np.int8)
    land[:, :2] = 0  # a strip of sea in the west
    dims = ("time", "lat", "lon")
    ds = xr.Dataset(
        {"t2m_daily": (dims, t2m, {"units": "K"}), "precip": (dims, precip, {"units": "mm day-1"}),
         "soil_water": (dims, soil, {"units": "m3 m-3"}), "veg_index": (dims, veg, {"units": "1"}),
         "land": (("lat", "lon"), land)},
        coords={"time": days, "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"})},
        attrs={"title": "IDEE sample datacube (daily, synthetic)", "Conventions": "CF-1.8"},
    )
    remove_out(out, overwrite, store=fmt == "zarr")
    if fmt == "zarr":
        with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is outside its spec
            warnings.filterwarnings("ignore", message="Consolidated metadata")
            ds.to_zarr(out, mode="w-", consolidated=True)  # one read of the metadata when opened
    else:
        ds.to_netcdf(out)
    ys = sorted(years)
    train_end = ys[-3] if len(ys) >= 3 else ys[0]
    return {
        "data": str(out), "variables": "t2m_daily precip soil_water", "target": "veg_index", "target_below": "30",
        "mask": "land", "step": "7D", "period_train": f"{ys[0]}-01-01 {train_end}-12-31",
        "period_val": f"{ys[-2]}-01-01 {ys[-2]}-12-31", "period_test": f"{ys[-1]}-01-01 {ys[-1]}-12-31",
    }
