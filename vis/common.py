"""Shared plotting helpers: headless backend, units, colour maps, grid axes and mask outlines.

Every figure in ``vis/`` goes through these helpers so that units, orientation
(north up) and mask overlays look the same whatever the data set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: set before pyplot is imported anywhere in vis/

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

os.environ.setdefault("MPLBACKEND", "Agg")

# (long name, unit) per short name; values read from a file's attributes win.
UNITS: dict[str, tuple[str, str]] = {
    # ERA5-Land
    "d2m": ("2 m dewpoint temperature", "K"),
    "t2m": ("2 m temperature", "K"),
    "fal": ("forecast albedo", "1"),
    "sp": ("surface pressure", "Pa"),
    "e": ("evaporation", "m of water equivalent"),
    "tp": ("total precipitation", "m"),
    "skt": ("skin temperature", "K"),
    "stl1": ("soil temperature level 1", "K"),
    "swvl1": ("volumetric soil water layer 1", "m³ m⁻³"),
    # CERRA (where the short name differs from ERA5-Land or the unit does)
    "al": ("albedo", "%"),
    "hcc": ("high cloud cover", "%"),
    "lcc": ("low cloud cover", "%"),
    "mcc": ("medium cloud cover", "%"),
    "tcc": ("total cloud cover", "%"),
    "liqvsm": ("liquid volumetric soil moisture", "m³ m⁻³"),
    "msl": ("mean sea level pressure", "Pa"),
    "r2": ("2 m relative humidity", "%"),
    "si10": ("10 m wind speed", "m s⁻¹"),
    "sot": ("soil temperature", "K"),
    "sr": ("surface roughness", "m"),
    "tciwv": ("total column integrated water vapour", "kg m⁻²"),
    "vsw": ("volumetric soil water", "m³ m⁻³"),
    "wdir10": ("10 m wind direction", "°"),
    # NOAA vegetation health
    "VCI": ("vegetation condition index", "index 0-100"),
    "TCI": ("temperature condition index", "index 0-100"),
    "VHI": ("vegetation health index", "index 0-100"),
}
CERRA_UNITS = {"tp": ("total precipitation", "kg m⁻²")}

CMAPS: dict[str, str] = {
    "d2m": "RdYlBu_r",
    "t2m": "RdYlBu_r",
    "skt": "RdYlBu_r",
    "stl1": "RdYlBu_r",
    "sot": "RdYlBu_r",
    "tp": "YlGnBu",
    "e": "BrBG",
    "swvl1": "YlGnBu",
    "vsw": "YlGnBu",
    "liqvsm": "YlGnBu",
    "r2": "YlGnBu",
    "tciwv": "YlGnBu",
    "hcc": "Greys_r",
    "lcc": "Greys_r",
    "mcc": "Greys_r",
    "tcc": "Greys_r",
    "fal": "cividis",
    "al": "cividis",
    "sp": "viridis",
    "msl": "viridis",
    "si10": "plasma",
    "wdir10": "twilight",
    "sr": "cividis",
    "VCI": "RdYlGn",
    "TCI": "RdYlGn",
    "VHI": "RdYlGn",
}
DEFAULT_CMAP = "viridis"
FREQ_CMAP = "YlOrRd"
PROB_CMAP = "Reds"
# driver comparison classes: 0 normal, 1 false positive, 2 false negative (missed), 3 true positive
COMPARE_CMAP = ListedColormap(["#ffffff", "#f28e2b", "#4e79a7", "#2ca02c"])
COMPARE_LABELS = ["none", "predicted only (FP)", "true only (FN)", "both (TP)"]
FLAG_CMAP = ListedColormap(["#ffffff", "#d62728"])
EXTREME_CLASS_CMAP = ListedColormap(["#ffffff", "#d62728", "#ff9896", "#ffd8d8"])


def unit_of(name: str, attrs: dict | None = None, dataset: str = "") -> tuple[str, str]:
    """(long name, unit) of a variable: file attributes first, then the table, else arbitrary units."""
    attrs = attrs or {}
    long, unit = UNITS.get(name, (name, "a.u."))
    if dataset.upper() == "CERRA" and name in CERRA_UNITS:
        long, unit = CERRA_UNITS[name]
    long = str(attrs.get("long_name", long))
    unit = str(attrs.get("units", unit))
    return long, unit


def cmap_of(name: str) -> str:
    return CMAPS.get(name, DEFAULT_CMAP)


def grid_figure(
    n_rows: int, n_cols: int, panel: float = 2.6, aspect: float = 1.0, **kw
) -> tuple[plt.Figure, np.ndarray]:
    """A figure of n_rows x n_cols panels (height/width of a map = aspect), axes always a 2-D array."""
    aspect = min(max(aspect, 0.3), 3.0)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(max(panel * n_cols, 4.0), max((panel * aspect + 0.6) * n_rows, 3.0)),
        squeeze=False,
        layout="compressed",
        **kw,
    )
    return fig, axes


def save(fig: plt.Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write a PNG, create the folder, and free the figure (long loops leak otherwise)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


def image_origin(lat: np.ndarray | None) -> str:
    """'lower' when row index grows northwards (raw files store south-to-north), else 'upper'.

    Either way row i sits at y = i, so contours drawn in index space line up with the image.
    """
    if lat is None:
        return "upper"
    lat = np.asarray(lat, dtype=float)
    first, last = (lat[0], lat[-1]) if lat.ndim == 1 else (np.nanmean(lat[0]), np.nanmean(lat[-1]))
    return "lower" if last > first else "upper"


def show_field(
    ax: plt.Axes,
    data: np.ndarray,
    name: str = "",
    unit: str = "",
    cmap: str | None = None,
    lat: np.ndarray | None = None,
    lon: np.ndarray | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    title: str | None = None,
    origin: str | None = None,
):
    """imshow with NaNs in light grey, a labelled colour bar and coordinate axes."""
    cm = plt.get_cmap(cmap or DEFAULT_CMAP).with_extremes(bad="#d9d9d9")
    arr = np.ma.masked_invalid(np.asarray(data, dtype=float))
    if vmin is None and vmax is None and arr.count():
        vmin, vmax = np.percentile(arr.compressed(), [2, 98])
        if vmin == vmax:
            vmin, vmax = vmin - 0.5, vmax + 0.5
    im = ax.imshow(
        arr, cmap=cm, vmin=vmin, vmax=vmax, origin=origin or image_origin(lat), interpolation="nearest"
    )
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label(unit, fontsize=7)
        cb.ax.tick_params(labelsize=6)
    coord_axes(ax, lat, lon)
    ax.set_title(title if title is not None else name, fontsize=8)
    return im


def show_categories(
    ax: plt.Axes,
    data: np.ndarray,
    cmap,
    n: int,
    lat=None,
    lon=None,
    title: str = "",
    origin: str | None = None,
):
    """imshow of an integer class map 0..n-1, masked pixels grey (no colour bar; callers add a legend)."""
    cm = cmap.with_extremes(bad="#d9d9d9")
    im = ax.imshow(
        np.ma.asarray(data),
        cmap=cm,
        vmin=-0.5,
        vmax=n - 0.5,
        origin=origin or image_origin(lat),
        interpolation="nearest",
    )
    coord_axes(ax, lat, lon)
    ax.set_title(title, fontsize=8)
    return im


def legend_patches(ax_or_fig, colors: Sequence, labels: Sequence[str], **kw) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, edgecolor="k", linewidth=0.5, label=lab) for c, lab in zip(colors, labels)]
    ax_or_fig.legend(handles=handles, fontsize=7, **kw)


def outline(ax: plt.Axes, mask: np.ndarray | None, color: str = "k", lw: float = 0.8, ls: str = "-") -> None:
    """Outline the pixels of a binary mask along pixel edges (contour on an upsampled copy)."""
    if mask is None:
        return
    m = np.asarray(mask) > 0
    if not m.any() or m.all():
        return
    h, w = m.shape
    f = 4 if h * w <= 250_000 else 1
    up = np.repeat(np.repeat(m, f, axis=0), f, axis=1).astype(float)
    ys = (np.arange(h * f) + 0.5) / f - 0.5
    xs = (np.arange(w * f) + 0.5) / f - 0.5
    ax.contour(xs, ys, up, levels=[0.5], colors=color, linewidths=lw, linestyles=ls)


def _nice_step(span: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 20, 30):
        if span / step <= 5:
            return step
    return 45.0


def _regular(lat: np.ndarray, lon: np.ndarray) -> bool:
    """True when latitude is constant along rows and longitude along columns (a lat/lon grid)."""
    return bool(np.nanmax(np.ptp(lat, axis=1)) < 1e-6 and np.nanmax(np.ptp(lon, axis=0)) < 1e-6)


def coord_axes(ax: plt.Axes, lat: np.ndarray | None = None, lon: np.ndarray | None = None) -> None:
    """Degree ticks on a regular lat/lon grid, a labelled graticule on rotated grids, else grid indices."""
    ax.tick_params(labelsize=6)
    if lat is None or lon is None:
        ax.set_xlabel("x (grid index)", fontsize=7)
        ax.set_ylabel("y (grid index)", fontsize=7)
        return
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.ndim == 1 and lon.ndim == 1:
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
    h, w = lat.shape
    if _regular(lat, lon):
        xt = np.linspace(0, w - 1, min(w, 4)).round().astype(int)
        yt = np.linspace(0, h - 1, min(h, 4)).round().astype(int)
        ax.set_xticks(xt, [f"{lon[0, i]:.1f}°E" for i in xt])
        ax.set_yticks(yt, [f"{lat[i, 0]:.1f}°N" for i in yt])
        ax.set_xlabel("longitude", fontsize=7)
        ax.set_ylabel("latitude", fontsize=7)
        return
    ax.set_xlabel("x (grid index); lines: lat/lon", fontsize=7)
    ax.set_ylabel("y (grid index)", fontsize=7)
    if h < 2 or w < 2:
        return
    for field, suffix in ((lat, "°N"), (lon, "°E")):
        lo, hi = np.nanmin(field), np.nanmax(field)
        if not np.isfinite(lo) or hi <= lo:
            continue
        step = _nice_step(hi - lo)
        levels = np.arange(np.ceil(lo / step) * step, hi, step)
        if len(levels) == 0:
            continue
        cs = ax.contour(
            np.arange(w), np.arange(h), field, levels=levels, colors="0.35", linewidths=0.4, linestyles=":"
        )
        ax.clabel(cs, fontsize=5, fmt=lambda v, s=suffix: f"{v:g}{s}")


def week_label(label) -> str:
    """'2021020' -> '2021 w020'; synthetic integers -> 't=123'."""
    s = str(label)
    if len(s) == 7 and s.isdigit():
        return f"{s[:4]} w{s[4:]}"
    return f"t={s}"


def parse_period(start: str, end: str) -> tuple[int, int]:
    """Inclusive label range as ints; a 4-digit year widens to the whole year (YYYY000..YYYY999)."""
    lo = int(start) * 1000 if len(str(start)) == 4 else int(start)
    hi = int(end) * 1000 + 999 if len(str(end)) == 4 else int(end)
    if lo > hi:
        raise ValueError(f"option --period: start {start} is after end {end}")
    return lo, hi


def run_main(main) -> None:
    """Command-line wrapper: file and format errors end with their message, not a traceback."""
    import sys

    try:
        main()
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def select_names(available: Iterable[str], wanted: Sequence[str] | None, what: str) -> list[str]:
    """Keep the requested names in the given order; an unknown name is an error listing the choices."""
    available = list(available)
    if not wanted:
        return available
    missing = [w for w in wanted if w not in available]
    if missing:
        raise SystemExit(
            f"{what}: unknown variable(s) {', '.join(missing)}; available: {', '.join(available)}"
        )
    return list(wanted)
