"""Regional driver frequency (the paper's Portugal / North Rhine-Westphalia analysis).

1. Region: a lat/lon box, a polygon (GeoJSON or CSV) or a grid box (``--box``: rows counted
   from the north, row 0 = northernmost, as on the axes of every map in ``vis/``).
2. Weeks: target weeks in the period where at least ``share`` of the region's valid
   pixels are extreme (predicted by default, ``--use_truth`` for the labels).
3. Frequency of each (variable, lag) = flagged / counted over those weeks and the
   region's valid pixels (lag k = k weeks before the target week). Per pixel: the
   same over the weeks only (maps). Per variable: over weeks, lags and pixels (bars).

On synthetic runs lag k of target t is the re-assembled driver at time t - k; lags
before the start of the split are not counted.

    python -m vis.regional_frequency --run log/eur11 --lat_min 37 --lat_max 42 \\
        --lon_min -9.5 --lon_max -6.2 --share 0.25 --period 2021 2024 --out figs/portugal
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.path import Path as MplPath

from vis.common import FREQ_CMAP, grid_figure, outline, parse_period, run_main, save, show_field, week_label
from vis.runs import RunData, load_run, target_range


@dataclass
class Region:
    """Boolean (H, W) mask plus a name for titles and file names."""

    mask: np.ndarray
    name: str


@dataclass
class Frequency:
    names: list[str]
    n_lags: int
    weeks: list[str]  # selected target labels
    shares: dict[str, float]  # every candidate week -> extreme share of the region
    table: np.ndarray  # (V, L) frequency, NaN where nothing was counted
    per_variable: np.ndarray  # (V,)
    maps: np.ndarray  # (V, L, h, w) per-pixel frequency over the selected weeks, NaN outside the region
    box: tuple[slice, slice]  # where the maps sit in the full grid
    region: Region


# ---------------------------------------------------------------------------------- regions
def box_region(shape: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> Region:
    """Grid box, half-open like Python slices: rows y0..y1-1, columns x0..x1-1."""
    h, w = shape
    if not (0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w):
        raise SystemExit(f"--box {y0} {y1} {x0} {x1}: need 0 <= y0 < y1 <= {h} and 0 <= x0 < x1 <= {w}")
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return Region(mask, f"box_y{y0}-{y1}_x{x0}-{x1}")


def latlon_region(
    lat: np.ndarray | None,
    lon: np.ndarray | None,
    lat_min: float,
    lat_max: float,
    lon_min: float,
    lon_max: float,
) -> Region:
    if lat is None or lon is None:
        raise SystemExit(
            "--lat_min/--lat_max/--lon_min/--lon_max: the drivers file has no lat/lon; use --box"
        )
    mask = (lat >= lat_min) & (lat <= lat_max) & (lon >= lon_min) & (lon <= lon_max)
    return Region(mask, f"lat{lat_min:g}-{lat_max:g}_lon{lon_min:g}-{lon_max:g}")


def _ring(coords, path: Path) -> np.ndarray:
    """(n, 2) lon/lat vertices of one GeoJSON ring; anything else is a named error."""
    try:
        ring = np.asarray(coords, float)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"--polygon {path}: a ring is not a list of [lon, lat] positions ({err})") from err
    if ring.ndim != 2 or ring.shape[1] < 2 or len(ring) < 3:
        raise SystemExit(
            f"--polygon {path}: a ring needs at least 3 [lon, lat] positions, got an array of shape {ring.shape}"
        )
    return ring[:, :2]


def _rings_from_geojson(obj, path: Path) -> list[list[np.ndarray]]:
    """Polygons as lists of rings (exterior first, then holes) from any GeoJSON object."""
    if not isinstance(obj, dict):
        raise SystemExit(f"--polygon {path}: expected a GeoJSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == "FeatureCollection":
        return [p for f in obj.get("features") or [] for p in _rings_from_geojson(f, path)]
    if kind == "Feature":
        return _rings_from_geojson(obj.get("geometry") or {}, path)
    if kind in ("Polygon", "MultiPolygon"):
        coords = obj.get("coordinates")
        polys = [coords] if kind == "Polygon" else coords
        if not isinstance(polys, list) or not all(isinstance(rings, list) and rings for rings in polys):
            raise SystemExit(f"--polygon {path}: {kind} 'coordinates' is not a list of rings")
        return [[_ring(r, path) for r in rings] for rings in polys]
    if kind == "GeometryCollection":
        return [p for g in obj.get("geometries") or [] for p in _rings_from_geojson(g, path)]
    raise SystemExit(f"--polygon {path}: GeoJSON type {kind!r} holds no Polygon/MultiPolygon")


def read_polygon(path: str | Path) -> tuple[list[list[np.ndarray]], str]:
    """Polygons and their coordinate system: 'geo' (lon, lat) or 'grid' (x, y).

    GeoJSON is always lon/lat. CSV: two columns; a header 'x,y' means grid coordinates,
    'lon,lat' / 'longitude,latitude' (or no header) means degrees.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"--polygon {path} does not exist")
    if path.suffix.lower() in (".geojson", ".json"):
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SystemExit(f"--polygon {path}: not valid GeoJSON ({err})") from err
        polys = _rings_from_geojson(obj, path)
        if not polys:
            raise SystemExit(f"--polygon {path}: no polygon found")
        return polys, "geo"
    if path.suffix.lower() != ".csv":
        raise SystemExit(f"--polygon {path}: expected a .geojson or .csv file")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    except (UnicodeDecodeError, csv.Error) as err:
        raise SystemExit(f"--polygon {path}: not a text CSV file ({err})") from err
    system, header, order = "geo", [c.strip().lower() for c in rows[0]] if rows else [], (0, 1)
    if header and not _is_number(header[0]):
        rows = rows[1:]
        if header[:2] == ["x", "y"]:
            system = "grid"
        elif header[:2] in (["lat", "lon"], ["latitude", "longitude"]):
            order = (1, 0)
        elif header[:2] not in (["lon", "lat"], ["longitude", "latitude"]):
            raise SystemExit(f"--polygon {path}: header {header[:2]} is not lon,lat / lat,lon / x,y")
    try:
        ring = np.asarray([[float(r[order[0]]), float(r[order[1]])] for r in rows])
    except (ValueError, IndexError) as err:
        raise SystemExit(f"--polygon {path}: every row needs two numbers ({err})") from err
    if len(ring) < 3:
        raise SystemExit(f"--polygon {path}: a polygon needs at least 3 vertices, got {len(ring)}")
    return [[ring]], system


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def polygon_region(
    path: str | Path, shape: tuple[int, int], lat: np.ndarray | None, lon: np.ndarray | None
) -> Region:
    """Pixels whose centre lies inside the polygon(s) (holes excluded), via matplotlib.path."""
    polys, system = read_polygon(path)
    h, w = shape
    if system == "grid":
        yy, xx = np.mgrid[0:h, 0:w]
        pts = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    else:
        if lat is None or lon is None:
            raise SystemExit(
                f"--polygon {path}: lon/lat polygon but the drivers file has no lat/lon; "
                "use a CSV with header x,y (grid coordinates)"
            )
        pts = np.column_stack([lon.ravel(), lat.ravel()])
    mask = np.zeros(h * w, bool)
    for rings in polys:
        inside = MplPath(rings[0]).contains_points(pts)
        for hole in rings[1:]:
            inside &= ~MplPath(hole).contains_points(pts)
        mask |= inside
    return Region(mask.reshape(h, w), Path(path).stem)


