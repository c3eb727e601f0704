"""Hand-made tiny synthetic benchmark folders in the published format (docs/reference/file-formats.md).

Values follow simple formulas so that tests can compute expected samples by hand:

- grid H = 3, W = 4; weeks (``time`` labels, int32) 1..60; variables
  ``var_01``, ``var_02``, ``var10`` (no underscore from 10 on, as published)
- ``var_01[t, y, x] = t + y + x``; climatology median ``w + 52`` for week labels w <= 8,
  ``w`` otherwise; std ``1 + y`` (so weeks 53..60 normalise to (y + x) / (1 + y), weeks 1..8 to -10)
- ``var_02[t, y, x] = -0.05 t (1 + x)``, NaN at (t=55, y=1, x=2); median 0, std 2
  except std 0 at pixel (0, 0)
- ``var10[t, y, x] = 5.5 (y - x) + t / 100``, stored with dims (y, x, time); median 0, std 1
- ``extreme``: class 1 at (56, 0, 1) with halo 2 at weeks 55/57 and 3 at 54/58; class 1 at
  (50, 2, 3) with halo 2 at 49/51 and 3 at 48/52
- ``anomaly_extreme``: var_02 at (53, 0, 1) and (55, 0, 1); var10 at (54, 2, 0)
- JSON statistics (some values strings): median var_01 "2.0", var_02 -1, var10 "0";
  std var_01 "4", var_02 0, var10 0.5
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

VARIABLES = ["var_01", "var_02", "var10"]
N_TIMES, H, W = 60, 3, 4


@dataclass
class Tiny:
    """A written folder and the arrays in it (chronological, full grid)."""

    folder: Path
    values: dict[str, np.ndarray]  # var -> float32 [T, H, W]
    median: dict[str, np.ndarray]  # var -> float32 [52, H, W]
    std: dict[str, np.ndarray]
    anomaly_extreme: np.ndarray  # uint8 [V, T, H, W]
    extreme: np.ndarray  # uint8 [T, H, W]
    stats: dict
    time_labels: np.ndarray


def tiny_arrays() -> dict:
    """The formula arrays described in the module docstring."""
    t = np.arange(1, N_TIMES + 1, dtype=np.float64)[:, None, None]
    y = np.arange(H, dtype=np.float64)[None, :, None]
    x = np.arange(W, dtype=np.float64)[None, None, :]
    zeros = np.zeros((N_TIMES, H, W))
    values = {
        "var_01": (t + y + x + zeros).astype(np.float32),
        "var_02": (-0.05 * t * (1 + x) + zeros).astype(np.float32),
        "var10": (5.5 * (y - x) + t / 100 + zeros).astype(np.float32),
    }
    values["var_02"][55 - 1, 1, 2] = np.nan
    w = np.arange(1, 53, dtype=np.float64)[:, None, None]
    z52 = np.zeros((52, H, W))
    median = {
        "var_01": (w + 52 * (w <= 8) + z52).astype(np.float32),
        "var_02": z52.astype(np.float32),
        "var10": z52.astype(np.float32),
    }
    std = {
        "var_01": (1 + y + z52).astype(np.float32),
        "var_02": (2 + z52).astype(np.float32),
        "var10": (1 + z52).astype(np.float32),
    }
    std["var_02"][:, 0, 0] = 0
    extreme = np.zeros((N_TIMES, H, W), np.uint8)
    for (tt, yy, xx) in ((56, 0, 1), (50, 2, 3)):
        extreme[tt - 1, yy, xx] = 1
        extreme[tt - 2, yy, xx] = extreme[tt, yy, xx] = 2
        extreme[tt - 3, yy, xx] = extreme[tt + 1, yy, xx] = 3
    ae = np.zeros((len(VARIABLES), N_TIMES, H, W), np.uint8)
    ae[1, 53 - 1, 0, 1] = ae[1, 55 - 1, 0, 1] = 1
    ae[2, 54 - 1, 2, 0] = 1
    stats = {
        "min": {v: "-100" for v in VARIABLES},
        "max": {v: "100" for v in VARIABLES},
        "mean": {v: 0.0 for v in VARIABLES},
        "median": {"var_01": "2.0", "var_02": -1, "var10": "0"},
        "std": {"var_01": "4", "var_02": 0, "var10": 0.5},
    }
    return {"values": values, "median": median, "std": std, "extreme": extreme,
            "anomaly_extreme": ae, "stats": stats}


def write_benchmark(
    folder: Path,
    values: dict[str, np.ndarray],
    median: dict[str, np.ndarray],
    std: dict[str, np.ndarray],
    anomaly_extreme: np.ndarray,
    extreme: np.ndarray,
    stats: dict,
    dims: dict[str, tuple[str, ...]] | None = None,
    skip: tuple[str, ...] = (),
) -> Path:
    """Write the four files of ``folder`` (experiment name = folder name), like the published generator.

    ``dims`` overrides the stored dim order/names of a variable (its array is transposed
    from (time, y, x) accordingly; other names are renamed in place); ``skip`` names files
    not to write ("datacube", "climatology", "statistic", "coupling_matrix").
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    exp = folder.name
    names = list(values)
    T, h, w = next(iter(values.values())).shape
    dims = dims or {}
    data_vars = {}
    for name, arr in values.items():
        want = dims.get(name, ("time", "y", "x"))
        if set(want) == {"time", "y", "x"}:
            arr = np.transpose(arr, [("time", "y", "x").index(d) for d in want])
        data_vars[name] = (want, arr.astype(np.float32))
    data_vars["anomaly"] = (("var", "time", "y", "x"), np.zeros_like(anomaly_extreme))
    data_vars["anomaly_extreme"] = (("var", "time", "y", "x"), anomaly_extreme.astype(np.uint8))
    data_vars["extreme"] = (("time", "y", "x"), extreme.astype(np.uint8))
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = {
        "time": np.arange(1, T + 1, dtype=np.int32),
        "var": np.array(names),
        "latitude": (("y", "x"), (50.0 - yy).astype(np.float32)),
        "longitude": (("y", "x"), (10.0 + xx).astype(np.float32)),
    }
    cube = xr.Dataset(data_vars, coords=coords, attrs={"seed": "0", "note": "hand-made test cube"})
    if "datacube" not in skip:
        cube.to_netcdf(folder / f"datacube_{exp}.nc", format="NETCDF4")
    clim_vars = {}
    for name in names:
        block = np.zeros((5,) + median[name].shape, np.float32)
        block[3], block[4] = median[name], std[name]
        block[2] = median[name]
        clim_vars[name] = (("climatology", "time", "y", "x"), block)
    clim = xr.Dataset(
        clim_vars,
        coords={"climatology": ["min", "max", "mean", "median", "std"],
                "time": np.arange(1, 53, dtype=np.int32)},
    )
    if "climatology" not in skip:
        clim.to_netcdf(folder / f"climatology_{exp}.nc", format="NETCDF4")
    if "statistic" not in skip:
        (folder / f"statistic_{exp}.json").write_text(json.dumps(stats))
    if "coupling_matrix" not in skip:
        cm = np.zeros((len(names), 14), np.uint8)
        cm[1:, 7:10] = 1
        np.save(folder / f"coupling_matrix_{exp}.npy", cm)
    return folder


def make_tiny(parent: Path, exp: str = "tiny", **kwargs) -> Tiny:
    """Write the formula benchmark into ``parent/exp``; kwargs go to :func:`write_benchmark`."""
    a = tiny_arrays()
    dims = {"var10": ("y", "x", "time")}
    dims.update(kwargs.pop("dims", {}))
    folder = write_benchmark(Path(parent) / exp, dims=dims, **a, **kwargs)
    return Tiny(folder=folder, time_labels=np.arange(1, N_TIMES + 1), **a)
