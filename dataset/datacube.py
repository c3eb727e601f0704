"""Your own datacube: any xarray-openable source of gridded fields and an extreme mask or index.

The source is one netCDF file, a glob of files (each read into memory, then combined by their
coordinates: no dask needed), or a zarr store (``--data``). Dimensions are
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

import contextlib
import glob
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch.utils.data import Dataset

from dataset.zarr_store import is_zarr_store
from utils.errors import ConfigError

__all__ = ["DatacubeDataset", "open_source", "source_paths", "find_dims", "parse_step", "read_errors", "cause_of"]

_TIME = ("time", "valid_time", "date", "t")
_LAT = ("lat", "latitude", "rlat", "y", "nav_lat")
_LON = ("lon", "longitude", "rlon", "x", "nav_lon")


def cause_of(err: BaseException) -> str:
    """The cause of ``err`` in a few words: its first line, cut at the end of its first sentence
    (xarray's "no backend" message goes on with advice about engines that does not apply here)."""
    lines = str(err).strip().splitlines()
    first = lines[0].split(". ")[0].rstrip(".: ") if lines else ""
    return first or type(err).__name__


@contextlib.contextmanager
def read_errors(option: str, path: str | Path) -> Iterator[None]:
    """Turn what a backend raises for a damaged or foreign file (a truncated netCDF, a text file, an
    empty zarr folder) into one line naming the option and the file, instead of a traceback."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(
            f"option '{option}': cannot read {path} as netCDF or zarr ({cause_of(err)}); "
            "check the file is complete and is netCDF or zarr"
        ) from None


def _open_one(path: Path, data: str) -> xr.Dataset:
    """One netCDF file or zarr store, opened lazily."""
    if not path.exists():
        raise ConfigError(f"option 'data': {data} does not exist")
    is_zarr = path.is_dir() and (path.suffix == ".zarr" or is_zarr_store(path))
    if path.is_dir() and not is_zarr:
        raise ConfigError(f"option 'data': {path} is a folder but not a zarr store; pass a file, a glob or a store")
    with read_errors("data", path):
        if is_zarr:
            return xr.open_zarr(path, decode_timedelta=False)
        return xr.open_dataset(path, decode_timedelta=False)


def _check_variables(ds: xr.Dataset, variables: Sequence[str], path: str | Path) -> None:
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise ConfigError(f"option 'data': {path} has no variable {', '.join(missing)}; "
                          f"it has {', '.join(map(str, ds.data_vars))}")


def is_glob(data: str) -> bool:
    """Whether ``--data`` is a pattern of files rather than one file or store."""
    return any(ch in data for ch in "*?[")


def source_paths(data: str) -> list[str]:
    """The files (or store) behind ``--data``: a glob's matches in order, else ``data`` itself."""
    return sorted(glob.glob(data)) if is_glob(data) else [data]


def open_source(data: str, variables: Sequence[str] | None = None) -> xr.Dataset:
    """``data``: a netCDF file, a glob of files (combined by coordinates) or a zarr store.

    ``variables`` (None: all) are the data variables needed; each must be there. A glob's files
    are read into memory with only these (xarray combines files lazily only with dask, which
    this project does not need), so ``variables=()`` reads just the coordinates.
    """
    if not is_glob(data):
        ds = _open_one(Path(data), data)
        if variables is not None:
            _check_variables(ds, variables, data)
        return ds
    files = source_paths(data)
    if not files:
        raise ConfigError(f"option 'data': no file matches {data}; check the folder and the pattern")
    parts = []
    for f in files:
        with _open_one(Path(f), data) as part:
            if variables is not None:
                _check_variables(part, variables, f)
                part = part.drop_vars([v for v in part.data_vars if v not in variables])
            with read_errors("data", f):
                parts.append(part.load())
    try:
        return xr.combine_by_coords(parts, data_vars="minimal", coords="minimal", compat="equals",
                                    join="exact", combine_attrs="drop_conflicts")
    except ValueError as err:
        raise ConfigError(
            f"option 'data': the {len(files)} files matching {data} do not combine by their coordinates "
            f"({cause_of(err)}); they must share one grid and the same fixed fields and not overlap in time"
        ) from None


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


def _say(step: pd.Timedelta) -> str:
    """A step in words ("7 days", "6:00:00")."""
    if step % pd.Timedelta(days=1) == pd.Timedelta(0):
        days = step // pd.Timedelta(days=1)
        return f"{days} day{'s' if days != 1 else ''}"
    return str(step)


def parse_step(step: str | None, source_step: pd.Timedelta) -> pd.Timedelta:
    """``--step`` as a length of time (default: the data's own step). Resampling to a finer step
    would invent empty steps, so that is an error rather than a grid of NaN."""
    if not step:
        return source_step
    try:
        out = pd.Timedelta(step)
    except ValueError:
        out = pd.NaT
    if pd.isna(out) or out <= pd.Timedelta(0):
        raise ConfigError(f"option 'step': {step!r} is not a time step; use a pandas offset such as 7D "
                          "(a fixed length: D, h or W)")
    if out < source_step:
        days = source_step / pd.Timedelta(days=1)
        own = f"{int(days)}D" if days == int(days) else pd.tseries.frequencies.to_offset(source_step).freqstr
        raise ConfigError(f"option 'step': {step} is finer than the data's step ({_say(source_step)}); "
                          f"use --step {own} or coarser, or leave --step out")
    return out


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
        if cfg.target in cfg.variables:
            raise ConfigError(
                f"options 'target' and 'variables': the target {cfg.target} is also an input variable, so the "
                "model would see its labels; drop it from --variables"
            )
        self.split, self.delta_t, self.augment = split, int(cfg.delta_t), bool(augment)
        self.variables = list(cfg.variables)
        wanted = list(dict.fromkeys([*self.variables, cfg.target, *([cfg.mask] if cfg.mask else []),
                                     *([cfg.truth_drivers] if cfg.truth_drivers else [])]))
        src = open_source(cfg.data, wanted)
        try:  # closed once read: an open handle would pin the file (and its rewrite) until exit
            tdim, ydim, xdim = find_dims(src, cfg.data)
            ds = self._box(src, cfg, ydim, xdim)
            self.source_step = self._source_step(ds, tdim, cfg.data)
            step = parse_step(cfg.step, self.source_step)
            with read_errors("data", cfg.data):  # only what this run needs, inside the box
                ds = ds[wanted].load()
        finally:
            src.close()
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
        with open_source(cfg.data, ()) as ds:
            tdim, _, _ = find_dims(ds, cfg.data)
            times = ds[tdim].load()
            source_step = DatacubeDataset._source_step(ds, tdim, cfg.data)
        step = parse_step(cfg.step, source_step)
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
        for dim, name, what in ((ydim, "lat", "latitude"), (xdim, "lon", "longitude")):
            lo, hi = getattr(cfg, f"{name}_min"), getattr(cfg, f"{name}_max")
            if lo is None and hi is None:
                continue
            axis = ds[dim].values
            keep = np.nonzero((axis >= (-np.inf if lo is None else lo)) & (axis <= (np.inf if hi is None else hi)))[0]
            if keep.size == 0:
                raise ConfigError(
                    f"options '{name}_min'/'{name}_max' = {lo}/{hi}: the box holds no pixel of {cfg.data} (its "
                    f"{what} runs {float(np.nanmin(axis))} .. {float(np.nanmax(axis))}); widen the box"
                )
            ds = ds.isel({dim: keep})
        if ds.sizes[ydim] > 1 and float(ds[ydim][0]) < float(ds[ydim][-1]):
            ds = ds.isel({ydim: slice(None, None, -1)})  # north-up
        return ds

    @staticmethod
    def _source_step(ds: xr.Dataset, tdim: str, data: str) -> pd.Timedelta:
        t = ds[tdim].values
        calendar = getattr(t[0], "calendar", None) if len(t) else None
        if calendar in ("standard", "gregorian", "proleptic_gregorian"):  # cftime only for out-of-range dates
            raise ConfigError(f"option 'data': {data}: '{tdim}' holds dates ({t[0]} .. {t[-1]}) that xarray reads "
                              "only as cftime dates (e.g. before the Gregorian reform of 1582-10-15); use later dates")
        if calendar:  # decoded to cftime dates: a model calendar without the real year's days
            raise ConfigError(
                f"option 'data': {data}: '{tdim}' uses calendar {calendar}, which is not supported: convert it with "
                "ds.convert_calendar('standard', align_on='date') and save the data again"
            )
        if not np.issubdtype(np.asarray(t).dtype, np.datetime64):
            raise ConfigError(f"option 'data': {data}: '{tdim}' is not a date axis (CF units 'days since ...')")
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