# ------------------------------------------------------------------------------ computation
def regional_frequency(
    run: RunData,
    region: Region,
    share: float = 0.25,
    period: tuple[int, int] | None = None,
    use_truth: bool = False,
    driver_truth: bool = False,
) -> Frequency:
    """Select the extreme weeks of the region and average the driver flags over them.

    ``driver_truth`` averages the ground-truth drivers instead of the predicted ones
    (synthetic runs: what the frequency should be).
    """
    if region.mask.shape != run.shape:
        raise ValueError(f"region mask {region.mask.shape} does not match the run grid {run.shape}")
    if not region.mask.any():
        raise SystemExit(
            f"region {region.name} holds no pixel of the {run.shape[0]} x {run.shape[1]} grid{_extent(run)}; "
            "choose --lat_min/--lat_max/--lon_min/--lon_max, --polygon or --box inside it"
        )
    if period is not None and not any(period[0] <= int(run.labels[i]) <= period[1] for i in run.targets):
        raise SystemExit(
            f"--period: no target week of drivers_{run.split}.nc in {period[0]}..{period[1]} "
            f"(targets {target_range(run)})"
        )
    if use_truth and run.extreme_true is None:
        raise SystemExit(f"--use_truth: drivers_{run.split}.nc has no true extreme/drought map")
    if not use_truth and not run.has_prediction:
        raise SystemExit(
            f"drivers_{run.split}.nc has no predicted extremes (method without logits); use --use_truth"
        )
    ext = run.extreme_true if use_truth else run.extreme
    rows, cols = np.where(region.mask)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    rmask = region.mask[box]
    V, L = len(run.names), run.n_lags
    flagged = np.zeros((V, L))
    counted = np.zeros(L)
    pix_flag = np.zeros((V, L) + rmask.shape)
    pix_count = np.zeros((L,) + rmask.shape)
    weeks, shares = [], {}
    for i in run.targets:  # only weeks that are the target of a sample
        lab = run.labels[i]
        if period is not None and not period[0] <= int(lab) <= period[1]:
            continue
        pix = run.valid_at(i)[box] & rmask
        if not pix.any():
            continue
        frac = float((ext[i][box] > 0)[pix].mean())
        shares[lab] = frac
        if frac < share:
            continue
        weeks.append(lab)
        cov = run.lag_covered(i)[:L]
        flags = (run.window(i, truth=driver_truth, ys=box[0], xs=box[1]) > 0) & pix & cov[None, :, None, None]
        flagged += flags.sum(axis=(2, 3))
        counted += cov * pix.sum()
        pix_flag += flags
        pix_count += cov[:, None, None] * pix
    with np.errstate(invalid="ignore", divide="ignore"):
        table = np.where(counted > 0, flagged / np.maximum(counted, 1), np.nan)
        per_var = flagged.sum(1) / counted.sum() if counted.sum() else np.full(V, np.nan)
        maps = np.where(pix_count > 0, pix_flag / np.maximum(pix_count, 1), np.nan)
    maps[:, :, ~rmask] = np.nan
    return Frequency(run.names, L, weeks, shares, table, per_var, maps, box, region)


