"""Your own datacube: any xarray-openable source of gridded fields and an extreme mask or index.

The source is one netCDF file, a glob of files, or a zarr store (``--data``). Dimensions are
found from CF attributes or the usual names (time / valid_time, lat / latitude / rlat / y,
lon / longitude / rlon / x, via cf-xarray); latitude may run either way and the samples are
north-up (row 0 = the northernmost row). Fields are aggregated to ``--step`` with xarray's
resample (``--statistics mean [std]``: one input channel each), the target is a 0/1 variable
(``--target``) or a threshold rule on a continuous index (``--target_below`` /
``--target_above``, applied per source step, then "any" over the step), and the inputs are
normalised by a per-pixel climatology of the step of the year (median and standard deviation)
computed from the training period only.

Samples are the sample dict of every dataset (docs/design/architecture.md): ``x`` [V, C, T, H, W]
newest-first, ``mask_extreme`` (target at the newest step), ``mask_extreme_loss`` (target in
any step of the window), ``mask_valid`` (``--mask``), ``mask_anomaly`` (``--truth_drivers``)
and ``timestep`` (1-based index of the newest step on the cube's aggregated time axis).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

__all__ = ["DatacubeDataset", "open_source", "find_dims"]

_TIME = ("time", "valid_time", "date", "t")
_LAT = ("lat", "latitude", "rlat", "y", "nav_lat")
_LON = ("lon", "longitude", "rlon", "x", "nav_lon")


def open_source(data: str) -> xr.Dataset:
    """``data``: a netCDF file, a glob of files (combined by coordinates) or a zarr store."""
    path = Path(data)
    if path.is_dir() and (path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zmetadata").is_file()):
        return xr.open_zarr(path, decode_timedelta=False)
    if any(ch in data for ch in "*?["):
        files = sorted(glob.glob(data))
        if not files:
            raise FileNotFoundError(f"option 'data': no file matches {data}")
        return xr.open_mfdataset(files, combine="by_coords", decode_timedelta=False)
    if not path.exists():
        raise FileNotFoundError(f"option 'data': {data} does not exist")
    if path.is_dir():
        raise ValueError(f"option 'data': {data} is a folder but not a zarr store; pass a file, a glob or a store")
    return xr.open_dataset(path, decode_timedelta=False)


def find_dims(ds: xr.Dataset, data: str) -> tuple[str, str, str]:
    """(time, latitude, longitude) dimension names, from CF attributes first, then the usual names."""
    import cf_xarray  # noqa: F401 - registers the .cf accessor

    found: dict[str, str] = {}
    try:
        axes = ds.cf.axes
        coords = ds.cf.coordinates
    except Exception:  # noqa: BLE001 - an unusual file: fall back to the names
        axes, coords = {}, {}
    for key, cf_names, names in (("time", axes.get("T", []) + coords.get("time", []), _TIME),
                                 ("lat", axes.get("Y", []) + coords.get("latitude", []), _LAT),
                                 ("lon", axes.get("X", []) + coords.get("longitude", []), _LON)):
        dims = [d for d in cf_names if d in ds.dims] + [d for d in names if d in ds.dims]
        if not dims:
            raise ValueError(
                f"option 'data': {data} has no {key} dimension (dims {', '.join(map(str, ds.dims))}); "
                f"name it one of {', '.join(names)} or give it CF attributes"
            )
        found[key] = dims[0]
    return found["time"], found["lat"], found["lon"]


def _periods_per_year(step: pd.Timedelta) -> int:
    return max(1, int(round(pd.Timedelta(days=365.25) / step)))


def step_of_year(times: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """0-based position of each time within its year in units of ``step`` (the climatology key)."""
    n = _periods_per_year(step)
    frac = (times.dayofyear.to_numpy() - 1 + times.hour.to_numpy() / 24.0) / 365.25
    return np.minimum((frac * n).astype(np.int64), n - 1)


class DatacubeDataset(Dataset):
    """One split of a datacube: the aggregated fields, labels and (optional) true drivers in memory."""

    def __init__(self, cfg: Any, split: str, *, augment: bool = False,
                 climatology: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        if not cfg.data:
            raise ValueError("option 'data' is not set: pass --data PATH (a netCDF file, a glob or a zarr store)")
        if not cfg.target:
            raise ValueError("option 'target' is not set: pass --target NAME (a 0/1 extreme variable or an index)")
        self.split, self.delta_t, self.augment = split, int(cfg.delta_t), bool(augment)
        self.variables = list(cfg.variables)
        ds = open_source(cfg.data)
        tdim, ydim, xdim = find_dims(ds, cfg.data)
        wanted = [*self.variables, cfg.target, *([cfg.mask] if cfg.mask else []),
                  *([cfg.truth_drivers] if cfg.truth_drivers else [])]
        missing = [v for v in wanted if v not in ds.data_vars]
        if missing:
            raise ValueError(f"option 'data': {cfg.data} has no variable {', '.join(missing)}; "
                             f"it has {', '.join(map(str, ds.data_vars))}")
        ds = self._box(ds, cfg, ydim, xdim)
        self.source_step = self._source_step(ds, tdim, cfg.data)
        step = pd.Timedelta(cfg.step) if cfg.step else self.source_step
        fields, target, truth = self._aggregate(ds, cfg, tdim, step)
        times = pd.DatetimeIndex(fields[tdim].values)
        self.step = step
        start, end = (pd.Timestamp(p) for p in getattr(cfg, f"period_{split}"))
        sel = np.nonzero((times >= start) & (times <= end))[0]
        if sel.size < self.delta_t:
            raise ValueError(
                f"option 'period_{split}' = {start.date()} .. {end.date()} holds {sel.size} steps of {step} in "
                f"{cfg.data} (data {times[0].date()} .. {times[-1].date()}); a window needs delta_t = {self.delta_t}"
            )
        tsl = slice(int(sel[0]), int(sel[-1]) + 1)
        self.times = times[tsl]
        self.time_labels = np.arange(sel[0] + 1, sel[-1] + 2, dtype=np.int64)  # 1-based on the whole axis
        order = [tdim, ydim, xdim]
        self._x = np.stack([np.stack([fields[f"{v}__{s}"].transpose(*order).values[tsl] for s in cfg.statistics])
                            for v in self.variables]).astype(np.float32)  # [V, C, T, H, W]
        self._target = target.transpose(*order).values[tsl].astype(np.uint8)
        self._valid = None
        if cfg.mask:
            m = ds[cfg.mask]
            m = m.isel({tdim: 0}) if tdim in m.dims else m
            self._valid = (np.nan_to_num(m.transpose(ydim, xdim).values) > 0.5).astype(np.float32)
        self._truth = None
        if truth is not None:
            self._truth = truth.transpose("variable", *order).values[:, tsl].astype(np.uint8)
        h, w = self._x.shape[-2:]
        lat, lon = np.asarray(ds[ydim].values), np.asarray(ds[xdim].values)
        self.latitude = np.broadcast_to(lat[:, None], (h, w)) if lat.ndim == 1 else lat
        self.longitude = np.broadcast_to(lon[None, :], (h, w)) if lon.ndim == 1 else lon
        self.y, self.x = np.arange(h), np.arange(w)
        self.grid_shape = (h, w)
        if not cfg.is_norm:  # raw values (NaN filled), e.g. for data normalised upstream
            self._x = np.nan_to_num(self._x, nan=cfg.nan_fill)
            return
        self._x_raw = self._x  # kept only while the climatology needs it
        self.climatology = climatology or self.climatology_of(cfg)
        self._normalise(self.climatology, cfg)

    @staticmethod
    def check_period(cfg: Any, split: str) -> None:
        """Raise the loader's error for ``period_<split>`` without reading any field (only the time axis)."""
        ds = open_source(cfg.data)
        tdim, _, _ = find_dims(ds, cfg.data)
        times = ds[tdim]
        source_step = DatacubeDataset._source_step(ds, tdim, cfg.data)
        step = pd.Timedelta(cfg.step) if cfg.step else source_step
        if step != source_step:
            times = xr.ones_like(times, dtype=np.int8).resample({tdim: step}).max()[tdim]
        times = pd.DatetimeIndex(times.values)
        start, end = (pd.Timestamp(p) for p in getattr(cfg, f"period_{split}"))
        n = int(((times >= start) & (times <= end)).sum())
        if n < int(cfg.delta_t):
            raise ValueError(
                f"option 'period_{split}' = {start.date()} .. {end.date()} holds {n} steps of {step} in "
                f"{cfg.data} (data {times[0].date()} .. {times[-1].date()}); a window needs delta_t = {cfg.delta_t}"
            )

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _box(ds: xr.Dataset, cfg: Any, ydim: str, xdim: str) -> xr.Dataset:
        """Select ``lat_min..lat_max`` / ``lon_min..lon_max`` and order the rows north to south."""
        lat = ds[ydim]
        if cfg.lat_min is not None or cfg.lat_max is not None:
            lo = -np.inf if cfg.lat_min is None else cfg.lat_min
            hi = np.inf if cfg.lat_max is None else cfg.lat_max
            ds = ds.isel({ydim: np.nonzero((lat.values >= lo) & (lat.values <= hi))[0]})
        lon = ds[xdim]
        if cfg.lon_min is not None or cfg.lon_max is not None:
            lo = -np.inf if cfg.lon_min is None else cfg.lon_min
            hi = np.inf if cfg.lon_max is None else cfg.lon_max
            ds = ds.isel({xdim: np.nonzero((lon.values >= lo) & (lon.values <= hi))[0]})
        if ds.sizes[ydim] == 0 or ds.sizes[xdim] == 0:
            raise ValueError(
                f"options 'lat_min'..'lon_max': the box holds no pixel of {cfg.data} (its latitude runs "
                f"{float(lat.min())} .. {float(lat.max())}); widen the box"
            )
        if ds.sizes[ydim] > 1 and float(ds[ydim][0]) < float(ds[ydim][-1]):
            ds = ds.isel({ydim: slice(None, None, -1)})  # north-up
        return ds

    @staticmethod
    def _source_step(ds: xr.Dataset, tdim: str, data: str) -> pd.Timedelta:
        t = ds[tdim].values
        if not np.issubdtype(np.asarray(t).dtype, np.datetime64):
            raise ValueError(f"option 'data': {data}: '{tdim}' is not a date axis (CF units 'days since ...')")
        if len(t) < 2:
            raise ValueError(f"option 'data': {data} has a single time step")
        return pd.Timedelta(np.median(np.diff(t)))

    def _aggregate(self, ds: xr.Dataset, cfg: Any, tdim: str, step: pd.Timedelta
                   ) -> tuple[xr.Dataset, xr.DataArray, xr.DataArray | None]:
        """Fields to ``step`` (one variable per statistic), the target and truth to 0/1 per step ("any")."""
        target = ds[cfg.target]
        if cfg.target_below is not None or cfg.target_above is not None:
            flag = xr.zeros_like(target, dtype=bool)
            if cfg.target_below is not None:
                flag = flag | (target < cfg.target_below)
            if cfg.target_above is not None:
                flag = flag | (target > cfg.target_above)
            target = flag.where(target.notnull(), False)
        else:
            other = target.notnull() & (target != 0) & (target != 1)  # every step, not a sample of them
            if bool(other.any()):
                odd = target.where(other).values
                example = np.unique(odd[np.isfinite(odd)])[:5]
                raise ValueError(
                    f"option 'target': {cfg.target} holds values other than 0 and 1 (e.g. {example.tolist()}); "
                    "give a threshold rule (--target_below X or --target_above X)"
                )
            target = target.fillna(0) > 0.5
        truth = None
        if cfg.truth_drivers:
            truth = ds[cfg.truth_drivers]
            vdim = next((d for d in truth.dims if d not in ds[cfg.target].dims), None)
            if vdim is None:
                raise ValueError(f"option 'truth_drivers': {cfg.truth_drivers} needs a variable dimension")
            names = [str(v) for v in truth[vdim].values]
            absent = [v for v in self.variables if v not in names]
            if absent:
                raise ValueError(f"option 'truth_drivers': its '{vdim}' coordinate lacks {', '.join(absent)}")
            truth = (truth.sel({vdim: self.variables}).fillna(0) > 0.5).rename({vdim: "variable"})
        out = {}
        resampled = step != self.source_step
        for v in self.variables:
            da = ds[v]
            for s in cfg.statistics:
                if resampled:
                    agg = getattr(da.resample({tdim: step}), s)()
                else:
                    if s != "mean":
                        raise ValueError(f"option 'statistics': {s} needs --step coarser than the data's own step")
                    agg = da
                out[f"{v}__{s}"] = agg
        if resampled:
            target = target.resample({tdim: step}).max()
            truth = truth.resample({tdim: step}).max() if truth is not None else None
        return xr.Dataset(out), target, truth

    # ------------------------------------------------------------------ normalisation
    def climatology_of(self, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel median and standard deviation per step of the year, from the training period."""
        if self.split == "train":
            source = self
        else:
            source = DatacubeDataset(cfg, "train", climatology=(np.zeros(1), np.ones(1)))
        keys = step_of_year(source.times, source.step)
        n = _periods_per_year(source.step)
        v, c = source._x_raw.shape[:2]
        med = np.full((v, c, n, *source.grid_shape), np.nan, np.float32)
        std = np.full_like(med, np.nan)
        for k in np.unique(keys):
            block = source._x_raw[:, :, keys == k]
            med[:, :, k] = np.nanmedian(block, axis=2)
            std[:, :, k] = np.nanstd(block, axis=2)
        return med, std

    def _normalise(self, clim: tuple[np.ndarray, np.ndarray], cfg: Any) -> None:
        med, std = clim
        if med.ndim == 1:  # the placeholder a test split passes while it reads the training split
            return
        if med.shape[-2:] != self.grid_shape:
            raise ValueError(
                f"option 'climatology': its grid {med.shape[-2:]} differs from the data's {self.grid_shape} "
                "(after the box)"
            )
        keys = step_of_year(self.times, self.step)
        missing = sorted(set(keys.tolist()) - {k for k in range(med.shape[2]) if np.isfinite(med[:, :, k]).any()})
        if missing:
            raise ValueError(
                f"option 'period_train' does not cover steps {missing[:6]} of the year that split '{self.split}' "
                "needs for its climatology; lengthen the training period"
            )
        s = np.where(~np.isfinite(std) | (std == 0), np.float32(1), std)
        x = (self._x - med[:, :, keys]) / s[:, :, keys]
        if cfg.clip_value:
            np.clip(x, -cfg.clip_value, cfg.clip_value, out=x)
        self._x = np.nan_to_num(x, nan=cfg.nan_fill).astype(np.float32)
        del self._x_raw

    # ------------------------------------------------------------------ samples
    def __len__(self) -> int:
        return max(0, len(self.time_labels) - self.delta_t + 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sl = slice(index, index + self.delta_t)
        x = torch.from_numpy(self._x[:, :, sl]).flip(2)  # newest-first
        target = self._target[sl]
        sample = {
            "x": x,
            "mask_extreme": torch.from_numpy(target[-1]).float(),
            "mask_extreme_loss": torch.from_numpy(target.any(axis=0)).float(),
            "timestep": torch.tensor(int(self.time_labels[index + self.delta_t - 1]), dtype=torch.int64),
        }
        if self._valid is not None:
            sample["mask_valid"] = torch.from_numpy(self._valid)
        if self._truth is not None:
            sample["mask_anomaly"] = torch.from_numpy(self._truth[:, sl]).flip(1).float()
        if self.augment and torch.rand(()) < 0.5:
            for k, v in sample.items():
                if torch.is_tensor(v) and v.ndim >= 2:
                    sample[k] = v.flip(-1)
        return sample

    # ------------------------------------------------------------------ truth for the metrics
    def drivers_truth(self) -> np.ndarray:
        """[V, T_split, H, W] uint8 true drivers (chronological)."""
        if self._truth is None:
            raise ValueError("option 'truth_drivers' is not set: the datacube has no driver truth")
        return self._truth

    @property
    def valid_pixels(self) -> np.ndarray | None:
        """float32 [H, W], 1 = valid (``--mask``), or None: the pixels the driver scores count."""
        return self._valid

    def extremes_truth(self) -> np.ndarray:
        """[T_split, H, W] uint8 target (chronological)."""
        return self._target

    def normalised_inputs(self) -> np.ndarray:
        return self._x[:, 0]
