"""Writing a generated cube in the published benchmark format: the datacube, its climatology and statistics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import xarray as xr

from dataset.generator_params import CLIMATOLOGY_STATS, WEEKS, Cube, chunked_mean_std


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
