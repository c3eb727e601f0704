"""Shared plotting helpers: headless backend, units, colour maps, grid axes and mask outlines.

Every figure in ``vis/`` goes through these helpers so that units, orientation and mask
overlays look the same whatever the data set. One row convention holds for every map and
every ``--box``: arrays are north-up, row 0 is the northernmost row and is drawn at the top,
and the axes are labelled with integer grid rows / columns (``ROW_LABEL``, ``COL_LABEL``);
latitude and longitude, where known, are a labelled graticule on top.
"""

from __future__ import annotations

import os
import sys
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
    """Write a PNG, create the folder, and free the figure (long loops leak otherwise).

    Figures are meant to be redrawn in place (rerun a plot with other options into the same
    folder), so an existing PNG is replaced, but never silently: the replacement is named on stderr."""
    path = Path(path)
    if path.exists():
        print(f"replacing {path}", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    plt.close(fig)
    return path


SPATIAL_DIMS = (("rlat", "rlon"), ("y", "x"), ("lat", "lon"), ("latitude", "longitude"))
ROW_LABEL = "row (0 = north)"
COL_LABEL = "column (0 = west)"


def spatial_dims(da, where: object = "") -> tuple[str, str]:
    """(row, column) dimension names of a gridded variable: the one rule of every reader in ``vis/``."""
    for ydim, xdim in SPATIAL_DIMS:
        if ydim in da.dims and xdim in da.dims:
            return ydim, xdim
    names = ", ".join("/".join(p) for p in SPATIAL_DIMS)
    raise ValueError(f"{where}: variable '{da.name}' has dims {tuple(da.dims)}; expected spatial dims {names}")


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
    offset: tuple[int, int] = (0, 0),
):
    """imshow of a north-up field with NaNs in light grey, a labelled colour bar and grid axes."""
    cm = plt.get_cmap(cmap or DEFAULT_CMAP).with_extremes(bad="#d9d9d9")
    arr = np.ma.masked_invalid(np.asarray(data, dtype=float))
    if vmin is None and vmax is None and arr.count():
        vmin, vmax = np.percentile(arr.compressed(), [2, 98])
        if vmin == vmax:
            vmin, vmax = vmin - 0.5, vmax + 0.5
    im = ax.imshow(arr, cmap=cm, vmin=vmin, vmax=vmax, origin="upper", interpolation="nearest")
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.85)
        cb.set_label(unit, fontsize=7)
        cb.ax.tick_params(labelsize=6)
    coord_axes(ax, lat, lon, offset)
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
    offset: tuple[int, int] = (0, 0),
):
    """imshow of a north-up integer class map 0..n-1, masked pixels grey (callers add a legend)."""
    cm = cmap.with_extremes(bad="#d9d9d9")
    im = ax.imshow(
        np.ma.asarray(data), cmap=cm, vmin=-0.5, vmax=n - 0.5, origin="upper", interpolation="nearest"
    )
    coord_axes(ax, lat, lon, offset)
    ax.set_title(title, fontsize=8)
    return im


def legend_patches(
    ax_or_fig, colors: Sequence, labels: Sequence[str], alphas: Sequence[float] | None = None, **kw
) -> None:
    """Legend of filled swatches; ``alphas`` must be those of the drawn areas (a swatch looks like its area)."""
    from matplotlib.patches import Patch

    alphas = alphas if alphas is not None else [1.0] * len(labels)
    handles = [
        Patch(facecolor=c, alpha=a, edgecolor="k", linewidth=0.5, label=lab)
        for c, lab, a in zip(colors, labels, alphas)
    ]
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


def coord_axes(
    ax: plt.Axes, lat: np.ndarray | None = None, lon: np.ndarray | None = None, offset: tuple[int, int] = (0, 0)
) -> None:
    """Integer grid rows (0 = north) and columns on the axes; latitude/longitude when known.

    Regular lat/lon grids get degree ticks on the top and right axes, other grids a labelled
    lat/lon graticule. ``offset`` = (row, column) of the panel's first pixel in the full grid, so that a cropped
    panel (a region box) is labelled with the rows and columns ``--box`` takes.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.tick_params(labelsize=6)
    for axis, off in ((ax.yaxis, offset[0]), (ax.xaxis, offset[1])):
        axis.set_major_locator(MaxNLocator(nbins=5, integer=True, min_n_ticks=1))
        axis.set_major_formatter(FuncFormatter(lambda v, _pos, o=off: f"{int(round(v)) + o:d}"))
    ax.set_ylabel(ROW_LABEL, fontsize=7)
    ax.set_xlabel(COL_LABEL + ("; lines: lat/lon" if lat is not None and lon is not None else ""), fontsize=7)
    if lat is None or lon is None:
        return
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat.ndim == 1 and lon.ndim == 1:
        lat, lon = np.meshgrid(lat, lon, indexing="ij")
    h, w = lat.shape
    if h < 2 or w < 2:
        return
    if _regular(lat, lon):  # degrees on the opposite axes, at the index ticks' positions
        ax.set_xlabel(COL_LABEL, fontsize=7)
        for side, n, values, suffix in (("top", w, lon[0], "°E"), ("right", h, lat[:, 0], "°N")):
            sec = ax.secondary_xaxis(side) if side == "top" else ax.secondary_yaxis(side)
            pos = np.linspace(0, n - 1, min(n, 3)).round().astype(int)
            sec.set_ticks(pos, [f"{values[i]:.1f}{suffix}" for i in pos])
            sec.tick_params(labelsize=6)
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


def parse_period(start: str, end: str, years: bool = True) -> tuple[int, int]:
    """Inclusive label range as ints.

    With ``years`` (real-data weeks YYYYWWW) a 4-digit year widens to the whole year
    (YYYY000..YYYY999); synthetic time labels are plain integers, so there 2081 stays week 2081.
    """
    bad = [str(v) for v in (start, end) if not str(v).isdigit()]
    if bad:
        form = "YYYYWWW or YYYY" if years else "integer time labels"
        raise ValueError(f"option --period {start} {end}: not a label: {' '.join(bad)}; give {form}")
    lo = int(start) * 1000 if years and len(str(start)) == 4 else int(start)
    hi = int(end) * 1000 + 999 if years and len(str(end)) == 4 else int(end)
    if lo > hi:
        raise ValueError(f"option --period: start {start} is after end {end}")
    return lo, hi


def run_main(main) -> None:
    """Command-line wrapper: bad input ends with one ``error:`` line and exit code 2, not a traceback.

    A ``SystemExit`` with a message (the option checks of ``vis/``) is such an error too;
    argparse's own exits (``--help``, usage errors) keep their code and text."""
    from utils.errors import UserError

    try:
        main()
    except SystemExit as err:
        if isinstance(err.code, str):
            print(f"error: {err.code}", file=sys.stderr)
            sys.exit(2)
        raise
    except (UserError, FileNotFoundError, ValueError, OSError) as err:
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
