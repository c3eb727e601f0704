"""Prediction files (``drivers_<split>.nc``) of every layout: one writer, one CF-1.8 attribute scheme.

Layouts (rows north-up: row 0 is the northernmost, as in the samples, crops and figures):

- synthetic (``PredictionCollector``)::

      driver, driver_true  uint8   (var, time, y, x)   re-assembled flags (majority vote of windows)
      extreme_prob         float32 (time, y, x)        NaN: week not predicted
      extreme, extreme_true uint8  (time, y, x)
      target               uint8   (time)              1: the week is the target of an evaluated sample
      coverage             int32   (time)              sample windows covering the week
      coords: var, time (1-based week index), y, x (cube indices), latitude/longitude (y, x)

- real data (``DroughtPredictionWriter``, ERA5-Land and CERRA)::

      driver        uint8   (week, var, lag, <y>, <x>)  lag 0 = target week, lag k = k weeks before
      drought       uint8   (week, <y>, <x>)            drought_prob >= threshold
      drought_prob  float32 (week, <y>, <x>)
      drought_true  uint8   (week, <y>, <x>)            the label (VHI < threshold)
      valid         uint8   (week, <y>, <x>)            pixels counted in the metrics
      coords: week ("YYYYWWW"), var, lag, <y>/<x> (rlat/rlon or y/x, the files' own values and
      attributes), lat/lon (<y>, <x>); a rotated-pole grid gets its ``rotated_pole`` grid mapping

Scheme (``variable_attrs``, ``COORD_ATTRS``): global ``Conventions = CF-1.8``; every variable a
``long_name``; flags ``flag_values`` (the variable's dtype) and ``flag_meanings``; probabilities
``units = 1``; 2-D latitude/longitude with ``standard_name`` and ``units``, named in each spatial
variable's ``coordinates`` (xarray opens them as coordinates); ``grid_mapping`` on every spatial
variable when the grid has one.

xarray writes the coordinates, attributes and in-memory variables. Variables too large for
memory (the real-data split) are streamed along their first dimension into the same file with
netCDF4, with the attributes of the same scheme. Files are written to a temporary name and
renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch
import xarray as xr

from utils.collectors import Collector
from utils.distributed import barrier
from utils.metrics import DriverCollector, _all_reduce_sum

__all__ = [
    "CONVENTIONS",
    "COORD_ATTRS",
    "DroughtPredictionWriter",
    "PredictionCollector",
    "variable_attrs",
    "write_driver_predictions",
    "write_prediction_file",
]

CONVENTIONS = "CF-1.8"
_COORD_KEYS = ("standard_name", "long_name", "units", "axis")  # copied from the data files' coordinates
_ZLIB = {"zlib": True, "complevel": 4}

# attributes of coordinate variables by name (a file's own attributes of rlat/rlon/y/x come first)
COORD_ATTRS: dict[str, dict[str, Any]] = {
    "var": {"long_name": "variable short name"},
    "lag": {"long_name": "weeks before the target week (0 = target week)"},
    "week": {"long_name": "target week YYYYWWW (year, week 001-052 of the data's weekly files)"},
    "time": {"long_name": "week index of the data cube (1-based)"},
    "lat": {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"},
    "lon": {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"},
    "rlat": {"standard_name": "grid_latitude", "long_name": "latitude in rotated pole grid",
             "units": "degrees", "axis": "Y"},
    "rlon": {"standard_name": "grid_longitude", "long_name": "longitude in rotated pole grid",
             "units": "degrees", "axis": "X"},
    "y": {"long_name": "grid row (0 = northernmost row of the grid)", "axis": "Y"},
    "x": {"long_name": "grid column (0 = westernmost column of the grid)", "axis": "X"},
}
COORD_ATTRS["latitude"], COORD_ATTRS["longitude"] = COORD_ATTRS["lat"], COORD_ATTRS["lon"]


def _flags(long_name: str, meanings: str) -> dict[str, Any]:
    return {"long_name": long_name, "flag_values": np.array([0, 1], np.uint8), "flag_meanings": meanings}


def variable_attrs(name: str, threshold: float | None = None, split: str | None = None) -> dict[str, Any]:
    """CF attributes of a prediction variable (the one scheme of every layout)."""
    t = "" if threshold is None else f" (probability >= {threshold:g})"
    table: dict[str, dict[str, Any]] = {
        "driver": _flags("identified driver", "not_driver driver"),
        "driver_true": _flags("ground-truth driver (anomaly_extreme of the data cube)", "not_driver driver"),
        "extreme": _flags(f"predicted extreme{t}", "no_extreme extreme"),
        "extreme_true": _flags("ground-truth extreme (class 1 of the data cube)", "no_extreme extreme"),
        "extreme_prob": {"long_name": "predicted probability of an extreme (NaN: week not predicted)",
                         "units": "1", "valid_range": np.array([0, 1], np.float32)},
        "drought": _flags(f"predicted extreme drought{t}", "no_drought drought"),
        "drought_true": _flags("extreme drought label (VHI below the threshold)", "no_drought drought"),
        "drought_prob": {"long_name": "predicted probability of an extreme drought (NaN: no prediction)",
                         "units": "1", "valid_range": np.array([0, 1], np.float32)},
        "valid": _flags("pixel counted in the metrics" + (f" of split {split}" if split else ""),
                        "not_counted counted"),
        "target": _flags("week is the target of an evaluated sample (the first delta_t - 1 weeks of a "
                         "split never are)", "not_target target"),
        "coverage": {"long_name": "number of sample windows covering the week (0: driver flags default "
                                  "to not_driver)", "units": "1"},
    }
    if name not in table:
        raise KeyError(f"no attribute scheme for prediction variable {name!r}")
    return dict(table[name])


def _coord(name: str, dims: tuple[str, ...], values: Any, attrs: Mapping[str, Any] | None = None) -> xr.Variable:
    merged = {**COORD_ATTRS.get(name, {}), **(attrs or {})}
    return xr.Variable(dims, values, attrs=merged)


def write_prediction_file(
    path: str | Path,
    *,
    coords: Mapping[str, xr.Variable],
    variables: Mapping[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]],
    spatial: tuple[str, str],
    attrs: Mapping[str, Any],
    grid_mapping: tuple[str, Mapping[str, Any]] | None = None,
    streamed: Mapping[str, tuple[tuple[str, ...], Any, dict[str, Any]]] | None = None,
    stream: Iterable[Mapping[str, np.ndarray]] = (),
) -> Path:
    """Write one prediction file: ``variables`` from memory, ``streamed`` block by block.

    ``variables``/``streamed`` map a name to (dims, array or dtype, CF attributes);
    ``stream`` yields, for each index along the streamed variables' first dimension, a
    dict name -> that block. Spatial variables get ``grid_mapping`` and ``coordinates``.
    """
    path = Path(path)
    ds = xr.Dataset(coords=dict(coords))
    aux = [n for n, c in coords.items() if n not in c.dims and set(c.dims) == set(spatial)]
    enc: dict[str, dict[str, Any]] = {n: {"_FillValue": None} for n in coords if coords[n].dtype.kind == "f"}
    gm_name = None
    if grid_mapping is not None:
        gm_name = grid_mapping[0]
        ds[gm_name] = xr.Variable((), np.int32(0), attrs=dict(grid_mapping[1]))
    for name, (dims, values, var_attrs) in variables.items():
        a = dict(var_attrs)
        if gm_name and set(spatial) <= set(dims):
            a["grid_mapping"] = gm_name
        ds[name] = xr.Variable(dims, values, attrs=a)
        enc[name] = {**_ZLIB, "_FillValue": np.float32(np.nan) if values.dtype.kind == "f" else None}
    ds.attrs.update(_global_attrs(attrs))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=enc)
    if streamed:
        with netCDF4.Dataset(tmp, "a") as nc:
            if "coordinates" in nc.ncattrs():  # xarray's note of lat/lon; the streamed variables name them
                nc.delncattr("coordinates")
            out = {}
            for name, (dims, dtype, var_attrs) in streamed.items():
                sizes = [len(nc.dimensions[d]) for d in dims]
                dtype = np.dtype(dtype)
                fill = np.float32(np.nan) if dtype.kind == "f" else False
                v = nc.createVariable(name, dtype, dims, chunksizes=[1, *sizes[1:]], fill_value=fill, **_ZLIB)
                a = dict(var_attrs)
                if set(spatial) <= set(dims):
                    if aux:
                        a["coordinates"] = " ".join(aux)
                    if gm_name:
                        a["grid_mapping"] = gm_name
                v.setncatts(a)
                out[name] = v
            for j, block in enumerate(stream):
                for name, values in block.items():
                    out[name][j] = values
    tmp.replace(path)
    return path


def _global_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Conventions, history and the caller's attributes (numbers kept, everything else as text)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out: dict[str, Any] = {
        "Conventions": CONVENTIONS,
        "title": "IDEE driver predictions",
        "source": "IDEE (utils/predictions.py)",
        "history": f"{stamp} written by IDEE utils/predictions.py",
        "rows": "north-up (row 0 = northernmost)",
    }
    for k, v in attrs.items():
        out[k] = v if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else str(v)
    return out


# ------------------------------------------------------------------------------------ synthetic


def write_driver_predictions(
    path: str | Path,
    *,
    driver: np.ndarray,
    driver_true: np.ndarray | None,
    extreme_prob: np.ndarray | None,
    extreme_true: np.ndarray | None,
    var_names: Sequence[str],
    time_labels: Sequence[int],
    y: Sequence[int],
    x: Sequence[int],
    coverage: np.ndarray | None = None,
    target: np.ndarray | None = None,
    threshold: float = 0.5,
    latitude: np.ndarray | None = None,
    longitude: np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
    dates: Sequence[Any] | None = None,
) -> Path:
    """Synthetic layout: ``driver`` uint8 (var, time, y, x) and the extreme maps (weeks not predicted: NaN / 0).

    ``dates`` (datacubes): the date of each time step, written as the coordinate ``date`` (time)
    so that figures name steps by date."""
    coords: dict[str, xr.Variable] = {
        "var": _coord("var", ("var",), np.asarray([str(v) for v in var_names], dtype=object)),
        "time": _coord("time", ("time",), np.asarray(time_labels, dtype=np.int32)),
        "y": _coord("y", ("y",), np.asarray(y, dtype=np.int32),
                    {"long_name": "row index in the data cube (0 = north)"}),
        "x": _coord("x", ("x",), np.asarray(x, dtype=np.int32), {"long_name": "column index in the data cube"}),
    }
    if dates is not None and len(dates) == len(time_labels):
        coords["date"] = xr.Variable(("time",), np.asarray(dates, dtype="datetime64[ns]"),
                                     {"long_name": "date of the time step (start of the aggregation step)"})
    if latitude is not None:
        coords["latitude"] = _coord("latitude", ("y", "x"), np.asarray(latitude, dtype=np.float32))
    if longitude is not None:
        coords["longitude"] = _coord("longitude", ("y", "x"), np.asarray(longitude, dtype=np.float32))
    cube = ("var", "time", "y", "x")
    maps = ("time", "y", "x")
    data: dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, Any]]] = {
        "driver": (cube, np.asarray(driver, dtype=np.uint8), variable_attrs("driver"))
    }
    if driver_true is not None:
        data["driver_true"] = (cube, np.asarray(driver_true, dtype=np.uint8), variable_attrs("driver_true"))
    if extreme_prob is not None:
        prob = np.asarray(extreme_prob, dtype=np.float32)
        data["extreme_prob"] = (maps, prob, variable_attrs("extreme_prob"))
        data["extreme"] = (
            maps,
            (np.nan_to_num(prob, nan=0.0) >= threshold).astype(np.uint8),
            variable_attrs("extreme", threshold),
        )
    if extreme_true is not None:
        ext = (np.asarray(extreme_true) == 1).astype(np.uint8)
        data["extreme_true"] = (maps, ext, variable_attrs("extreme_true"))
    if target is not None:
        data["target"] = (("time",), np.asarray(target, dtype=np.uint8), variable_attrs("target"))
    if coverage is not None:
        data["coverage"] = (("time",), np.asarray(coverage, dtype=np.int32), variable_attrs("coverage"))
    return write_prediction_file(
        path,
        coords=coords,
        variables=data,
        spatial=("y", "x"),
        attrs={"title": "IDEE re-assembled driver predictions", "threshold_extreme": float(threshold),
               **(attrs or {})},
    )


class PredictionCollector(Collector):
    """Engine collector that keeps per-week extreme probabilities and, on ``save``, writes the netCDF.

    It shares the vote volume of a :class:`~utils.metrics.DriverCollector` (listed before it),
    so the file holds exactly what the metrics were computed from.
    """

    name = None  # contributes no metrics

    def __init__(
        self,
        dataset: Any,
        drivers: DriverCollector,
        threshold: float = 0.5,
        y0: int = 0,
        x0: int = 0,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.dataset, self.drivers, self.threshold = dataset, drivers, float(threshold)
        self.t_first = drivers.time_labels[0]
        n_time, (h, w) = len(drivers.time_labels), drivers.truth.shape[2:]
        self.y, self.x = np.arange(y0, y0 + h), np.arange(x0, x0 + w)
        self.prob_sum = torch.zeros(n_time, h, w, dtype=torch.float32)
        self.count = torch.zeros(n_time, dtype=torch.int64)
        self.targets = torch.zeros(n_time, dtype=torch.int64)  # samples whose target is the week
        self.attrs = attrs or {}
        self.seen_logits = False

    def update(self, batch: dict, out: Any) -> None:
        weeks = [int(t) - self.t_first for t in torch.as_tensor(batch["timestep"]).reshape(-1).tolist()]
        for j in weeks:
            if 0 <= j < self.targets.numel():
                self.targets[j] += 1
        if getattr(out, "logits", None) is None:
            return
        self.seen_logits = True
        probs = torch.sigmoid(out.logits.detach().float())[:, 0].cpu()
        for n, j in enumerate(weeks):
            if 0 <= j < self.count.numel():
                self.prob_sum[j] += probs[n]
                self.count[j] += 1

    def all_reduce(self) -> None:
        self.prob_sum = _all_reduce_sum(self.prob_sum)
        self.count = _all_reduce_sum(self.count)
        self.targets = _all_reduce_sum(self.targets)

    def result(self) -> dict:
        return {}

    def save(self, run_dir: Path, split: str) -> Path:
        prob = None
        if self.seen_logits or int(self.count.sum()):
            cnt = self.count.view(-1, 1, 1).float()
            prob = torch.where(cnt > 0, self.prob_sum / cnt.clamp(min=1), torch.tensor(float("nan"))).numpy()
        ext_true = self.dataset.extremes_truth() if hasattr(self.dataset, "extremes_truth") else None
        return write_driver_predictions(
            Path(run_dir) / f"drivers_{split}.nc",
            driver=self.drivers.flags(),
            driver_true=self.drivers.truth if self.drivers.name else None,  # votes only: no truth
            extreme_prob=prob,
            extreme_true=None if ext_true is None else np.asarray(ext_true),
            var_names=self.drivers.names,
            time_labels=self.drivers.time_labels,
            y=self.y,
            x=self.x,
            coverage=self.drivers.votes.coverage.numpy(),
            target=(self.targets > 0).numpy(),
            threshold=self.threshold,
            latitude=getattr(self.dataset, "latitude", None),
            longitude=getattr(self.dataset, "longitude", None),
            attrs={"split": split, **self.attrs},
            dates=getattr(self.dataset, "times", None),
        )


# ------------------------------------------------------------------------------------ real data


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DroughtPredictionWriter(Collector):
    """Real-data layout (see the module docstring); contributes no metrics.

    Each rank appends its samples to a scratch file while the split runs (memory stays
    per-sample); ``save`` on rank 0 streams them, in week order, into ``drivers_<split>.nc``.
    """

    name = None
    STREAMED = ("driver", "drought", "drought_prob", "drought_true", "valid")

    def __init__(
        self,
        dataset: Any,
        run_dir: str | Path,
        split: str,
        threshold: float,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.dataset, self.split, self.threshold = dataset, split, float(threshold)
        self.run_dir = Path(run_dir)
        self.attrs = attrs or {}
        self.rank, self.world = _rank_world()
        self.tmp = self.run_dir / f".drivers_{split}.rank{self.rank}.nc"
        self._nc: netCDF4.Dataset | None = None
        self._n = 0

    def _open(self, v: int, t: int, h: int, w: int) -> netCDF4.Dataset:
        """Scratch file of this rank (internal; deleted by ``save``)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        nc = netCDF4.Dataset(self.tmp, "w")
        nc.createDimension("sample", None)
        for name, size in (("var", v), ("lag", t), ("y", h), ("x", w)):
            nc.createDimension(name, size)
        nc.createVariable("timestep", "i8", ("sample",))
        nc.createVariable("driver", "u1", ("sample", "var", "lag", "y", "x"), chunksizes=(1, v, t, h, w))
        nc.createVariable("drought_prob", "f4", ("sample", "y", "x"), chunksizes=(1, h, w))
        for name in ("drought_true", "valid"):
            nc.createVariable(name, "u1", ("sample", "y", "x"), chunksizes=(1, h, w))
        return nc

    def update(self, batch: dict, out: Any) -> None:
        flags = torch.as_tensor(out.anomaly).detach().to("cpu", torch.uint8).numpy()  # [N, V, T, H, W]
        n, v, t, h, w = flags.shape
        if out.logits is not None:
            prob = torch.sigmoid(out.logits.detach().float())[:, 0].cpu().numpy()
        else:
            prob = np.full((n, h, w), np.nan, np.float32)
        true = (batch["mask_extreme"].detach().cpu().numpy() > 0.5).astype(np.uint8)
        valid = batch.get("mask_valid")
        valid = (
            np.ones((n, h, w), np.uint8)
            if valid is None
            else (valid.detach().cpu().numpy() > 0.5).astype(np.uint8)
        )
        if self._nc is None:
            self._nc = self._open(v, t, h, w)
        nc, k = self._nc, self._n
        nc["timestep"][k : k + n] = torch.as_tensor(batch["timestep"]).reshape(-1).cpu().numpy()
        nc["driver"][k : k + n] = flags
        nc["drought_prob"][k : k + n] = prob
        nc["drought_true"][k : k + n] = true
        nc["valid"][k : k + n] = valid
        self._n += n

    def all_reduce(self) -> None:
        """Close this rank's file; every rank waits so that rank 0 can merge complete files."""
        if self._nc is not None:
            self._nc.close()
            self._nc = None
        if self.world > 1:
            barrier()

    def result(self) -> dict:
        return {}

    def save(self, run_dir: Path, split: str) -> Path:
        """Merge the ranks' files into ``<run_dir>/drivers_<split>.nc``, weeks in split order."""
        path = Path(run_dir) / f"drivers_{split}.nc"
        parts = [self.run_dir / f".drivers_{split}.rank{r}.nc" for r in range(self.world)]
        parts = [p for p in parts if p.is_file()]
        sources = [netCDF4.Dataset(p, "r") for p in parts]
        try:
            where: dict[int, tuple[int, int]] = {}
            for s, src in enumerate(sources):
                for k, ts in enumerate(np.asarray(src["timestep"][:]).tolist()):
                    where[int(ts)] = (s, k)
            self._write(path, sources, where, sorted(where))
        finally:
            for src in sources:
                src.close()
            for p in parts:
                p.unlink()
        return path

    def _write(self, path: Path, sources: list, where: dict[int, tuple[int, int]], order: list[int]) -> None:
        ds = self.dataset
        names = [str(v) for v in ds.variables]
        h, w = ds.crop.shape
        ydim, xdim = ds.dims
        labels = ds.week_labels
        own = getattr(ds, "coord_attrs", {}) or {}
        coords: dict[str, xr.Variable] = {
            "week": _coord("week", ("week",), np.asarray([labels[i] for i in order], dtype=object)),
            "var": _coord("var", ("var",), np.asarray(names, dtype=object)),
            "lag": _coord("lag", ("lag",), np.arange(ds.delta_t, dtype=np.int32)),
        }
        for dim, size, axis in ((ydim, h, "Y"), (xdim, w, "X")):
            if dim in ds.coords:  # the files' own row/column coordinate (north-up, pooled)
                base = COORD_ATTRS[dim] if dim in ("rlat", "rlon") else {
                    "long_name": f"{dim} coordinate of the weekly files", "axis": axis}
                kept = {k: v for k, v in own.get(dim, {}).items() if k in _COORD_KEYS}
                coords[dim] = xr.Variable((dim,), np.asarray(ds.coords[dim], np.float64), attrs={**base, **kept})
            else:
                coords[dim] = _coord(axis.lower(), (dim,), np.arange(size, dtype=np.int32))
        for key in ("lat", "lon"):
            if key in ds.coords:
                coords[key] = _coord(key, (ydim, xdim), np.asarray(ds.coords[key], np.float32))
        spatial = (ydim, xdim)

        def stream() -> Iterable[dict[str, np.ndarray]]:
            for ts in order:
                s, k = where[ts]
                src = sources[s]
                prob = np.asarray(src["drought_prob"][k], np.float32)
                yield {
                    "driver": np.asarray(src["driver"][k]),
                    "drought_prob": prob,
                    "drought": (np.nan_to_num(prob, nan=0.0) >= self.threshold).astype(np.uint8),
                    "drought_true": np.asarray(src["drought_true"][k]),
                    "valid": np.asarray(src["valid"][k]),
                }

        maps = ("week", *spatial)
        streamed = {
            "driver": (("week", "var", "lag", *spatial), np.uint8, variable_attrs("driver")),
            "drought": (maps, np.uint8, variable_attrs("drought", self.threshold)),
            "drought_prob": (maps, np.float32, variable_attrs("drought_prob")),
            "drought_true": (maps, np.uint8, variable_attrs("drought_true")),
            "valid": (maps, np.uint8, variable_attrs("valid", split=self.split)),
        }
        write_prediction_file(
            path,
            coords=coords,
            variables={},
            spatial=spatial,
            attrs={"title": "IDEE drivers of extreme droughts", "split": self.split,
                   "threshold_drought": self.threshold, **self.attrs},
            grid_mapping=getattr(ds, "grid_mapping", None),
            streamed=streamed,
            stream=stream(),
        )
