"""Readers and the figure for weekly real-data files (ERA5-Land, CERRA, NOAA VHI).

Weekly climate files ``<root>/<YYYY>/<YYYY><WWW>.nc`` hold one variable per short
name with dims (statistic, rlat, rlon) or (statistic, y, x). NOAA files
``<root>/<YYYY>/<...><YYYY><WWW>.VH.nc`` hold VCI, TCI, VHI, mask_cold_surface; a
week may have several files. VHI and the cold mask follow the label's rule
(``dataset.noaa.week_vhi``). Rows are turned north-up by the loaders' rule
(``dataset.real_common.rows_south_to_north``), so row 0 is the northernmost row here as
in the samples, the crops, the prediction files and every ``--box``.
"""

from __future__ import annotations

import argparse
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from dataset.noaa import NOAAWeek, drought_label, file_vhi, index_values, week_vhi
from dataset.real_common import rows_south_to_north
from vis.common import (
    cmap_of,
    grid_figure,
    outline,
    parse_period,
    save,
    select_names,
    show_field,
    spatial_dims,
    unit_of,
    week_label,
)

WEEK_FILE = re.compile(r"^(\d{4})(\d{3})\.nc$")
NOAA_FILE = re.compile(r"(\d{4})(\d{3})\.VH\.nc$")
PATTERN_NAMES = {WEEK_FILE.pattern: "<YYYY><WWW>.nc", NOAA_FILE.pattern: "<...><YYYY><WWW>.VH.nc"}
NOAA_VARS = ("VCI", "TCI", "VHI")


# ------------------------------------------------------------------------------- discovery
def list_weeks(root: Path, pattern: re.Pattern) -> dict[str, list[Path]]:
    """YYYYWWW -> files under root/<YYYY>/ (several NOAA files per week possible)."""
    if not root.is_dir():
        raise SystemExit(f"--root {root} is not a folder")
    weeks: dict[str, list[Path]] = {}
    for year in sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit()):
        for f in sorted(year.iterdir()):
            m = pattern.search(f.name)
            if m and m.group(1) == year.name:
                weeks.setdefault(m.group(1) + m.group(2), []).append(f)
    if not weeks:
        layout = PATTERN_NAMES.get(pattern.pattern, pattern.pattern)
        raise SystemExit(f"--root {root}: no weekly files <YYYY>/{layout} found")
    return weeks


def choose_weeks(
    available: dict[str, list[Path]],
    weeks: list[str] | None,
    period: list[str] | None,
    max_weeks: int,
    root: Path,
) -> list[str]:
    """Requested weeks (must exist), or those in the period (at most max_weeks, evenly spread)."""
    if weeks:
        missing = [w for w in weeks if w not in available]
        if missing:
            raise SystemExit(
                f"--weeks {' '.join(missing)}: no file under {root} "
                f"(available {min(available)} .. {max(available)})"
            )
        return list(weeks)
    keys = sorted(available)
    if period:
        lo, hi = parse_period(*period)
        keys = [k for k in keys if lo <= int(k) <= hi]
        if not keys:
            raise SystemExit(f"--period {' '.join(period)}: no weekly file under {root} in that range")
    if len(keys) > max_weeks:
        keys = [keys[i] for i in np.linspace(0, len(keys) - 1, max_weeks).round().astype(int)]
    return keys


# --------------------------------------------------------------------------------- reading
def _flip(ds: xr.Dataset, ydim: str) -> bool:
    """Whether rows must be reversed to be north-up (the loaders' rule)."""
    return rows_south_to_north(ds[ydim].values if ydim in ds.variables else None)


