"""Figures of a synthetic benchmark cube (``<root>/<exp>/datacube_<exp>.nc``).

- one map figure per chosen time step: each variable with its ground-truth drivers
  (``anomaly_extreme``, black outline) and random anomalies (white dashed), plus the
  extreme classes (1 extreme, 2/3 = one/two weeks before/after);
- one time series figure of a pixel: each variable over the time range with driver
  weeks, random anomalies and extremes marked, and the climatology median +- std
  when ``climatology_<exp>.nc`` sits beside the cube.

    python -m vis.plot_synthetic --path data/synthetic/paper_exp1 --times 2081 2392 --n 4 --out figs/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import xarray as xr

from vis.common import (
    EXTREME_CLASS_CMAP,
    cmap_of,
    grid_figure,
    legend_patches,
    outline,
    run_main,
    save,
    select_names,
    show_categories,
    show_field,
    unit_of,
)


def find_cube(path: str | Path) -> Path:
    """Accept the experiment folder or the datacube file itself."""
    path = Path(path)
    if path.is_file():
        return path
    cube = path / f"datacube_{path.name}.nc"
    if cube.is_file():
        return cube
    found = sorted(path.glob("datacube_*.nc")) if path.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise SystemExit(f"--path {path}: no datacube_<exp>.nc found (expected {cube})")


def data_vars(ds: xr.Dataset) -> list[str]:
    """Dynamic variables in the 'var' coordinate order (var_01 .. var_09, var10 ..)."""
    if "var" in ds.coords:
        return [str(v) for v in ds["var"].values if str(v) in ds]
    return [v for v in ds.data_vars if ds[v].dims == ("time", "y", "x")]


def _time_index(ds: xr.Dataset, times: list[int] | None) -> np.ndarray:
    """Indices of the chosen time labels: two values = inclusive range, otherwise each listed label."""
    labels = ds["time"].values.astype(int)
    if not times:
        return np.arange(len(labels))
    span = f"the cube's time labels are {labels[0]}..{labels[-1]}"
    if len(times) == 2:
        lo, hi = times
        if lo > hi:
            raise SystemExit(f"--times {lo} {hi}: the range starts after it ends; give START END")
        sel = np.flatnonzero((labels >= lo) & (labels <= hi))
        if len(sel) == 0:
            raise SystemExit(f"--times {lo} {hi}: no time step in that range; {span}")
        return sel
    missing = [t for t in times if t not in set(labels.tolist())]
    if missing:  # a typo must not silently drop a figure
        raise SystemExit(f"--times: {' '.join(map(str, missing))} not in the cube; {span}")
    return np.flatnonzero(np.isin(labels, times))


def plot_time(ds: xr.Dataset, t: int, names: list[str], out: Path, exp: str) -> Path:
    """Maps of every variable at time index t with driver / anomaly outlines, plus the extreme classes."""
    lat = ds["latitude"].values if "latitude" in ds else None
    lon = ds["longitude"].values if "longitude" in ds else None
    label = int(ds["time"].values[t])
    ncols = min(len(names) + 1, 4)
    nrows = int(np.ceil((len(names) + 1) / ncols))
    fig, axes = grid_figure(nrows, ncols, panel=2.8, aspect=ds.sizes["y"] / ds.sizes["x"])
    axes = axes.ravel()
    var_index = {str(v): i for i, v in enumerate(ds["var"].values)} if "var" in ds.coords else {}
    ext = ds["extreme"].isel(time=t).values if "extreme" in ds else None
    for k, name in enumerate(names):
        ax = axes[k]
        long, unit = unit_of(name, dict(ds[name].attrs))
        show_field(
            ax,
            ds[name].isel(time=t).values,
            name,
            unit,
            cmap_of(name),
            lat,
            lon,
            title=f"{name} ({long})" if long != name else name,
        )
        vi = var_index.get(name)
        if vi is not None:
            if "anomaly" in ds:
                outline(ax, ds["anomaly"].isel(var=vi, time=t).values, color="w", ls="--", lw=0.7)
            if "anomaly_extreme" in ds:
                outline(ax, ds["anomaly_extreme"].isel(var=vi, time=t).values, color="k", lw=0.9)
        if ext is not None:
            outline(ax, ext == 1, color="#d62728", lw=0.6)
    ax = axes[len(names)]
    if ext is not None:
        show_categories(ax, ext, EXTREME_CLASS_CMAP, 4, lat, lon, "extreme classes")
        legend_patches(
            ax,
            EXTREME_CLASS_CMAP.colors[1:],
            ["extreme", "±1 week", "±2 weeks"],
            loc="upper right",
            framealpha=0.8,
        )
    else:
        ax.set_axis_off()
    for ax in axes[len(names) + 1 :]:
        ax.set_axis_off()
    fig.suptitle(
        f"{exp}  t={label}   black: drivers, white dashed: random anomalies, red: extreme", fontsize=9
    )
    return save(fig, out / f"synthetic_{exp}_t{label:05d}.png")


def _climatology(cube: Path) -> xr.Dataset | None:
    exp = cube.stem.removeprefix("datacube_")
    path = cube.with_name(f"climatology_{exp}.nc")
    return xr.open_dataset(path) if path.is_file() else None


# (colour, alpha) of each shaded kind of week in the pixel time series; the legend's swatches
# are drawn with the same pair, so a swatch looks like the span it names
SPAN_STYLES: dict[str, tuple[str, float]] = {
    "extreme": ("#d62728", 0.25),
    "random anomaly": ("#e6ab02", 0.35),
    "driver": ("#1b1b1b", 0.35),
    "climatology median ± std": ("#9ecae1", 0.5),
}


def _spans(ax, t: np.ndarray, on: np.ndarray, kind: str) -> None:
    """Shade runs of consecutive flagged weeks in the style of ``kind``."""
    color, alpha = SPAN_STYLES[kind]
    on = np.asarray(on, bool)
    edges = np.diff(np.r_[0, on.astype(int), 0])
    for s, e in zip(np.where(edges == 1)[0], np.where(edges == -1)[0]):
        ax.axvspan(t[s] - 0.5, t[e - 1] + 0.5, color=color, alpha=alpha, lw=0, label=f"_{kind}")


def plot_pixel(
    ds: xr.Dataset, cube: Path, idx: np.ndarray, names: list[str], y: int, x: int, out: Path, exp: str
) -> Path:
    """Time series of one pixel: values, climatology band, driver / anomaly / extreme weeks."""
    H, W = ds.sizes["y"], ds.sizes["x"]
    if not (0 <= y < H and 0 <= x < W):
        raise SystemExit(f"--pixel {y} {x}: outside the grid ({H} x {W})")
    t = ds["time"].values[idx].astype(int)
    clim = _climatology(cube)
    fig, axes = grid_figure(len(names), 1, panel=1.9)
    fig.set_size_inches(10, 1.8 * len(names) + 0.8)
    var_index = {str(v): i for i, v in enumerate(ds["var"].values)} if "var" in ds.coords else {}
    ext = ds["extreme"].isel(time=idx, y=y, x=x).values if "extreme" in ds else None
    for k, name in enumerate(names):
        ax = axes[k, 0]
        vals = ds[name].isel(time=idx, y=y, x=x).values
        if ext is not None:
            _spans(ax, t, ext == 1, "extreme")
        vi = var_index.get(name)
        if vi is not None and "anomaly" in ds:
            _spans(ax, t, ds["anomaly"].isel(var=vi, time=idx, y=y, x=x).values > 0, "random anomaly")
        if vi is not None and "anomaly_extreme" in ds:
            _spans(ax, t, ds["anomaly_extreme"].isel(var=vi, time=idx, y=y, x=x).values > 0, "driver")
        if clim is not None and name in clim:
            week = (t - 1) % clim.sizes["time"]
            c = clim[name].isel(y=y, x=x)
            med = c.sel(climatology="median").values[week]
            std = c.sel(climatology="std").values[week]
            color, alpha = SPAN_STYLES["climatology median ± std"]
            ax.fill_between(t, med - std, med + std, color=color, alpha=alpha, lw=0)
            ax.plot(t, med, color="#3182bd", lw=0.7)
        ax.plot(t, vals, color="k", lw=0.8)
        long, unit = unit_of(name, dict(ds[name].attrs))
        ax.set_ylabel(f"{name}\n[{unit}]", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time (week index)", fontsize=8)
    legend_patches(
        axes[0, 0],
        [c for c, _ in SPAN_STYLES.values()],
        list(SPAN_STYLES),
        alphas=[a for _, a in SPAN_STYLES.values()],
        loc="upper left",
        ncol=4,
        framealpha=0.8,
    )
    fig.suptitle(f"{exp}  pixel row {y} (0 = north), column {x}", fontsize=9)
    return save(fig, out / f"synthetic_{exp}_pixel_y{y}_x{x}.png")


def main(argv: list[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", required=True, help="experiment folder <root>/<exp> or a datacube_<exp>.nc file")
    p.add_argument("--variables", nargs="+", help="variables to plot (default: all)")
    p.add_argument(
        "--times",
        nargs="+",
        type=int,
        help="two labels = inclusive range; otherwise the listed time labels (1-based)",
    )
    p.add_argument("--n", type=int, default=4, help="map figures: the n times in range with most extremes")
    p.add_argument(
        "--pixel",
        nargs=2,
        type=int,
        metavar=("Y", "X"),
        help="time series pixel: row (0 = north) and column (default: the pixel with most extremes in range)",
    )
    p.add_argument("--out", default="figures/synthetic", help="output folder")
    a = p.parse_args(argv)
    if a.n < 0:
        p.error(f"--n {a.n}: the number of map figures cannot be negative")
    cube = find_cube(a.path)
    exp = cube.stem.removeprefix("datacube_")
    out = Path(a.out)
    with xr.open_dataset(cube) as ds:
        names = select_names(data_vars(ds), a.variables, f"--variables ({cube})")
        idx = _time_index(ds, a.times)
        if "extreme" in ds:
            ext = ds["extreme"].isel(time=idx).values == 1
            per_t = ext.sum(axis=(1, 2))
            per_px = ext.sum(axis=0)
        else:
            per_t = np.zeros(len(idx))
            per_px = np.zeros((ds.sizes["y"], ds.sizes["x"]))
        if a.times and len(a.times) != 2:
            chosen = idx
        else:
            chosen = np.sort(idx[np.argsort(-per_t, kind="stable")[: a.n]])
        paths = [plot_time(ds, int(t), names, out, exp) for t in chosen]
        y, x = a.pixel if a.pixel else np.unravel_index(int(np.argmax(per_px)), per_px.shape)
        paths.append(plot_pixel(ds, cube, idx, names, int(y), int(x), out, exp))
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    run_main(main)
