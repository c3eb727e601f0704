"""Read a test run folder (``drivers_<split>.nc``, ``metrics_<split>.json``, ``config.yaml``).

Two layouts exist and are told apart by dimensions:

- synthetic: ``driver`` (var, time, y, x) = re-assembled chronological flags; the
  flags "k weeks before target t" are ``driver[:, t - k]``;
- real data: ``driver`` (week, var, lag, y, x), lag 0 = the target week.

``RunData.window(i)`` hides the difference: it returns (V, L, H, W) flags with lag
0 = target week, plus which lags exist (synthetic targets near the start of the
split have no earlier weeks in the file). Arrays stay on disk until asked for.

Target weeks: every real-data week is one. A synthetic file covers the whole split, but its
first ``delta_t - 1`` weeks are never the target of a sample (a window needs ``delta_t`` weeks):
``RunData.is_target`` comes from the file's ``target`` variable, else from where a prediction
exists, else from ``delta_t``. Figures and tables of targets use only those weeks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from vis.common import spatial_dims as _spatial_dims

LAT_NAMES = ("latitude", "lat")
LON_NAMES = ("longitude", "lon")


def _latlon(ds: xr.Dataset, ydim: str, xdim: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """2-D latitude/longitude (y, x) if the file has them (1-D lat/lon axes are broadcast)."""
    lat = next((ds[n] for n in LAT_NAMES if n in ds.variables and n not in (ydim, xdim)), None)
    lon = next((ds[n] for n in LON_NAMES if n in ds.variables and n not in (ydim, xdim)), None)
    if lat is None and ydim == "lat" and xdim == "lon":
        lat, lon = ds["lat"], ds["lon"]
    if lat is None or lon is None:
        return None, None
    lat_v, lon_v = np.asarray(lat.values, dtype=float), np.asarray(lon.values, dtype=float)
    if lat_v.ndim == 1 and lon_v.ndim == 1:
        lat_v, lon_v = np.meshgrid(lat_v, lon_v, indexing="ij")
    return lat_v, lon_v


@dataclass
class RunData:
    """One split of a test run, synthetic or real, behind one interface."""

    run_dir: Path
    split: str
    kind: str  # "synthetic" | "real"
    names: list[str]
    labels: list[str]  # target labels: synthetic time (1-based), real YYYYWWW
    extreme: np.ndarray  # (N, H, W) uint8 0/1 predicted extreme / drought
    extreme_prob: np.ndarray | None
    extreme_true: np.ndarray | None  # 0/1 (class 1 of a synthetic class map)
    valid: np.ndarray | None  # (H, W) or (N, H, W) bool
    lat: np.ndarray | None
    lon: np.ndarray | None
    n_lags: int
    is_target: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]  # (N,) bool
    has_prediction: bool = True  # False: the method predicts no extremes (drivers only)
    dates: list[str] | None = None  # ISO date per time index (datacube runs), None: labels only
    ds: xr.Dataset = field(default=None, repr=False)  # type: ignore[assignment]
    config: dict = field(default_factory=dict, repr=False)
    metrics: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.extreme.shape[1:])  # type: ignore[return-value]

    @property
    def targets(self) -> list[int]:
        """Indices of the target weeks (see the module docstring)."""
        return [int(i) for i in np.flatnonzero(self.is_target)]

    @property
    def has_driver_truth(self) -> bool:
        return "driver_true" in self.ds

    def valid_at(self, i: int) -> np.ndarray:
        """(H, W) bool valid pixels of target i (all pixels when the file has no mask)."""
        if self.valid is None:
            return np.ones(self.shape, bool)
        return self.valid[i] if self.valid.ndim == 3 else self.valid

    def lag_covered(self, i: int) -> np.ndarray:
        """(L,) bool: which lags of target i exist in the file."""
        if self.kind == "real":
            return np.ones(self.n_lags, bool)
        return np.arange(self.n_lags) <= i

    def window(
        self, i: int, truth: bool = False, ys: slice = slice(None), xs: slice = slice(None)
    ) -> np.ndarray:
        """(V, L, h, w) uint8 driver flags of target index i; lag 0 = target week, missing lags = 0."""
        name = "driver_true" if truth else "driver"
        if name not in self.ds:
            raise ValueError(f"{self.run_dir}: drivers_{self.split}.nc has no '{name}' variable")
        da = self.ds[name]
        ydim, xdim = _spatial_dims(da, self.run_dir)
        if self.kind == "real":
            tdim = da.dims[0]
            arr = da.isel({tdim: i, ydim: ys, xdim: xs}).transpose("var", "lag", ydim, xdim).values
            return np.asarray(arr, dtype=np.uint8)
        lo = max(0, i - self.n_lags + 1)
        chunk = (
            da.isel(time=slice(lo, i + 1), **{ydim: ys, xdim: xs}).transpose("var", "time", ydim, xdim).values
        )
        chunk = np.asarray(chunk, dtype=np.uint8)[:, ::-1]  # newest first
        out = np.zeros((chunk.shape[0], self.n_lags) + chunk.shape[2:], np.uint8)
        out[:, : chunk.shape[1]] = chunk
        return out

    def label_text(self, i: int) -> str:
        """How figures name time index i: its date when the file has dates, else ``week_label``."""
        if self.dates is not None:
            return self.dates[i]
        from vis.common import week_label

        return week_label(self.labels[i])

    def lag_labels(self, i: int) -> list[str]:
        """Label of the week each lag of target i refers to (its date when the file has dates)."""
        lab = self.labels[i]
        if self.kind == "synthetic" and self.dates is not None:
            return [self.dates[i - k] if i - k >= 0 else f"t={int(lab) - k}" for k in range(self.n_lags)]
        if self.kind == "synthetic":
            return [f"t={int(lab) - k}" for k in range(self.n_lags)]
        return [week_before(lab, k) for k in range(self.n_lags)]


def week_before(label: str, k: int) -> str:
    """YYYYWWW of k weeks earlier (weeks 1..52; week <= 0 wraps into the previous year, like the loader)."""
    if not (len(label) == 7 and label.isdigit()):
        return f"{label} -{k}w"
    year, week = int(label[:4]), int(label[4:]) - k
    while week <= 0:
        year, week = year - 1, week + 52
    return f"{year}{week:03d}"


def _first(ds: xr.Dataset, names: tuple[str, ...]) -> xr.DataArray | None:
    return next((ds[n] for n in names if n in ds), None)


def load_run(run_dir: str | Path, split: str = "test", n_lags: int | None = None) -> RunData:
    """Open ``<run_dir>/drivers_<split>.nc`` (+ metrics and config); errors name the missing piece."""
    if n_lags is not None and n_lags < 1:
        raise ValueError(f"option --lags {n_lags}: give at least 1 week (lag 0 = the target week)")
    run_dir = Path(run_dir)
    path = run_dir / f"drivers_{split}.nc"
    if not run_dir.is_dir():
        raise FileNotFoundError(f"option --run {run_dir}: no such folder; give the run folder <dir_log>/<name>")
    if not path.is_file():
        found = sorted(p.name.removeprefix("drivers_").removesuffix(".nc") for p in run_dir.glob("drivers_*.nc"))
        hint = f"choose --split {' or '.join(found)}, or " if found else ""
        raise FileNotFoundError(
            f"option --split {split}: {path} does not exist; {hint}write it with the test script's "
            f"--split {split} --save_predictions true"
        )
    ds = xr.open_dataset(path)
    if "driver" not in ds:
        raise ValueError(f"{path}: no 'driver' variable (has: {', '.join(map(str, ds.data_vars))})")
    config = _read_yaml(run_dir / f"config_test_{split}.yaml") or _read_yaml(run_dir / "config.yaml")
    metrics = read_metrics(run_dir, split)
    drv = ds["driver"]
    ydim, xdim = _spatial_dims(drv, path)
    if drv.ndim == 5:
        kind, tdim = "real", drv.dims[0]
        ext = _first(ds, ("drought", "extreme"))
        prob = _first(ds, ("drought_prob", "extreme_prob"))
        true = _first(ds, ("drought_true", "extreme_true"))
        lags = int(drv.sizes["lag"]) if "lag" in drv.dims else int(drv.shape[2])
    elif drv.ndim == 4 and "time" in drv.dims:
        kind, tdim = "synthetic", "time"
        ext, prob, true = ds.get("extreme"), ds.get("extreme_prob"), ds.get("extreme_true")
        lags = n_lags or int(config.get("delta_t", 8))
    else:
        raise ValueError(
            f"{path}: 'driver' has dims {drv.dims}; expected (var, time, y, x) or (week, var, lag, y, x)"
        )
    if ext is None and true is None:
        raise ValueError(f"{path}: neither a predicted nor a true extreme map ('extreme'/'drought'[_true])")
    names = (
        [str(v) for v in ds["var"].values]
        if "var" in ds.coords
        else [f"var{i}" for i in range(drv.sizes["var"])]
    )
    labels = (
        [_label(v) for v in ds[tdim].values]
        if tdim in ds.coords
        else [str(i) for i in range(drv.sizes[tdim])]
    )

    def arr(da: xr.DataArray | None, dtype) -> np.ndarray | None:
        if da is None:
            return None
        dims = [d for d in (tdim, ydim, xdim) if d in da.dims]
        return np.asarray(da.transpose(*dims).values, dtype=dtype)

    valid = arr(ds.get("valid"), bool)
    is_target = _targets(ds, kind, tdim, arr(prob, np.float32), lags, drv.sizes[tdim])
    extreme_true = arr(true, np.uint8)
    if extreme_true is not None:  # class maps: 1 = extreme, 2/3 = halo weeks
        extreme_true = (extreme_true == 1).astype(np.uint8)
    # a method without extreme logits has no predicted map: zeros, flagged by has_prediction
    extreme = (arr(ext, np.uint8) == 1).astype(np.uint8) if ext is not None else np.zeros_like(extreme_true)
    lat, lon = _latlon(ds, ydim, xdim)
    return RunData(
        dates=_dates(ds, tdim),
        run_dir=run_dir,
        split=split,
        kind=kind,
        names=names,
        labels=labels,
        extreme=extreme,
        has_prediction=ext is not None,
        extreme_prob=arr(prob, np.float32),
        extreme_true=extreme_true,
        valid=valid,
        lat=lat,
        lon=lon,
        n_lags=lags,
        is_target=is_target,
        ds=ds,
        config=config,
        metrics=metrics,
    )


def _targets(ds: xr.Dataset, kind: str, tdim: str, prob: np.ndarray | None, lags: int, n: int) -> np.ndarray:
    """(N,) bool: weeks that are the target of a sample (module docstring)."""
    if kind == "real":
        return np.ones(n, bool)
    if "target" in ds and ds["target"].dims == (tdim,):
        return np.asarray(ds["target"].values) > 0
    if prob is not None:  # files without 'target': a predicted week has a finite probability
        return np.isfinite(prob).reshape(n, -1).any(axis=1)
    return np.arange(n) >= lags - 1


def _dates(ds: xr.Dataset, tdim: str) -> list[str] | None:
    """ISO dates of the time axis: the ``date`` coordinate of datacube runs, or a datetime time axis."""
    for name in ("date", tdim):
        if name in ds.coords and ds[name].dims == (tdim,) and np.issubdtype(ds[name].dtype, np.datetime64):
            return [str(d) for d in np.datetime_as_string(ds[name].values, unit="D")]
    return None


def _label(v) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    if isinstance(v, (np.floating, float)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    return data if isinstance(data, dict) else {}


def read_metrics(run_dir: str | Path, split: str) -> dict:
    path = Path(run_dir) / f"metrics_{split}.json"
    if not path.is_file():
        return {}
    with open(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err


def pick_targets(run: RunData, n: int, wanted: list[str] | None = None) -> list[int]:
    """Indices of the requested labels, else the n targets with most predicted + true extreme pixels."""
    if n < 0:
        raise ValueError(f"option --n {n}: the number of target weeks cannot be negative")
    if wanted:
        index = {lab: i for i, lab in enumerate(run.labels)}
        missing = [w for w in wanted if str(w) not in index or not run.is_target[index[str(w)]]]
        if missing:
            raise SystemExit(
                f"--times/--weeks: {', '.join(map(str, missing))} not a target week of drivers_{run.split}.nc "
                f"(targets {target_range(run)})"
            )
        return [index[str(w)] for w in wanted]
    valid = run.valid if run.valid is not None else np.ones(run.shape, bool)
    score = (run.extreme.astype(np.int64) * valid).sum(axis=(1, 2))
    if run.extreme_true is not None:
        score = score + (run.extreme_true.astype(np.int64) * valid).sum(axis=(1, 2))
    targets = np.asarray(run.targets, dtype=np.int64)
    order = targets[np.argsort(-score[targets], kind="stable")]
    return sorted(int(i) for i in order[:n])


def target_range(run: RunData) -> str:
    """'<first> .. <last>' target label of the run ('none' without targets)."""
    t = run.targets
    return f"{run.labels[t[0]]} .. {run.labels[t[-1]]}" if t else "none"


def target_span(run: RunData) -> str:
    """'<n> target weeks <first>..<last>' (and the split's first weeks that are not targets)."""
    t = run.targets
    text = f"{len(t)} target weeks {target_range(run)}"
    before = t[0] if t else len(run.labels)
    if run.kind == "synthetic" and before:
        text += (
            f"; the split's first {before} weeks {run.labels[0]}..{run.labels[before - 1]} are not targets "
            "(a window needs delta_t weeks)"
        )
    return text
