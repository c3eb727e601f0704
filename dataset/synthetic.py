"""Loader for the published synthetic benchmark format (docs/reference/file-formats.md).

One folder ``<root>`` per experiment ``<exp>`` (= the folder's name) holds
``datacube_<exp>.nc``, ``climatology_<exp>.nc``, ``statistic_<exp>.json`` and
``coupling_matrix_<exp>.npy``. The dataset keeps only the selected time split and
spatial crop in memory: inputs as float32, normalised once at load time; masks as
uint8. Items are built by slicing (no copies of the cube per sample).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

__all__ = ["SyntheticDataset"]

WEEKS_PER_YEAR = 52
_READ_CHUNK = 128  # weeks read per netCDF call: bounds the temporary if a file stores float64


def _open(path: Path) -> xr.Dataset:
    """Lazy open; no time decoding because synthetic ``time`` labels are plain 1-based week numbers."""
    try:
        return xr.open_dataset(path, decode_times=False, decode_timedelta=False)
    except Exception as err:  # netCDF4/h5 errors vary; say which file
        raise ValueError(f"{path}: cannot be read as netCDF ({err})") from err


def _names(values: np.ndarray) -> list[str]:
    """Coordinate labels as str (netCDF string coords may come back as bytes)."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _check_dims(da: xr.DataArray, want: tuple[str, ...], path: Path) -> xr.DataArray:
    """Accept the expected dims in any order (transposed lazily), otherwise name the problem."""
    if set(da.dims) != set(want) or len(da.dims) != len(want):
        raise ValueError(f"{path}: variable '{da.name}' has dims {da.dims}; expected {want} (in any order)")
    return da.transpose(*want)