def _extent(run: RunData) -> str:
    """' (lat a..b, lon c..d)' of the grid, for messages about a region that misses it."""
    if run.lat is None or run.lon is None:
        return ""
    return (
        f" (lat {np.nanmin(run.lat):.2f}..{np.nanmax(run.lat):.2f}, "
        f"lon {np.nanmin(run.lon):.2f}..{np.nanmax(run.lon):.2f})"
    )


def frequency_table(
    run_dir: str | Path,
    region_box: tuple[int, int, int, int],
    split: str = "test",
    share: float = 0.25,
    use_truth: bool = False,
    n_lags: int | None = None,
) -> np.ndarray:
    """(V, L) frequency table of a run for a grid box (y0, y1, x0, x1); convenience for tests/notebooks."""
    run = load_run(run_dir, split, n_lags=n_lags)
    return regional_frequency(run, box_region(run.shape, *region_box), share, None, use_truth).table


# ---------------------------------------------------------------------------------- outputs
def write_csv(freq: Frequency, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["variable"] + [f"lag_{k}" for k in range(freq.n_lags)] + ["all_lags"])
        for v, name in enumerate(freq.names):
            w.writerow([name] + [f"{x:.6f}" for x in freq.table[v]] + [f"{freq.per_variable[v]:.6f}"])
    return path