def geometry(ds: xr.Dataset, ydim: str, xdim: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """North-up 2-D lat/lon when the file has them (1-D lat/lon axes are broadcast)."""
    lat = next((ds[n].values for n in ("lat", "latitude") if n in ds.variables and ds[n].ndim == 2), None)
    lon = next((ds[n].values for n in ("lon", "longitude") if n in ds.variables and ds[n].ndim == 2), None)
    if lat is None and ydim in ("lat", "latitude") and ydim in ds.variables:
        lat, lon = np.meshgrid(ds[ydim].values, ds[xdim].values, indexing="ij")
    if lat is None or lon is None:
        return None, None
    if _flip(ds, ydim):
        lat, lon = lat[::-1], lon[::-1]
    return np.asarray(lat, float), np.asarray(lon, float)


def climate_vars(ds: xr.Dataset) -> list[str]:
    """Data variables of a weekly file, skipping coordinates stored as variables (lat/lon, bounds)."""
    skip = {"lat", "lon", "latitude", "longitude", "rotated_pole", "crs"}
    return [
        str(v) for v in ds.data_vars if str(v) not in skip and ("statistic" in ds[v].dims or ds[v].ndim == 2)
    ]


def _grid(ds: xr.Dataset, da: xr.DataArray, path: Path) -> np.ndarray:
    """(rows, cols) float array of a 2-D variable, north-up."""
    ydim, xdim = spatial_dims(da, path)
    a = np.asarray(da.transpose(ydim, xdim).values, dtype=float)
    return a[::-1] if _flip(ds, ydim) else a


def read_field(ds: xr.Dataset, name: str, statistic: str, path: Path) -> np.ndarray:
    """One statistic of a weekly variable, north-up."""
    if name not in ds:
        raise SystemExit(f"{path}: no variable '{name}' (has: {', '.join(map(str, ds.data_vars))})")
    da = ds[name]
    if "statistic" in da.dims:
        stats = (
            [s.decode() if isinstance(s, bytes) else str(s) for s in ds["statistic"].values]
            if "statistic" in ds.coords
            else ["mean", "std"][: da.sizes["statistic"]]
        )
        if statistic not in stats:
            raise SystemExit(f"{path}: '{name}' has statistics {stats}, not '{statistic}'")
        da = da.isel(statistic=stats.index(statistic))
    return _grid(ds, da, path)


def read_noaa_week(files: list[Path], alpha: float = 0.5) -> dict[str, np.ndarray]:
    """A week of NOAA files, north-up: VHI and cold mask by the label's rule, VCI and TCI for display.

    VHI = ``week_vhi`` of ``file_vhi(VCI, TCI)`` per file (the label's values); the VCI and TCI
    panels are the nanmean of the files' indices (values outside 0..100 missing).
    """
    vcis, tcis, vhis, colds = [], [], [], []
    geo = None
    for f in files:
        with xr.open_dataset(f) as ds:
            missing = [n for n in ("VCI", "TCI") if n not in ds]
            if missing:
                raise SystemExit(f"{f}: no {' or '.join(missing)}; VHI is computed from VCI and TCI like the label")
            vci, tci = _grid(ds, ds["VCI"], f), _grid(ds, ds["TCI"], f)
            vcis.append(index_values(vci))
            tcis.append(index_values(tci))
            vhis.append(file_vhi(vci, tci, alpha))
            cold = _grid(ds, ds["mask_cold_surface"], f) if "mask_cold_surface" in ds else np.zeros_like(vci)
            colds.append(cold)
            if geo is None:
                ydim, xdim = spatial_dims(ds["VCI"], f)
                geo = geometry(ds, ydim, xdim)
    out: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels stay NaN
        out["VCI"] = np.nanmean(np.stack(vcis), axis=0)
        out["TCI"] = np.nanmean(np.stack(tcis), axis=0)
    out["VHI"], out["mask_cold_surface"] = week_vhi(vhis, colds)
    out["_geometry"] = geo  # type: ignore[assignment]
    return out


def read_masks(path: Path | None) -> np.ndarray | None:
    """(H, W) bool 'not land or no vegetation' from a NOAA masks file (lsm, mask_no_vegetation)."""
    if path is None:
        return None
    if not path.is_file():
        raise SystemExit(f"--masks {path} does not exist")
    with xr.open_dataset(path) as ds:
        bad = None
        for name, is_bad in (("lsm", lambda a: a <= 0.5), ("mask_no_vegetation", lambda a: a > 0)):
            if name in ds:
                m = is_bad(np.nan_to_num(_grid(ds, ds[name].squeeze(), path)))
                bad = m if bad is None else bad | m
    if bad is None:
        raise SystemExit(f"--masks {path}: neither 'lsm' nor 'mask_no_vegetation' in the file")
    return bad


# -------------------------------------------------------------------------------- figures
def plot_climate_week(
    dataset: str,
    week: str,
    path: Path,
    names: list[str] | None,
    statistics: list[str],
    out: Path,
    drought: np.ndarray | None = None,
) -> Path:
    """Panels per variable and statistic of one weekly file; the drought mask outlined when given."""
    with xr.open_dataset(path) as ds:
        names = select_names(climate_vars(ds), names, f"--variables ({path})")
        ydim, xdim = spatial_dims(ds[names[0]], path)
        lat, lon = geometry(ds, ydim, xdim)
        panels = [(n, s) for n in names for s in statistics]
        ncols = min(len(panels), 4)
        h, w = read_field(ds, names[0], statistics[0], path).shape
        fig, axes = grid_figure(int(np.ceil(len(panels) / ncols)), ncols, panel=3.0, aspect=h / w)
        axes = axes.ravel()
        for ax, (name, stat) in zip(axes, panels):
            long, unit = unit_of(name, dict(ds[name].attrs), dataset)
            field = read_field(ds, name, stat, path)
            show_field(ax, field, name, unit, cmap_of(name), lat, lon, title=f"{name} {stat}\n{long}")
            if drought is not None:
                if drought.shape == field.shape:
                    outline(ax, drought, color="k", lw=0.7)
                else:
                    ax.text(0.02, 0.02, "drought grid differs", fontsize=6, transform=ax.transAxes)
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
    note = "  (black: VHI drought)" if drought is not None else ""
    fig.suptitle(f"{dataset} {week_label(week)}{note}", fontsize=9)
    return save(fig, out / f"{dataset}_{week}.png")


def noaa_drought(
    noaa_weeks: dict[str, list[Path]] | None,
    week: str,
    threshold: float,
    alpha: float,
    bad: np.ndarray | None,
) -> np.ndarray | None:
    """VHI < threshold on valid pixels of a week, or None when no NOAA file covers it."""
    if not noaa_weeks or week not in noaa_weeks:
        return None
    data = read_noaa_week(noaa_weeks[week], alpha)
    return drought_mask(data, threshold, bad)


def drought_mask(data: dict[str, np.ndarray], threshold: float, bad: np.ndarray | None) -> np.ndarray:
    """The label's rule (``dataset.noaa.drought_label``) on a week read by ``read_noaa_week``.

    ``bad`` (sea or no vegetation, from ``read_masks``) stands for the loader's land and
    no-vegetation masks; without it every pixel counts as vegetated land.
    """
    vhi = data["VHI"]
    ok = np.ones(vhi.shape, bool) if bad is None or bad.shape != vhi.shape else ~bad
    week = NOAAWeek(vhi=vhi, cold=data["mask_cold_surface"])
    return drought_label(week, ok, np.zeros(vhi.shape, bool), threshold) > 0


def weekly_parser(doc: str | None, root_help: str, file_help: str) -> argparse.ArgumentParser:
    """Parser with the options every weekly-data plot shares: --root | --file, --weeks | --period."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--root", help=root_help)
    src.add_argument("--file", nargs="+", help=file_help)
    when = p.add_mutually_exclusive_group()
    when.add_argument("--weeks", nargs="+", help="weeks YYYYWWW")
    when.add_argument("--period", nargs=2, metavar=("START", "END"), help="YYYYWWW or YYYY, inclusive")
    p.add_argument(
        "--max_weeks", type=int, default=4, help="at most this many weeks from a period (default 4)"
    )
    return p


def climate_main(dataset: str, default_vars: list[str], argv: list[str] | None, doc: str) -> list[Path]:
    """Shared command line of plot_era5_land and plot_cerra."""
    p = weekly_parser(doc, "data folder holding <YYYY>/<YYYY><WWW>.nc", "one or more weekly files")
    p.add_argument("--variables", nargs="+", help=f"default: all in the file ({' '.join(default_vars)})")
    p.add_argument("--statistic", nargs="+", default=["mean"], choices=["mean", "std"])
    p.add_argument("--noaa_root", help="NOAA folder <YYYY>/<...>.VH.nc: outline VHI drought on the maps")
    p.add_argument("--masks", help="NOAA masks file (lsm, mask_no_vegetation) applied to the drought outline")
    p.add_argument("--threshold", type=float, default=26.0, help="VHI drought threshold (default 26)")
    p.add_argument("--alpha", type=float, default=0.5, help="VHI = alpha VCI + (1-alpha) TCI")
    p.add_argument("--out", default=f"figures/{dataset}", help="output folder")
    a = p.parse_args(argv)
    if a.file:
        files = {}
        for f in map(Path, a.file):
            m = WEEK_FILE.match(f.name)
            if not f.is_file():
                raise SystemExit(f"--file {f} does not exist")
            files[m.group(1) + m.group(2) if m else f.stem] = [f]
        chosen = list(files)
    else:
        files = list_weeks(Path(a.root), WEEK_FILE)
        chosen = choose_weeks(files, a.weeks, a.period, a.max_weeks, Path(a.root))
    noaa = list_weeks(Path(a.noaa_root), NOAA_FILE) if a.noaa_root else None
    bad = read_masks(Path(a.masks)) if a.masks else None
    paths = []
    for week in chosen:
        drought = noaa_drought(noaa, week, a.threshold, a.alpha, bad)
        paths.append(
            plot_climate_week(dataset, week, files[week][0], a.variables, a.statistic, Path(a.out), drought)
        )
    for path in paths:
        print(path)
    return paths