def _week_ranges(weeks: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``: a short list of weeks for a message."""
    parts: list[str] = []
    for w in sorted(weeks):
        if parts and parts[-1][1] == w - 1:
            parts[-1][1] = w
        else:
            parts.append([w, w])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in parts)


def _missing_root(root: Path, what: str) -> str:
    """One line for a benchmark folder that is not there: what is wrong and how to make one."""
    if root.exists():
        return f"{what} {root} is a file, not a benchmark folder; pass the folder that holds datacube_<name>.nc"
    return (f"{what} {root} does not exist; generate a benchmark with `python -m dataset.generate_synthetic "
            f"--preset tiny --out {root}` (or --preset small), or pass the folder of the published one")


class SyntheticDataset(Dataset):
    """Samples of a synthetic benchmark experiment, newest week first.

    Item ``i`` covers the split's weeks ``i .. i+T-1`` (T = ``delta_t``) and is the dict
    of docs/design/architecture.md: ``x`` [V, 1, T, H, W] float32, ``mask_extreme`` [H, W]
    (extreme == 1 at the newest week), ``mask_extreme_loss`` [H, W] (any class 1..3 in
    the window), ``mask_anomaly`` [V, T, H, W] (``anomaly_extreme``, binarised) and
    ``timestep`` (int64 time label of the newest week).

    Normalisation (``is_norm``): with ``is_clima_scale`` per pixel and week of year,
    ``(x - median[w]) / std[w]`` with ``w = (t - 1) % 52`` (climatology week label
    ``w + 1``); otherwise global ``(x - median_v) / std_v`` from the JSON. A standard
    deviation of exactly 0 is replaced by 1 (the value is only centred) so that a
    constant pixel gives finite, meaningful numbers instead of inf/NaN. Normalised
    values are clipped to ``[-clip_value, clip_value]``; NaN (missing data, or a NaN
    statistic) becomes ``nan_fill`` in every case. A climatology week of year without any
    statistic (a training period shorter than a year) is an error, a NaN statistic where the
    data have values a warning above 1 % of the split. Without ``is_norm`` raw values are
    kept (no clipping), NaN still filled.

    Augmentation (``is_aug``, training): with p = 0.5 a 180-degree rotation, then with
    p = 0.5 a flip of x (last axis) or y (second-to-last), each with p = 0.5; the same
    transform is applied to ``x`` and every mask. Draws use torch's RNG (three numbers
    per item), so ``torch.manual_seed`` and DataLoader worker seeding apply.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        times: tuple[int, int] | None = None,
        variables: Sequence[str] | None = None,
        delta_t: int = 8,
        x_min: int = 0,
        x_max: int | None = None,
        y_min: int = 0,
        y_max: int | None = None,
        is_norm: bool = True,
        is_clima_scale: bool = True,
        is_aug: bool = False,
        nan_fill: float = 0.0,
        clip_value: float = 10.0,
        times_option: str = "times",
    ) -> None:
        self.root = Path(root)
        self.times_option = times_option  # how messages name ``times`` (from_config: 'times_<split>')
        if not self.root.is_dir():
            raise FileNotFoundError(_missing_root(self.root, "synthetic benchmark folder"))
        # abspath (not resolve): a symlinked folder keeps the name it is used under
        self.exp = Path(os.path.abspath(self.root)).name
        self.files = {
            "datacube": self.root / f"datacube_{self.exp}.nc",
            "climatology": self.root / f"climatology_{self.exp}.nc",
            "statistic": self.root / f"statistic_{self.exp}.json",
            "coupling_matrix": self.root / f"coupling_matrix_{self.exp}.npy",
        }
        if int(delta_t) < 1:
            raise ValueError(f"option 'delta_t' is {delta_t}; must be >= 1")
        self.delta_t = int(delta_t)
        self.is_norm = bool(is_norm)
        self.is_clima_scale = bool(is_clima_scale)
        self.is_aug = bool(is_aug)
        self.nan_fill = float(nan_fill)
        self.clip_value = float(clip_value)

        self.warnings: list[str] = []  # legal but suspicious input, logged by the engine
        self._load_cube(times, variables, x_min, x_max, y_min, y_max)
        self._check_missing()
        if self.is_norm:
            if self.is_clima_scale:
                self._normalise_climatology()
            else:
                self._normalise_global()
            np.clip(self._x, -self.clip_value, self.clip_value, out=self._x)
        for xv in self._x:  # per variable: the NaN mask temporary stays small
            np.copyto(xv, np.float32(self.nan_fill), where=np.isnan(xv))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: Any, split: str) -> SyntheticDataset:
        """Dataset of one split: times from ``cfg.times_<split>``; augmentation only for train."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split {split!r} is not one of train, val, test")
        if not Path(cfg.root_synthetic).is_dir():  # named by the option the user set
            raise FileNotFoundError(_missing_root(Path(cfg.root_synthetic), "option 'root_synthetic':"))
        return cls(
            root=cfg.root_synthetic,
            times=tuple(getattr(cfg, f"times_{split}")),
            variables=list(cfg.variables),
            delta_t=cfg.delta_t,
            x_min=cfg.x_min,
            x_max=cfg.x_max,
            y_min=cfg.y_min,
            y_max=cfg.y_max,
            is_norm=cfg.is_norm,
            is_clima_scale=cfg.is_clima_scale,
            is_aug=bool(cfg.is_aug) and split == "train",
            nan_fill=cfg.nan_fill,
            clip_value=cfg.clip_value,
            times_option=f"times_{split}",
        )

    def _load_cube(
        self,
        times: tuple[int, int] | None,
        variables: Sequence[str] | None,
        x_min: int,
        x_max: int | None,
        y_min: int,
        y_max: int | None,
    ) -> None:
        """Select split and crop lazily, then read only that part (float32 inputs, uint8 masks)."""
        path = self.files["datacube"]
        if not path.is_file():
            raise FileNotFoundError(self._missing_cube(path))
        with _open(path) as ds:
            for name in ("time", "y", "x"):
                if name not in ds.sizes:
                    raise ValueError(f"{path}: no '{name}' dimension (dims: {dict(ds.sizes)})")
            if "var" not in ds.coords:
                raise ValueError(f"{path}: no 'var' coordinate naming the variables of 'anomaly_extreme'")
            file_vars = _names(ds["var"].values)
            data_vars = [v for v in file_vars if v in ds.data_vars]
            if variables is None:
                variables = data_vars
            variables = [str(v) for v in variables]
            if not variables:
                raise ValueError(f"{path}: no variables selected")
            missing = [v for v in variables if v not in ds.data_vars or v not in file_vars]
            if missing:
                raise ValueError(
                    f"{path}: variable(s) {', '.join(missing)} not in the file; it has {', '.join(data_vars)}: "
                    "leave them out of --variables (and set --in_channels_dynamic to the number left), or use "
                    "a benchmark that has them"
                )
            self.variables = variables
            self._var_index = [file_vars.index(v) for v in variables]  # rows of anomaly_extreme / coupling

            # ---- time, by label (inclusive)
            labels = np.asarray(ds["time"].values) if "time" in ds.coords else None
            if labels is None or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
                raise ValueError(f"{path}: 'time' coordinate must be 1-D integer week labels (got {labels!r:.80})")
            if labels.size == 0:
                raise ValueError(f"{path}: 'time' coordinate is empty")
            units = str(ds["time"].attrs.get("units", ""))
            if "since" in units:
                raise ValueError(
                    f"{path}: 'time' is a time stamp ({units!r}); benchmark cubes label weeks 1, 2, ... "
                    "(the week of year is (label - 1) % 52 + 1): relabel 'time' as week numbers"
                )
            if labels.size and int(labels.min()) < 1:
                raise ValueError(
                    f"{path}: 'time' labels start at {int(labels.min())}; benchmark weeks are numbered from 1 "
                    "and the week of year is taken as (label - 1) % 52 + 1, so every week would be normalised "
                    "against the wrong climatology week: renumber 'time' from 1 (e.g. ds['time'] = ds['time'] + 1)"
                )
            lo, hi = int(labels[0]), int(labels[-1])
            if times is None:
                times = (lo, hi)
            t0, t1 = int(times[0]), int(times[1])
            if t0 > t1:
                raise ValueError(f"{path}: times ({t0}, {t1}) are reversed; need start <= end")
            if t0 < labels.min() or t1 > labels.max():
                raise ValueError(self._times_outside(path, (t0, t1), labels, ds.attrs))
            pos = np.nonzero((labels >= t0) & (labels <= t1))[0]
            sel = labels[pos]
            if pos.size != t1 - t0 + 1 or np.any(np.diff(pos) != 1) or np.any(np.diff(sel) != 1):
                raise ValueError(
                    f"{path}: 'time' labels {t0}..{t1} are not consecutive weeks in the file (gaps or unsorted)"
                )
            n_times = int(pos.size)
            if n_times < self.delta_t:
                raise ValueError(
                    f"{path}: times ({t0}, {t1}) select {n_times} weeks, fewer than delta_t = {self.delta_t}"
                )
            self.time_labels = sel.astype(np.int64)
            tsl = slice(int(pos[0]), int(pos[-1]) + 1)

            # ---- space, by position
            H, W = int(ds.sizes["y"]), int(ds.sizes["x"])
            x_max = W if x_max is None else int(x_max)
            y_max = H if y_max is None else int(y_max)
            x_min, y_min = int(x_min), int(y_min)
            for lo_, hi_, n, what in ((x_min, x_max, W, "x"), (y_min, y_max, H, "y")):
                if not 0 <= lo_ < hi_ <= n:
                    raise ValueError(
                        f"options '{what}_min' = {lo_}, '{what}_max' = {hi_} cut outside the grid of {path} "
                        f"((y, x) = ({H}, {W})): need 0 <= {what}_min < {what}_max <= {n}, e.g. --{what}_max {n}; "
                        "a benchmark of another preset than the configuration's has another grid"
                    )
            self.grid_shape = (H, W)
            self.y = np.arange(y_min, y_max)
            self.x = np.arange(x_min, x_max)
            ysl, xsl = slice(y_min, y_max), slice(x_min, x_max)
            self._crop = (ysl, xsl)
            h, w = y_max - y_min, x_max - x_min

            # ---- arrays
            V = len(variables)
            self._x = np.empty((V, n_times, h, w), dtype=np.float32)
            for i, name in enumerate(variables):
                da = _check_dims(ds[name], ("time", "y", "x"), path)
                self._read(da, self._x[i], tsl, ysl, xsl)
            ae = (
                _check_dims(ds["anomaly_extreme"], ("var", "time", "y", "x"), path)
                if ("anomaly_extreme" in ds.data_vars)
                else None
            )
            if ae is None:
                raise ValueError(f"{path}: no variable 'anomaly_extreme' (ground-truth drivers)")
            if ae.sizes["var"] != len(file_vars):
                raise ValueError(
                    f"{path}: 'anomaly_extreme' has {ae.sizes['var']} variables but the 'var' coordinate "
                    f"has {len(file_vars)}"
                )
            self._anomaly = np.empty((V, n_times, h, w), dtype=np.uint8)
            for i, k in enumerate(self._var_index):
                self._read(ae.isel(var=k), self._anomaly[i], tsl, ysl, xsl, binary=True)
            if "extreme" not in ds.data_vars:
                raise ValueError(f"{path}: no variable 'extreme' (extreme classes 0..3)")
            self._extreme = np.empty((n_times, h, w), dtype=np.uint8)
            self._read(_check_dims(ds["extreme"], ("time", "y", "x"), path), self._extreme, tsl, ysl, xsl)

            self.latitude = self._coord(ds, "latitude", ysl, xsl)
            self.longitude = self._coord(ds, "longitude", ysl, xsl)
            self.attrs = dict(ds.attrs)

    @staticmethod
    def _read(da: xr.DataArray, out: np.ndarray, tsl: slice, ysl: slice, xsl: slice, binary: bool = False) -> None:
        """Copy ``da[tsl, ysl, xsl]`` into ``out`` in time chunks (only those bytes are read from disk)."""
        da = da.isel(y=ysl, x=xsl)
        start = tsl.start
        for s in range(0, out.shape[0], _READ_CHUNK):
            e = min(s + _READ_CHUNK, out.shape[0])
            block = da.isel(time=slice(start + s, start + e)).values
            if binary:  # decoded masks may come back as float (with NaN) if a _FillValue was set
                out[s:e] = np.nan_to_num(block, nan=0.0) != 0
            elif out.dtype == np.uint8 and block.dtype.kind == "f":
                out[s:e] = np.nan_to_num(block, nan=0.0)
            else:
                out[s:e] = block

    @staticmethod
    def _coord(ds: xr.Dataset, name: str, ysl: slice, xsl: slice) -> np.ndarray | None:
        if name not in ds.variables:
            return None
        da = ds[name]
        idx = {d: s for d, s in (("y", ysl), ("x", xsl)) if d in da.dims}
        return np.asarray(da.isel(idx).values, dtype=np.float32)

    def _missing_cube(self, path: Path) -> str:
        """No ``datacube_<folder name>.nc``: a renamed folder still holds the cube under its old name."""
        others = sorted(f.name for f in self.root.glob("datacube_*.nc"))
        if others:
            old = others[0][len("datacube_") : -len(".nc")]
            return (f"datacube file {path} does not exist, but {self.root} holds {', '.join(others)}: the files are "
                    f"named after their folder, so rename the folder back to '{old}' (or pass the folder it came from)")
        return (f"datacube file {path} does not exist (expected in folder {self.root}); generate a benchmark there "
                f"with `python -m dataset.generate_synthetic --out {self.root}` or pass a benchmark folder")

    def _times_outside(self, path: Path, times: tuple[int, int], labels: np.ndarray, attrs: dict) -> str:
        """Weeks beyond the cube: name the option, the cube's weeks and, when recorded, its own splits."""
        own = [f"{k} {attrs[k]}" for k in ("times_train", "times_val", "times_test") if k in attrs]
        hint = f" (it was generated with {', '.join(own)})" if own else ""
        return (f"option '{self.times_option}' = {times[0]} {times[1]} is outside the weeks of {path}, "
                f"{int(labels.min())}..{int(labels.max())}{hint}: give weeks inside the cube; a benchmark of "
                "another preset than the configuration's has other weeks")

    def _check_missing(self) -> None:
        """A variable that is NaN everywhere is an error; more than 1 % NaN is a warning with the share."""
        path = self.files["datacube"]
        where = (
            f"weeks {self.time_labels[0]}-{self.time_labels[-1]}, y {self.y[0]}-{self.y[-1]}, "
            f"x {self.x[0]}-{self.x[-1]}"
        )
        for name, xv in zip(self.variables, self._x, strict=True):
            share = float(np.isnan(xv).mean())
            if share == 1.0:
                raise ValueError(
                    f"{path}: variable '{name}' is NaN everywhere in {where}; the model would see a constant: "
                    "fix the file or leave the variable out of --variables (and --in_channels_dynamic)"
                )
            if share > 0.01:
                self.warnings.append(
                    f"{path}: variable '{name}' is {100 * share:.1f} % NaN in {where}; "
                    f"those values become nan_fill = {self.nan_fill:g} after normalisation"
                )

    # ------------------------------------------------------------------ normalisation
    def _normalise_climatology(self) -> None:
        """In place per variable: (x - median[week]) / std[week], week grouped to keep temporaries small."""
        path = self.files["climatology"]
        if not path.is_file():
            raise FileNotFoundError(
                f"climatology file {path} does not exist (needed by is_norm with is_clima_scale): copy it from "
                "the benchmark's source, regenerate the benchmark, or pass --is_clima_scale false (global "
                "statistics of the statistic file)"
            )
        weeks = (self.time_labels - 1) % WEEKS_PER_YEAR + 1  # climatology week labels 1..52
        ysl, xsl = self._crop
        with _open(path) as ds:
            if "climatology" not in ds.coords:
                raise ValueError(f"{path}: no 'climatology' coordinate (expected min, max, mean, median, std)")
            stats = _names(ds["climatology"].values)
            for s in ("median", "std"):
                if s not in stats:
                    raise ValueError(f"{path}: 'climatology' coordinate has {stats}; '{s}' is missing")
            if "time" in ds.coords:
                clim_weeks = [int(t) for t in np.asarray(ds["time"].values)]
            elif "time" in ds.sizes:
                clim_weeks = list(range(1, ds.sizes["time"] + 1))
            else:
                raise ValueError(f"{path}: no 'time' (week of year) dimension")
            need = sorted(set(weeks.tolist()) - set(clim_weeks))
            if need:
                raise ValueError(f"{path}: climatology weeks {need} missing (file has weeks {clim_weeks})")
            if (ds.sizes.get("y"), ds.sizes.get("x")) != self.grid_shape:
                raise ValueError(
                    f"{path}: grid (y, x) = ({ds.sizes.get('y')}, {ds.sizes.get('x')}) differs from the "
                    f"datacube's {self.grid_shape}"
                )
            for i, name in enumerate(self.variables):
                if name not in ds.data_vars:
                    raise ValueError(
                        f"{path}: variable '{name}' not in the file; it has {', '.join(map(str, ds.data_vars))}: "
                        "use the climatology made with this datacube, or pass --is_clima_scale false"
                    )
                da = _check_dims(ds[name], ("climatology", "time", "y", "x"), path).isel(y=ysl, x=xsl)
                med = np.asarray(da.isel(climatology=stats.index("median")).values, dtype=np.float32)
                std = np.asarray(da.isel(climatology=stats.index("std")).values, dtype=np.float32)
                std = np.where(std == 0, np.float32(1), std)
                xv = self._x[i]
                self._check_climatology(name, xv, weeks, med, std, clim_weeks)
                for wk in np.unique(weeks):
                    k = clim_weeks.index(int(wk))
                    idx = np.nonzero(weeks == wk)[0]
                    xv[idx] = (xv[idx] - med[k]) / std[k]

    def _check_climatology(self, name: str, xv: np.ndarray, weeks: np.ndarray, med: np.ndarray,
                           std: np.ndarray, clim_weeks: list[int]) -> None:
        """Values the climatology has no statistics for would silently become ``nan_fill``.

        A week of year with no statistics at any pixel (a training period shorter than a year) is an
        error; pixels without statistics where the data have values (e.g. a masked sea) are a warning
        above 1 % of the split's values.
        """
        path, empty, lost = self.files["climatology"], [], 0
        for wk in np.unique(weeks).tolist():
            k = clim_weeks.index(int(wk))
            nostat = np.isnan(med[k]) | np.isnan(std[k])
            if not nostat.any():
                continue
            has_data = np.isfinite(xv[weeks == wk][:, nostat])
            if nostat.all() and has_data.any():
                empty.append(int(wk))
            lost += int(has_data.sum())
        if empty:
            raise ValueError(
                f"{path}: no statistics (NaN median or std) of '{name}' for week(s) of year {_week_ranges(empty)}, "
                f"which option '{self.times_option}' = {self.t_first} {self.t_last} needs: every value there would "
                "become nan_fill. The climatology covers only the weeks of year of the generator's times_train: "
                "regenerate the benchmark with a times_train of at least 52 weeks, or pass --is_clima_scale false"
            )
        share = lost / max(xv.size, 1)
        if share > 0.01:
            self.warnings.append(
                f"{path}: '{name}' has values but no climatology at {100 * share:.1f} % of the voxels of "
                f"'{self.times_option}' = {self.t_first} {self.t_last}; they become nan_fill = {self.nan_fill:g}"
            )

    def _normalise_global(self) -> None:
        """In place: (x - median_v) / std_v with the JSON's training statistics."""
        path = self.files["statistic"]
        if not path.is_file():
            raise FileNotFoundError(f"statistic file {path} does not exist (needed by is_norm without is_clima_scale)")
        try:
            stats = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        for i, name in enumerate(self.variables):
            vals = []
            for s in ("median", "std"):
                table = stats.get(s) if isinstance(stats, dict) else None
                if not isinstance(table, dict) or name not in table:
                    raise ValueError(f"{path}: no '{s}' value for variable '{name}'")
                try:
                    vals.append(float(table[name]))  # the published files may store strings
                except (TypeError, ValueError) as err:
                    raise ValueError(f"{path}: '{s}' of '{name}' is not a number: {table[name]!r}") from err
            med, std = vals
            if not (np.isfinite(med) and np.isfinite(std)):
                raise ValueError(
                    f"{path}: median {med} / std {std} of '{name}' are not finite: every value would become "
                    "nan_fill; fix the file or pass --is_clima_scale true"
                )
            self._x[i] -= np.float32(med)
            self._x[i] /= np.float32(1.0 if std == 0 else std)

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return len(self.time_labels) - self.delta_t + 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"sample index {index} out of range for {n} samples")
        sl = slice(index, index + self.delta_t)
        ext = self._extreme[sl]  # chronological [T, H, W]
        sample = {
            "x": torch.from_numpy(self._x[:, sl]).flip(1).unsqueeze(1),  # newest-first
            "mask_extreme": torch.from_numpy(ext[-1] == 1).float(),
            "mask_extreme_loss": torch.from_numpy(((ext >= 1) & (ext <= 3)).any(axis=0)).float(),
            "mask_anomaly": torch.from_numpy(self._anomaly[:, sl]).flip(1).float(),
            "timestep": torch.tensor(int(self.time_labels[index + self.delta_t - 1]), dtype=torch.int64),
        }
        if self.is_aug:
            sample = self.augment(sample, *self.draw_flips())
        return sample

    @staticmethod
    def draw_flips() -> tuple[bool, bool]:
        """Random (flip_y, flip_x) for rot180-then-flip; rot180 is flipping both axes."""
        u = torch.rand(3)  # always three draws: RNG use does not depend on outcomes
        rot = bool(u[0] < 0.5)
        flip = bool(u[1] < 0.5)
        along_x = bool(u[2] < 0.5)
        return rot ^ (flip and not along_x), rot ^ (flip and along_x)

    @staticmethod
    def augment(sample: dict[str, torch.Tensor], flip_y: bool, flip_x: bool) -> dict[str, torch.Tensor]:
        """Flip the two last (y, x) axes of every spatial output alike."""
        dims = [d for d, on in ((-2, flip_y), (-1, flip_x)) if on]
        if not dims:
            return sample
        return {k: (v.flip(dims) if v.dim() >= 2 else v) for k, v in sample.items()}

    # ------------------------------------------------------------------ truth for metrics / engine
    @property
    def n_vars(self) -> int:
        """Number of input variables."""
        return len(self.variables)

    @property
    def height(self) -> int:
        """Rows of the (cropped) grid."""
        return int(self._x.shape[2])

    @property
    def width(self) -> int:
        """Columns of the (cropped) grid."""
        return int(self._x.shape[3])

    @property
    def t_first(self) -> int:
        """1-based label of the split's first week."""
        return int(self.time_labels[0])

    @property
    def t_last(self) -> int:
        """1-based label of the split's last week."""
        return int(self.time_labels[-1])

    def drivers_truth(self) -> np.ndarray:
        """uint8 [V, n_times, H, W] ground-truth drivers of the split/crop, chronological (read-only view)."""
        view = self._anomaly.view()
        view.flags.writeable = False
        return view

    def normalised_inputs(self) -> np.ndarray:
        """float32 [V, n_times, H, W]: the split/crop as the model sees it, chronological (read-only view)."""
        view = self._x.view()
        view.flags.writeable = False
        return view

    def extreme_classes(self) -> np.ndarray:
        """uint8 [n_times, H, W]: the benchmark's event classes 0..3 of the split/crop (1 = extreme),
        chronological (read-only view)."""
        view = self._extreme.view()
        view.flags.writeable = False
        return view

    def extremes_truth(self) -> np.ndarray:
        """uint8 [n_times, H, W]: extreme class 1 of the split/crop, chronological."""
        return (self._extreme == 1).astype(np.uint8)

    def coupling_matrix(self) -> np.ndarray:
        """uint8 [V, 14] rows of the selected variables (read on demand; not needed for samples)."""
        path = self.files["coupling_matrix"]
        if not path.is_file():
            raise FileNotFoundError(f"coupling matrix file {path} does not exist")
        mat = np.load(path, allow_pickle=False)
        if mat.ndim != 2 or mat.shape[0] <= max(self._var_index):
            raise ValueError(f"{path}: shape {mat.shape}; expected [n_variables, 14]")
        return mat[self._var_index].astype(np.uint8)

    def __repr__(self) -> str:
        return (
            f"SyntheticDataset(exp={self.exp!r}, times={self.t_first}..{self.t_last}, "
            f"variables={self.variables}, delta_t={self.delta_t}, crop=y{self.y[0]}:{self.y[-1] + 1} "
            f"x{self.x[0]}:{self.x[-1] + 1}, samples={len(self)}, is_aug={self.is_aug})"
        )
