"""``RealDataset``: the one sample builder behind ``ERA5LandDataset`` and ``CERRADataset``.

The subclasses only say where the files are (a ``RealLayout``); everything else —
index of target weeks, window reading, normalisation, labels, crop, augmentation — is here.
See ``dataset.real_common`` (normalisation, crop) and ``dataset.noaa`` (labels, masks) for
the conventions, and docs/guides/real-data.md for the tree layout.

Sample dict (docs/design/architecture.md): ``x`` [V, 2, T, H, W] float32 (channels = weekly mean
and std, newest first), ``mask_extreme`` / ``mask_extreme_loss`` / ``mask_valid`` [H, W]
float32, ``timestep`` int64 (index of the target week in the split), ``week`` ``"YYYYWWW"``.
There is no ``mask_anomaly``: real data have no ground-truth drivers and no loss or metric of
real data reads it (zeros would double the sample size: 50 MB at full EUR-11 size).

With ``--store`` the same samples come from one zarr store written by ``python -m
dataset.to_zarr`` (``dataset/zarr_store.py``): the index, grid, masks and climatology are read
from the store instead of the tree, and everything from the raw values on is shared.

Memory per process (DataLoader worker): the sample, a cache of about one window of finished
input weeks (<= X_CACHE_BYTES) and a cache of climatology weeks (<= CLIM_CACHE_BYTES); nothing
else grows with the data.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dataset import noaa
from dataset.real_common import (
    N_WEEKS,
    DataLayoutError,
    check_file,
    get_var,
    label_index,
    list_weekly_files,
    map_fields,
    north_up_flip,
    open_nc,
    read_fields,
    read_labels,
    read_var,
    rows_south_to_north,
    shared_handle,
    week_label,
    window_weeks,
)
from dataset.real_samples import (
    MISSING,
    Crop,
    WeekCache,
    apply_flips,
    draw_flips,
    parse_statistics,
    read_statistics,
)
from dataset.zarr_store import ReanalysisStore, wait

X_CACHE_BYTES = 256 * 2**20  # per process: finished input weeks (about one window)
CLIM_CACHE_BYTES = 384 * 2**20  # per process: climatology weeks (all 52 for a 200 x 200 crop of 9 variables)
LAT_NAMES = ("lat", "latitude")
LON_NAMES = ("lon", "longitude")


@dataclass(frozen=True)
class RealLayout:
    """Where one real data set keeps its files (paths are resolved by the subclass)."""

    name: str  # for messages, e.g. "ERA5-Land EUR-11"
    root: Path  # holds <YYYY>/<YYYY><WWW>.nc
    root_option: str  # config option that set ``root``
    root_noaa: Path  # holds <YYYY>/<...><WWW>.VH.nc
    noaa_option: str
    statistics: Path
    climatology: Path
    lsm: tuple[Path, str]  # (file, variable): land = value > 0.5
    no_vegetation: tuple[Path, str]  # (file, variable): no vegetation = value > 0.5
    # CF grid mapping (variable name, attributes) used when the weekly files carry none
    grid_mapping: tuple[str, dict[str, Any]] | None = None


class RealDataset(Dataset):
    """Weekly real-data samples of one split; reads only the window and crop of each sample."""

    def __init__(self, cfg: Any, split: str, layout: RealLayout) -> None:
        if split not in noaa.SPLITS:
            raise ValueError(f"split must be one of {noaa.SPLITS}, got {split!r}")
        self.split, self.layout = split, layout
        self.variables = list(cfg.variables)
        self.delta_t = int(cfg.delta_t)
        self.threshold, self.threshold_anomaly, self.alpha = cfg.threshold, cfg.threshold_anomaly, cfg.alpha
        self.is_norm, self.is_clima_scale = cfg.is_norm, cfg.is_clima_scale
        self.nan_fill, self.clip_value = cfg.nan_fill, cfg.clip_value
        self.augment = split == "train" and cfg.is_aug
        years_option = f"years_{split}"
        self.years = sorted(int(y) for y in getattr(cfg, years_option))
        if not self.years:
            raise DataLayoutError(f"option '{years_option}' is empty")
        twice = sorted({y for y in self.years if self.years.count(y) > 1})
        if twice:  # each would be a second copy of its 52 samples: a typo for another year
            raise DataLayoutError(f"option '{years_option}' lists {twice} more than once; list each year once")
        store = getattr(cfg, "store", None)
        self.store = ReanalysisStore(store, layout.name) if store else None
        if self.store is None:
            for path, opt in ((layout.root, layout.root_option), (layout.root_noaa, layout.noaa_option)):
                if not path.is_dir():
                    raise DataLayoutError(f"{layout.name}: folder {path} does not exist (option '{opt}')")
            self._climate, self._noaa = self._index_years(years_option)
        else:
            self._climate, self._noaa = self._index_store(years_option)
        self.targets = self._index_targets()
        if not self.targets:
            raise DataLayoutError(
                f"{layout.name}: no target week with NOAA data and a complete {self.delta_t}-week window "
                f"in option '{years_option}' = {self.years}"
            )
        if self.store is None:
            self._inspect_first_file(cfg)
            self.land = noaa.read_static_mask(*layout.lsm, self.crop, "land-sea mask")
            self.no_veg = noaa.read_static_mask(*layout.no_vegetation, self.crop, "no-vegetation mask")
            self._check_files()
        else:
            self._inspect_store(cfg)
        self._raw = _RawBuffers()
        h, w = self.crop.shape
        full = (self.crop.rows.stop - self.crop.rows.start) * (self.crop.cols.stop - self.crop.cols.start)
        n_var = len(self.variables)
        self._x_cache = WeekCache(min(self.delta_t + 1, X_CACHE_BYTES // (n_var * 2 * h * w * 4)), recycle=True)
        self._clim_cache = WeekCache(min(N_WEEKS, CLIM_CACHE_BYTES // (n_var * 4 * full * 4)))
        self._noaa_cache = WeekCache(self.delta_t + 1)
        if self.is_norm and self.is_clima_scale:
            self._inspect_climatology()
        elif self.is_norm and self.store is not None:
            text = self.store.attrs.get("statistics_json")
            if not text:
                raise DataLayoutError(f"option 'store': {self.store.store} holds no statistics (needed when "
                                      "'is_clima_scale' is false); the tree it was written from had none")
            self._global = parse_statistics(json.loads(text), self.variables, f"{self.store.store} (statistics)")
        elif self.is_norm:
            self._global = read_statistics(layout.statistics, self.variables)

    @classmethod
    def from_config(cls, cfg: Any, split: str) -> RealDataset:
        return cls(cfg, split)  # type: ignore[call-arg]  # subclasses take (cfg, split)

    # ---------------------------------------------------------------- index ------------
    def _index_years(self, years_option: str) -> tuple[dict[int, dict[int, Path]], dict[int, dict[int, list[Path]]]]:
        """List the year folders once: climate files of the split years (all 52 weeks required)
        and of the year before each (optional: windows of the first weeks need it)."""
        lay = self.layout
        climate: dict[int, dict[int, Path]] = {}
        noaa_idx: dict[int, dict[int, list[Path]]] = {}
        for y in self.years:
            d = lay.root / f"{y:04d}"
            if not d.is_dir():
                raise DataLayoutError(
                    f"{lay.name}: year {y} of option '{years_option}' is missing: no folder {d} "
                    f"(option '{lay.root_option}')"
                )
            climate[y] = list_weekly_files(d)
            missing = [w for w in range(1, N_WEEKS + 1) if w not in climate[y]]
            if missing:
                raise DataLayoutError(
                    f"{lay.name}: {d} lacks weekly files for weeks {missing} (expected {y:04d}<WWW>.nc)"
                )
            nd = lay.root_noaa / f"{y:04d}"
            if not nd.is_dir():
                raise DataLayoutError(
                    f"{lay.name}: NOAA year {y} of option '{years_option}' is missing: no folder {nd} "
                    f"(option '{lay.noaa_option}')"
                )
            noaa_idx[y] = noaa.index_noaa_year(nd)
        for y in self.years:
            p = y - 1
            if p in climate or not (lay.root / f"{p:04d}").is_dir():
                continue
            climate[p] = list_weekly_files(lay.root / f"{p:04d}")
            nd = lay.root_noaa / f"{p:04d}"
            noaa_idx[p] = noaa.index_noaa_year(nd) if nd.is_dir() else {}
        return climate, noaa_idx

    def _index_targets(self) -> list[tuple[int, int]]:
        """Target weeks in chronological order: NOAA data at the week and a full climate window.

        A window reaching into an absent previous year drops the target; a present folder that
        lacks a needed week is an error naming the file."""
        out = []
        for y in self.years:
            for w in range(1, N_WEEKS + 1):
                if not self._noaa[y].get(w):
                    continue
                ok = True
                for yy, ww in window_weeks(y, w, self.delta_t):
                    if yy not in self._climate:
                        ok = False
                        break
                    if ww not in self._climate[yy]:
                        path = self.layout.root / f"{yy:04d}" / f"{week_label(yy, ww)}.nc"
                        if self.store is not None:
                            path = f"week {week_label(yy, ww)} of store {self.store.store}"  # type: ignore[assignment]
                        raise DataLayoutError(
                            f"{self.layout.name}: weekly file {path} is missing "
                            f"(needed by the window of week {week_label(y, w)})"
                        )
                if ok:
                    out.append((y, w))
        return out

    # ---------------------------------------------------------------- zarr store -------
    def _index_store(self, years_option: str) -> tuple[dict[int, dict[int, Any]], dict[int, dict[int, Any]]]:
        """``_index_years`` from the store's time axes: week -> time index, week -> (noaa index, files)."""
        st = self.store
        assert st is not None
        climate: dict[int, dict[int, Any]] = {}
        for (y, w), t in st.time_index.items():
            climate.setdefault(y, {})[w] = t
        noaa_idx: dict[int, dict[int, Any]] = {}
        for (y, w), hit in st.noaa_index.items():
            if hit[1] > 0:
                noaa_idx.setdefault(y, {})[w] = hit
        keep = set(self.years) | {y - 1 for y in self.years}
        for y in self.years:
            if y not in climate:
                have = sorted(climate)
                raise DataLayoutError(
                    f"{self.layout.name}: year {y} of option '{years_option}' is not in option 'store' = "
                    f"{st.store} (it holds {have[0]}..{have[-1]})" if have else f"option 'store': {st.store} is empty"
                )
            missing = [w for w in range(1, N_WEEKS + 1) if w not in climate[y]]
            if missing:
                raise DataLayoutError(f"option 'store': {st.store} lacks weeks {missing} of year {y}")
        return {y: c for y, c in climate.items() if y in keep}, {y: noaa_idx.get(y, {}) for y in climate if y in keep}

    def _inspect_store(self, cfg: Any) -> None:
        """``_inspect_first_file`` and the static masks from the store."""
        st = self.store
        assert st is not None
        self.grid, self.dims = st.grid, st.dims
        for v in self.variables:
            st.array(v)  # the missing-variable error
        self._stat_idx = [0, 1]
        rdim = self.dims[0]
        row_coord = np.asarray(st.group[rdim][:]) if rdim in st.group else None
        flip = rows_south_to_north(row_coord)
        self.crop = Crop.from_options(
            self.grid, cfg.x_min, cfg.x_max, cfg.y_min, cfg.y_max, cfg.window_size, flip, f"store {st.store}"
        )
        variables = {
            n: _Coord(np.asarray(st.group[n][:]), tuple(st.group[n].metadata.dimension_names or ()))
            for n in (*self.dims, *LAT_NAMES, *LON_NAMES)
            if n in st.group
        }
        self.coords = self._read_coords(_Coords(variables))
        self.coord_attrs = dict(st.attrs.get("coord_attrs") or {})
        gm = st.attrs.get("grid_mapping")
        self.grid_mapping = (str(gm[0]), dict(gm[1])) if gm else None
        if self.grid_mapping is None and self.dims == ("rlat", "rlon"):
            self.grid_mapping = self.layout.grid_mapping
        self.land = self._store_mask("static/lsm")
        self.no_veg = self._store_mask("static/no_vegetation")

    def _store_mask(self, name: str) -> np.ndarray:
        """``noaa.read_static_mask`` of a store array (same rule: value > 0.5, NaN = 0, block majority)."""
        crop = self.crop
        a = np.empty((crop.rows.stop - crop.rows.start, crop.cols.stop - crop.cols.start), np.float32)
        wait(self.store.array(name).read((), crop.rows, crop.cols, a))  # type: ignore[union-attr]
        return noaa.static_mask(a, crop)

    def _store_inputs(self, weeks: list[tuple[int, int]]) -> list[np.ndarray]:
        """``read_inputs`` from the store: [V, 2, h, w] per week, every chunk decoded in parallel."""
        st, rows, cols = self.store, self.crop.rows, self.crop.cols
        assert st is not None
        shape = (len(self.variables), 2, rows.stop - rows.start, cols.stop - cols.start)
        out = self._raw.get(len(weeks), shape)
        futures: list[Any] = []
        for buf, (yy, ww) in zip(out, weeks):
            t = self._climate[yy][ww]
            for v, name in enumerate(self.variables):
                futures += st.array(name).read((t, slice(None)), rows, cols, buf[v])
        wait(futures)
        return out

    def _store_climatology(self, weeks: list[int]) -> dict[int, Any]:
        """``climatology_weeks`` from the store: views of an uncompressed climatology, else decoded and cached."""
        st, rows, cols = self.store, self.crop.rows, self.crop.cols
        assert st is not None
        out: dict[int, Any] = {}
        todo = []
        for w in dict.fromkeys(weeks):
            lead = (slice(None), slice(None), w - 1)
            views = [st.array(f"climatology/{v}").view(lead, rows, cols) for v in self.variables]
            if all(x is not None for x in views):
                out[w] = views
            elif (c := self._clim_cache.get(w)) is not None:
                out[w] = c
            else:
                todo.append(w)
        futures: list[Any] = []
        h, w_ = rows.stop - rows.start, cols.stop - cols.start
        for w in todo:
            out[w] = np.empty((len(self.variables), 2, 2, h, w_), np.float32)
            lead = (slice(None), slice(None), w - 1)
            for v, name in enumerate(self.variables):
                futures += st.array(f"climatology/{name}").read(lead, rows, cols, out[w][v])
        wait(futures)
        for w in todo:
            self._clim_cache.put(w, out[w])
        return out

    def _store_noaa_week(self, index: int, n_files: int) -> noaa.NOAAWeek:
        """``noaa.read_noaa_week`` from the store: the week's files are its slots 0..n-1."""
        st, crop = self.store, self.crop
        assert st is not None
        h, w = crop.rows.stop - crop.rows.start, crop.cols.stop - crop.cols.start
        planes = np.empty((n_files, 3, h, w), np.float32)
        futures: list[Any] = []
        for k in range(n_files):
            for j, name in enumerate(("noaa/VCI", "noaa/TCI", "noaa/mask_cold_surface")):
                futures += st.array(name).read((index, k), crop.rows, crop.cols, planes[k, j])
        wait(futures)
        return noaa.noaa_week(list(planes), crop, self.alpha)

    def _inspect_first_file(self, cfg: Any) -> None:
        """Variables, statistic labels, grid, row order and lat/lon from the first weekly file."""
        y, w = self.targets[0]
        path = self._climate[y][w]
        ds = open_nc(path, f"{self.layout.name} weekly file")
        try:
            first = get_var(ds, self.variables[0], path)
            self.grid = (int(first.shape[-2]), int(first.shape[-1]))
            self.dims = tuple(first.dimensions[-2:])
            for v in self.variables:
                var = get_var(ds, v, path)
                if "statistic" not in var.dimensions:
                    raise DataLayoutError(
                        f"{path}: variable '{v}' has dims {var.dimensions}; expected (statistic, "
                        f"{', '.join(self.dims)})"
                    )
                if tuple(var.shape[-2:]) != self.grid:
                    raise DataLayoutError(
                        f"{path}: variable '{v}' has grid {tuple(var.shape[-2:])}, "
                        f"'{self.variables[0]}' has {self.grid}"
                    )
            if "statistic" in ds.variables:
                self._stat_idx = label_index(read_labels(ds, "statistic", path), ("mean", "std"), path, "statistic")
            else:
                warnings.warn(
                    f"{path}: no 'statistic' coordinate; assuming statistic[0] = mean, [1] = std",
                    stacklevel=2,
                )
                self._stat_idx = [0, 1]
            flip = north_up_flip(ds, self.variables[0], path)
            self.crop = Crop.from_options(
                self.grid, cfg.x_min, cfg.x_max, cfg.y_min, cfg.y_max, cfg.window_size, flip, str(path)
            )
            self.coords = self._read_coords(ds)
            self.coord_attrs, self.grid_mapping = self._read_grid_metadata(ds, self.variables[0])
        finally:
            ds.close()
        if self.grid_mapping is None and self.dims == ("rlat", "rlon"):
            self.grid_mapping = self.layout.grid_mapping
        if "lat" not in self.coords:
            ds = open_nc(self.layout.lsm[0], "land-sea mask")
            try:
                self.coords.update({k: v for k, v in self._read_coords(ds).items() if k in ("lat", "lon")})
            finally:
                ds.close()

    def _read_coords(self, ds: Any) -> dict[str, Any]:
        """Sample-grid coordinates: 1-D row/col coordinates and 2-D lat/lon when the file has them."""
        out: dict[str, Any] = {}
        rows, cols = self.crop.rows, self.crop.cols
        rdim, cdim = self.dims
        k = self.crop.k
        if rdim in ds.variables and ds.variables[rdim].ndim == 1:
            r = np.asarray(ds.variables[rdim][rows], np.float64)
            out[rdim] = (r[::-1] if self.crop.flip else r).reshape(-1, k).mean(axis=1)
        if cdim in ds.variables and ds.variables[cdim].ndim == 1:
            out[cdim] = np.asarray(ds.variables[cdim][cols], np.float64).reshape(-1, k).mean(axis=1)
        for key, names in (("lat", LAT_NAMES), ("lon", LON_NAMES)):
            for n in names:
                if n in ds.variables and ds.variables[n].dimensions == self.dims:
                    out[key] = self.crop.pool(self.crop.orient(np.asarray(ds.variables[n][rows, cols], np.float64)))
                    break
        return out

    def _read_grid_metadata(
        self, ds: Any, var_name: str
    ) -> tuple[dict[str, dict[str, Any]], tuple[str, dict[str, Any]] | None]:
        """CF attributes of the row/column coordinates and the grid mapping (name, attributes), if any.

        Prediction files repeat them, so that a rotated-pole or projected grid stays georeferenced.
        """
        attrs = {
            d: {k: ds.variables[d].getncattr(k) for k in ds.variables[d].ncattrs() if not k.startswith("_")}
            for d in self.dims
            if d in ds.variables
        }
        name = getattr(ds.variables[var_name], "grid_mapping", None)
        if name is None:  # a grid-mapping variable that no data variable names
            name = next((n for n, v in ds.variables.items() if "grid_mapping_name" in v.ncattrs()), None)
        if name is None or name not in ds.variables:
            return attrs, None
        gm = ds.variables[name]
        return attrs, (str(name), {k: gm.getncattr(k) for k in gm.ncattrs() if not k.startswith("_")})

    def _check_files(self) -> None:
        """Open every weekly and NOAA file the split's windows read, once, before training: a
        truncated file, a missing variable or another grid is an error naming the file now, not
        in the middle of an epoch (one h5py open per file, ``real_common.check_file``)."""
        lay = self.layout
        climate: dict[Path, None] = {}
        noaa_files: dict[Path, None] = {}
        for y, w in self.targets:
            for yy, ww in window_weeks(y, w, self.delta_t):
                climate[self._climate[yy][ww]] = None
                noaa_files.update(dict.fromkeys(self._noaa.get(yy, {}).get(ww, [])))
        what = f"{lay.name} weekly file (option '{lay.root_option}')"
        for path in climate:
            check_file(path, self.variables, self.grid, what)
        what = f"NOAA weekly file (option '{lay.noaa_option}')"
        for path in noaa_files:
            check_file(path, list(noaa.NOAA_VARIABLES), self.grid, what)

    def _inspect_climatology(self) -> None:
        path = self.layout.climatology
        if self.store is not None:
            if "climatology" not in self.store.group:
                raise DataLayoutError(f"option 'store': {self.store.store} has no climatology group (needed when "
                                      "'is_clima_scale' is true); the tree it was written from had no climatology file")
            for v in self.variables:
                self.store.array(f"climatology/{v}")
            self._clim_week = {w: w - 1 for w in range(1, N_WEEKS + 1)}
            return
        ds = shared_handle(path, "climatology file (needed when 'is_clima_scale' is true)")
        self._clim_idx = {
            "climatology": label_index(read_labels(ds, "climatology", path), ("mean", "std"), path, "climatology"),
            "stat": label_index(read_labels(ds, "stat", path), ("mean", "std"), path, "stat"),
        }
        weeks = list(range(1, N_WEEKS + 1))
        if "week" in ds.variables:
            weeks = [int(v) for v in np.asarray(ds.variables["week"][:]).tolist()]
        self._clim_week = {w: i for i, w in enumerate(weeks)}
        if sorted(self._clim_week) != list(range(1, N_WEEKS + 1)):
            raise DataLayoutError(f"{path}: coordinate 'week' must hold 1..52, got {weeks}")
        for v in self.variables:
            var = get_var(ds, v, path)
            need = {"climatology", "stat", "week"}
            if not need <= set(var.dimensions) or tuple(var.shape[-2:]) != self.grid:
                raise DataLayoutError(
                    f"{path}: variable '{v}' has dims {var.dimensions} shape {var.shape}; "
                    f"expected (climatology, stat, week, {', '.join(self.dims)}) on grid {self.grid}"
                )

    # ---------------------------------------------------------------- samples ----------
    def __len__(self) -> int:
        return len(self.targets)

    def _climatology(self) -> Any:
        """The climatology handle of this process (opened on first use, once per process and file)."""
        return shared_handle(self.layout.climatology, "climatology file")

    def read_inputs(self, weeks: list[tuple[int, int]]) -> list[list[np.ndarray]]:
        """Raw [2, h, w] (mean, std; file row order) per week and variable: read-only views of
        memory-mapped files, or arrays read through netCDF4 (each weekly file opened once)."""
        if self.store is not None:
            return self._store_inputs(weeks)  # type: ignore[return-value]  # [V, 2, h, w] per week
        rows, cols = self.crop.rows, self.crop.cols
        what, sel = f"{self.layout.name} weekly file", {"statistic": self._stat_idx}
        return [
            read_fields(self._climate[yy][ww], what, self.variables, self.grid, rows, cols, sel, writable=False)
            for yy, ww in weeks
        ]

    def climatology_weeks(self, weeks: list[int]) -> dict[int, Any]:
        """week of year -> per variable [2 (clim mean, std), 2 (stat mean, std), h, w] (file row order).

        Views of the memory-mapped file when it allows (no copy, pages shared by all workers);
        else read through one handle per process and cached (every year of a split shares the
        weeks), missing weeks with one call per variable."""
        if self.store is not None:
            return self._store_climatology(weeks)
        path, idx = self.layout.climatology, self._clim_idx
        rows, cols = self.crop.rows, self.crop.cols
        out: dict[int, Any] = {}
        for w in dict.fromkeys(weeks):
            sel = {"climatology": idx["climatology"], "stat": idx["stat"], "week": self._clim_week[w]}
            views = map_fields(path, self.variables, self.grid, rows, cols, sel, populate=True)
            if views is None:
                break
            out[w] = views
        out.update({w: c for w in dict.fromkeys(weeks) if w not in out and (c := self._clim_cache.get(w)) is not None})
        missing = sorted(w for w in dict.fromkeys(weeks) if w not in out)
        if missing:
            ds = self._climatology()
            sel = {
                "climatology": idx["climatology"],
                "stat": idx["stat"],
                "week": [self._clim_week[w] for w in missing],
            }
            h, w_ = rows.stop - rows.start, cols.stop - cols.start
            for w in missing:
                out[w] = np.empty((len(self.variables), 2, 2, h, w_), np.float32)
            for v, name in enumerate(self.variables):
                c = read_var(ds, name, path, self.grid, rows, cols, sel)  # [2, 2, n, h, w]
                for j, w in enumerate(missing):
                    out[w][v] = c[:, :, j]
            for w in missing:
                self._clim_cache.put(w, out[w])
        return out

    def normalise(self, raw: list[list[np.ndarray]], weeks: list[tuple[int, int]]) -> list[np.ndarray]:
        """Per week [V, 2, h, w] float32 (file row order) from ``read_inputs``: climatology (per
        pixel, week of year, statistic) or global normalisation, then clip; written straight
        into recycled buffers."""
        rows, cols = self.crop.rows, self.crop.cols
        shape = (len(self.variables), 2, rows.stop - rows.start, cols.stop - cols.start)
        out = [self._x_cache.spare(shape) for _ in weeks]
        if not self.is_norm:
            for x, planes in zip(out, raw):
                for v, a in enumerate(planes):
                    x[v] = a
            return out
        clim = self.climatology_weeks([w for _, w in weeks]) if self.is_clima_scale else None
        with np.errstate(invalid="ignore", divide="ignore"):
            for x, planes, (_, w) in zip(out, raw, weeks):
                for v, a in enumerate(planes):
                    if clim is not None:
                        offset, scale = clim[w][v][0], clim[w][v][1]
                    else:
                        offset, scale = (s[:, None, None] for s in self._global[self.variables[v]])
                    np.subtract(a, offset, out=x[v])
                    np.divide(x[v], scale, out=x[v])
                torch.from_numpy(x).clamp_(-self.clip_value, self.clip_value)  # NaN stays NaN
        return out

    def input_weeks(self, window: list[tuple[int, int]]) -> list[np.ndarray]:
        """Per window week: [V, 2, H, W] normalised, clipped, pooled, NaN filled, *file row order*.

        Finished weeks are cached per process (about one window): samples read in order
        (evaluation) share T-1 weeks with their neighbour, so each weekly file is read about
        once per pass instead of T times."""
        have = {yw: c for yw in window if (c := self._x_cache.get(yw)) is not None}
        missing = [yw for yw in dict.fromkeys(window) if yw not in have]
        if missing:
            inf = float("inf")
            for yw, fine in zip(missing, self.normalise(self.read_inputs(missing), missing)):
                x = self.crop.pool(fine)
                if x is not fine:
                    self._x_cache.give_back(fine)
                torch.from_numpy(x).nan_to_num_(nan=self.nan_fill, posinf=inf, neginf=-inf)
                have[yw] = x
        for yw in reversed(window):  # oldest week first: it leaves the cache first
            self._x_cache.put(yw, have[yw])
        return [have[yw] for yw in window]

    def noaa_week(self, year: int, week: int) -> noaa.NOAAWeek | None:
        """VHI and cold flags of a week on the sample grid (None without NOAA data); cached like inputs."""
        key = (year, week)
        value = self._noaa_cache.get(key, MISSING)
        if value is MISSING:
            files = self._noaa.get(year, {}).get(week)
            if files and self.store is not None:
                value = self._store_noaa_week(*files)
            else:
                value = noaa.read_noaa_week(files, self.crop, self.alpha) if files else None
        self._noaa_cache.put(key, value)
        return value

    def __getitem__(self, i: int) -> dict[str, Any]:
        year, week = self.targets[i]
        window = window_weeks(year, week, self.delta_t)
        flip_y, flip_x = draw_flips() if self.augment else (False, False)
        # one copy per week into the sample: north-up orientation and augmentation in the same view
        ys = slice(None, None, -1) if (self.crop.flip != flip_y) else slice(None)
        xs = slice(None, None, -1) if flip_x else slice(None)
        parts = self.input_weeks(window)
        v, c, h, w = parts[0].shape
        x = np.empty((v, c, len(window), h, w), np.float32)
        for t, part in enumerate(parts):
            x[:, :, t] = part[..., ys, xs]
        weeks = [self.noaa_week(yy, ww) for yy, ww in reversed(window)][::-1]
        target = weeks[0]
        assert target is not None  # targets are indexed only where NOAA data exist
        masks = [
            noaa.drought_label(target, self.land, self.no_veg, self.threshold),
            noaa.anomaly_loss_mask(weeks, self.threshold_anomaly),
            noaa.valid_mask(self.split, target, self.land, self.no_veg),
        ]
        extreme, loss, valid = (torch.from_numpy(np.ascontiguousarray(apply_flips(m, flip_y, flip_x))) for m in masks)
        return {
            "x": torch.from_numpy(x),
            "mask_extreme": extreme,
            "mask_extreme_loss": loss,
            "mask_valid": valid,
            "timestep": torch.tensor(i, dtype=torch.int64),
            "week": week_label(year, week),
        }

    # ---------------------------------------------------------------- helpers ----------
    @property
    def week_labels(self) -> list[str]:
        """``YYYYWWW`` of every sample, in index (= ``timestep``) order."""
        return [week_label(y, w) for y, w in self.targets]

    def __repr__(self) -> str:
        h, w = self.crop.shape
        return (
            f"{type(self).__name__}({self.layout.name}, split={self.split}, samples={len(self)}, "
            f"V={len(self.variables)}, T={self.delta_t}, HxW={h}x{w}, grid={self.grid})"
        )


class _RawBuffers:
    """Raw-week buffers of one process, reused by every store ``read_inputs`` call (their contents
    are dead once ``normalise`` has run): no page faults on fresh memory per sample. Never pickled
    into DataLoader workers (each allocates its own)."""

    def __init__(self) -> None:
        self.pid, self.bufs = -1, []

    def get(self, n: int, shape: tuple[int, ...]) -> list[np.ndarray]:
        import os

        if self.pid != os.getpid() or (self.bufs and self.bufs[0].shape != shape):
            self.pid, self.bufs = os.getpid(), []
        while len(self.bufs) < n:
            self.bufs.append(np.empty(shape, np.float32))
        return self.bufs[:n]

    def __getstate__(self) -> dict[str, Any]:
        return {"pid": -1, "bufs": []}


class _Coord:
    """A store coordinate seen as a netCDF4 variable by ``RealDataset._read_coords``."""

    def __init__(self, values: np.ndarray, dims: tuple[str, ...]) -> None:
        self.values, self.dimensions, self.ndim = values, dims, values.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.values[key]


class _Coords:
    def __init__(self, variables: dict[str, _Coord]) -> None:
        self.variables = variables