def plot_bars(freq: Frequency, path: Path, title: str) -> Path:
    fig, axes = grid_figure(1, 2, panel=3.6)
    ax = axes[0, 0]
    ax.bar(range(len(freq.names)), 100 * np.nan_to_num(freq.per_variable), color="#d62728")
    ax.set_xticks(range(len(freq.names)), freq.names, rotation=60, fontsize=7)
    ax.set_ylabel("driver frequency (%)", fontsize=8)
    ax.set_ylim(0, max(1.0, 1.1 * float(np.nanmax(100 * np.nan_to_num(freq.per_variable), initial=0.0))))
    ax.set_title("per variable (all lags)", fontsize=8)
    ax = axes[0, 1]
    top = float(np.nanmax(100 * freq.table, initial=0.0)) if np.isfinite(freq.table).any() else 0.0
    im = ax.imshow(100 * freq.table, cmap=FREQ_CMAP, aspect="auto", vmin=0, vmax=max(1.0, top))
    ax.set_yticks(range(len(freq.names)), freq.names, fontsize=7)
    ax.set_xticks(range(freq.n_lags), [str(k) for k in range(freq.n_lags)], fontsize=7)
    ax.set_xlabel("lag (weeks before target)", fontsize=8)
    ax.set_title("per variable and lag", fontsize=8)
    fig.colorbar(im, ax=ax).set_label("driver frequency (%)", fontsize=7)
    if freq.table.size <= 160:  # small tables: print the values in the cells
        for (v, k), val in np.ndenumerate(100 * freq.table):
            if np.isfinite(val):
                ax.text(
                    k,
                    v,
                    f"{val:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if val > 0.6 * np.nanmax(100 * freq.table) else "k",
                )
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def plot_maps(freq: Frequency, run: RunData, path: Path, title: str) -> Path:
    lat = run.lat[freq.box] if run.lat is not None else None
    lon = run.lon[freq.box] if run.lon is not None else None
    V, L = len(freq.names), freq.n_lags
    fig, axes = grid_figure(V, L, panel=2.0, aspect=freq.maps.shape[2] / freq.maps.shape[3])
    for v, name in enumerate(freq.names):
        for k in range(L):
            ax = axes[v, k]
            show_field(
                ax,
                100 * freq.maps[v, k],
                cmap=FREQ_CMAP,
                vmin=0,
                vmax=100,
                lat=lat,
                lon=lon,
                colorbar=k == L - 1,
                unit="frequency (%)",
                title=f"{name} lag {k}",
                offset=(freq.box[0].start, freq.box[1].start),  # rows/columns of the full grid, as --box
            )
            outline(ax, freq.region.mask[freq.box], lw=0.5)
            if k:
                ax.set_ylabel("")
            if v < V - 1:
                ax.set_xlabel("")
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def _name(run: RunData, label: str) -> str:
    """A selected week as printed: its date when the run has dates, else ``week_label``."""
    return run.label_text(run.labels.index(label)) if label in run.labels else week_label(label)


