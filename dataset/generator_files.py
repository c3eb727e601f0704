"""Writing a generated cube in the published benchmark format: the datacube, its climatology and statistics.

A folder that already holds a benchmark (its ``datacube_<exp>.nc``) is refused unless ``overwrite``:
runs trained on it would otherwise read other data without notice. Files of an interrupted write
(no datacube, which is written last) are replaced, with a note.
"""

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


class BenchmarkExists(ValueError):
    """The output folder holds a benchmark and ``overwrite`` (``--overwrite``) was not given."""


def output_files(out_dir: str | Path) -> list[Path]:
    """The four files :func:`write` puts into ``out_dir``, the datacube last."""
    out = Path(out_dir)
    exp = out.name
    if not exp:
        raise ValueError(f"--out {out_dir}: need a folder name (it names the experiment)")
    names = (f"coupling_matrix_{exp}.npy", f"statistic_{exp}.json", f"climatology_{exp}.nc", f"datacube_{exp}.nc")
    return [out / n for n in names]


def check_out_dir(out_dir: str | Path, overwrite: bool = False) -> None:
    """Refuse a folder that holds a benchmark unless ``overwrite``; called before generating, so a
    refused run costs nothing. An incomplete set (no datacube) is an interrupted write: replaced."""
    *parts, cube = output_files(out_dir)
    if cube.exists() and not overwrite:
        raise BenchmarkExists(f"option 'out': {Path(out_dir)} holds a benchmark ({cube.name}); "
                              "pass --overwrite to replace it")
    for path in (*parts, cube):
        if path.is_dir():
            raise BenchmarkExists(f"option 'out': {path} is a folder; remove it or choose another --out")


def write(cube: Cube, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the four files into ``out_dir`` (datacube last, so its presence means a complete set);
    an existing benchmark there raises :class:`BenchmarkExists` unless ``overwrite``."""
    check_out_dir(out_dir, overwrite)
    out = Path(out_dir)
    exp, p, names = out.name, cube.params, cube.params.names
    leftovers = [f.name for f in output_files(out)[:-1] if f.exists()]
    if leftovers and not (out / f"datacube_{exp}.nc").exists():
        print(f"[generate_synthetic] replacing {', '.join(leftovers)} in {out}: an interrupted write left them "
              "without a datacube")
    out.mkdir(parents=True, exist_ok=True)

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