def write_outputs(freq: Frequency, run: RunData, out: Path, tag: str = "") -> dict[str, Path]:
    """CSV table, bar chart and per-pixel maps; the weeks used go in a text file beside them."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"frequency_{run.split}_{freq.region.name}{tag}"
    title = (
        f"{run.run_dir.name} [{run.split}] {freq.region.name}: {len(freq.weeks)} target week(s), "
        f"{int(freq.region.mask.sum())} px"
    )
    for table in (out / f"{stem}.csv", out / f"{stem}_weeks.txt"):
        if table.exists():  # redrawn in place like the figures, never silently
            print(f"replacing {table}", file=sys.stderr)
    files = {"csv": write_csv(freq, out / f"{stem}.csv")}
    (out / f"{stem}_weeks.txt").write_text(
        "".join(f"{w}\t{freq.shares[w]:.4f}\n" for w in freq.weeks) or "# no week reached the share\n"
    )
    files["weeks"] = out / f"{stem}_weeks.txt"
    if freq.weeks:
        files["bars"] = plot_bars(freq, out / f"{stem}_bars.png", title)
        files["maps"] = plot_maps(freq, run, out / f"{stem}_maps.png", title)
    return files


def make_region(run: RunData, a: argparse.Namespace) -> Region:
    geo = [a.lat_min, a.lat_max, a.lon_min, a.lon_max]
    chosen = sum(x is not None for x in (a.polygon, a.box)) + any(v is not None for v in geo)
    if chosen > 1:
        raise SystemExit("choose one region: --lat_min.. box, --polygon or --box")
    if a.polygon:
        return polygon_region(a.polygon, run.shape, run.lat, run.lon)
    if a.box:
        return box_region(run.shape, *a.box)
    if any(v is not None for v in geo):
        if any(v is None for v in geo):
            raise SystemExit("--lat_min, --lat_max, --lon_min and --lon_max go together")
        return latlon_region(run.lat, run.lon, *geo)
    return Region(np.ones(run.shape, bool), "all")


def share_type(text: str) -> float:
    """argparse type of ``--share``: a fraction in [0, 1] (0.25, not 25 %)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a fraction in [0, 1] (0.25 = a quarter of the pixels)")
    return value


def add_region_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lat_min", type=float)
    p.add_argument("--lat_max", type=float)
    p.add_argument("--lon_min", type=float)
    p.add_argument("--lon_max", type=float)
    p.add_argument("--polygon", help="GeoJSON (lon/lat) or CSV (lon,lat or x,y header) polygon")
    p.add_argument(
        "--box",
        nargs=4,
        type=int,
        metavar=("Y0", "Y1", "X0", "X1"),
        help="grid box, half-open rows Y0..Y1-1 (row 0 = north, as on every map's axes) and columns X0..X1-1",
    )
    p.add_argument(
        "--share",
        type=share_type,
        default=0.25,
        help="minimum extreme share of the region's valid pixels (default 0.25)",
    )
    p.add_argument(
        "--period",
        nargs=2,
        metavar=("START", "END"),
        help="inclusive target range: YYYYWWW or YYYY (real), time labels (synthetic)",
    )
    p.add_argument("--use_truth", action="store_true", help="select weeks by the true extremes")


def main(argv: list[str] | None = None) -> dict[str, Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder holding drivers_<split>.nc")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--lags", type=int, help="synthetic: weeks before the target (default: config delta_t)")
    add_region_args(p)
    p.add_argument("--out", help="output folder (default: <run>/figures)")
    a = p.parse_args(argv)
    run = load_run(a.run, a.split, n_lags=a.lags)
    region = make_region(run, a)
    period = parse_period(*a.period, years=run.kind == "real") if a.period else None
    freq = regional_frequency(run, region, a.share, period, a.use_truth)
    files = write_outputs(freq, run, Path(a.out) if a.out else Path(a.run) / "figures")
    if run.kind == "synthetic" and run.has_driver_truth and freq.weeks:
        truth = regional_frequency(run, region, a.share, period, a.use_truth, driver_truth=True)
        files["csv_true"] = write_csv(truth, files["csv"].with_name(files["csv"].stem + "_true_drivers.csv"))
    if not freq.weeks:
        best = max(freq.shares.values(), default=0.0)
        print(f"no week reached share {a.share} in region {region.name} (largest share {best:.3f})")
    else:
        print(
            f"{len(freq.weeks)} weeks selected: {' '.join(_name(run, w) for w in freq.weeks[:10])}"
            + (" ..." if len(freq.weeks) > 10 else "")
        )
    for path in files.values():
        print(path)
    return files


if __name__ == "__main__":
    run_main(main)
