"""Regime statistics of synthetic benchmarks, to compare generators (ours vs the published one).

    python scripts/compare_generators.py data/pub/pub_s1 /tmp/ours_s1 \
        [--window Y0 Y1 X0 X1] [--times A B [--times A B ...]] [--by folder|selection]

Each folder holds a benchmark in the published format (``datacube_<name>.nc`` and
``climatology_<name>.nc``). ``--window`` cuts pixels ``[Y0, Y1) x [X0, X1)``; each
``--times A B`` (1-based, inclusive weeks) adds a column; without it the whole length
is used. Rows:

- ``ext1 %`` / ``ext1-3 %``: voxels with extreme class 1 / classes 1-3;
- ``events``: 3-D connected components (26-connectivity) of class 1 inside the
  selection; ``width`` is a component's bounding-box extent in pixels (the larger of
  y and x), ``weeks`` its duration; ``>16px %``: share of class-1 voxels in components
  wider than 16 px;
- ``drivers %``: voxels of ``anomaly_extreme``, per variable and pooled over the
  variables that have drivers; ``random %``: ``anomaly`` voxels that are not drivers;
- ``|z| drv / rnd / nrm``: mean absolute normalised value (per pixel and week of year,
  ``(x - median[w]) / std[w]`` from the climatology file, as the loader does) at
  driver, random-anomaly and normal voxels;
- ``shared %``: share of the variance of ``z`` that the grid shares (the variance of
  the per-week mean over the selection's pixels): near 100 % when a signal the
  climatology missed (a seasonal cycle out of step with the calendar) dominates;
- ``d z`` / ``d z-med``: driver effect size, (mean at drivers - mean elsewhere) / std
  elsewhere, of ``z`` and of ``z`` minus its per-week spatial median (the model's
  ``spatial_anomaly`` channel).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

WEEKS = 52


def event_sizes(ext1: np.ndarray) -> dict[str, float]:
    """Connected components (26-connectivity) of a (T, H, W) 0/1 mask: count, width and duration quantiles."""
    labels, n = ndimage.label(ext1 > 0, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return {"events": 0, "width med": 0.0, "width p90": 0.0, "weeks med": 0.0, "weeks p90": 0.0, ">16px %": 0.0}
    boxes = ndimage.find_objects(labels)
    weeks = np.array([b[0].stop - b[0].start for b in boxes])
    width = np.array([max(b[1].stop - b[1].start, b[2].stop - b[2].start) for b in boxes])
    voxels = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return {
        "events": n,
        "width med": float(np.median(width)),
        "width p90": float(np.percentile(width, 90)),
        "weeks med": float(np.median(weeks)),
        "weeks p90": float(np.percentile(weeks, 90)),
        ">16px %": 100.0 * voxels[width > 16].sum() / voxels.sum(),
    }


def regime_stats(
    extreme: np.ndarray, anomaly: np.ndarray, drivers: np.ndarray, z: np.ndarray | None, names: list[str]
) -> dict[str, float]:
    """All rows for one selection: ``extreme`` (T, H, W) classes, masks and ``z`` (V, T, H, W) normalised values."""
    pct = lambda m: 100.0 * float(np.count_nonzero(m)) / m.size  # noqa: E731
    out = {"ext1 %": pct(extreme == 1), "ext1-3 %": pct((extreme >= 1) & (extreme <= 3))}
    out.update(event_sizes(extreme == 1))
    drv_vars = [v for v in range(len(names)) if drivers[v].any()]
    out["drivers % pooled"] = float(np.mean([pct(drivers[v]) for v in drv_vars])) if drv_vars else 0.0
    for v, n in enumerate(names):
        out[f"drivers % {n}"] = pct(drivers[v])
    for v, n in enumerate(names):
        out[f"random % {n}"] = pct(anomaly[v].astype(bool) & ~drivers[v].astype(bool))
    if z is not None:
        for v, n in enumerate(names):
            d, a = drivers[v].astype(bool), anomaly[v].astype(bool)
            r = a & ~d
            for key, m in (("drv", d), ("rnd", r), ("nrm", ~(a | d))):
                out[f"|z| {key} {n}"] = float(np.abs(z[v][m]).mean()) if m.any() else float("nan")
        for v, n in enumerate(names):
            zv = z[v].astype(np.float64)
            out[f"shared % {n}"] = 100.0 * float(zv.mean(axis=(1, 2)).var() / max(zv.var(), 1e-12))
        for v, n in enumerate(names):
            d = drivers[v].astype(bool)
            zv = z[v].astype(np.float64)
            resid = zv - np.median(zv, axis=(1, 2), keepdims=True)
            out[f"d z {n}"] = effect_size(zv, d)
            out[f"d z-med {n}"] = effect_size(resid, d)
    return out


def effect_size(values: np.ndarray, mask: np.ndarray) -> float:
    """(mean inside ``mask`` - mean outside) / std outside; NaN when either side is empty."""
    if not mask.any() or mask.all():
        return float("nan")
    rest = values[~mask]
    return float((values[mask].mean() - rest.mean()) / max(rest.std(), 1e-12))


def normalise(x: np.ndarray, time_labels: np.ndarray, median: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - median[w]) / std[w] with ``w = (t - 1) % 52`` (std 0 counts as 1), as dataset/synthetic.py does."""
    w = (np.asarray(time_labels) - 1) % WEEKS
    s = np.where(std == 0, np.float32(1), std)
    return ((x - median[w]) / s[w]).astype(np.float32)


def check_selection(path: Path, sizes: dict, labels: np.ndarray, window: list[int] | None,
                    times: list[list[int]]) -> None:
    """An empty or out-of-range selection would divide by zero: one line naming the option instead."""
    if window:
        y0, y1, x0, x1 = window
        if not (0 <= y0 < y1 <= sizes["y"] and 0 <= x0 < x1 <= sizes["x"]):
            raise ValueError(f"--window {y0} {y1} {x0} {x1}: need 0 <= Y0 < Y1 <= {sizes['y']} and "
                             f"0 <= X0 < X1 <= {sizes['x']} (the grid of {path})")
    for a, b in times:
        if not labels.min() <= a <= b <= labels.max():
            raise ValueError(f"--times {a} {b}: need {int(labels.min())} <= A <= B <= {int(labels.max())} "
                             f"(the weeks of {path})")


def folder_stats(folder: Path, window: list[int] | None, times: list[list[int]]) -> dict[str, dict[str, float]]:
    """Statistics of one benchmark folder for each time range (columns keyed 'a-b')."""
    name = folder.name
    ys, xs = (slice(window[0], window[1]), slice(window[2], window[3])) if window else (slice(None), slice(None))
    with xr.open_dataset(folder / f"datacube_{name}.nc") as ds:
        check_selection(folder / f"datacube_{name}.nc", dict(ds.sizes), np.asarray(ds["time"].values), window, times)
        ds = ds.isel(y=ys, x=xs)
        names = [n for n in ds.data_vars if ds[n].dims == ("time", "y", "x") and n != "extreme"]
        labels = np.asarray(ds["time"].values)
        extreme = np.asarray(ds["extreme"].values, np.uint8)
        anomaly = np.asarray(ds["anomaly"].values, np.uint8)
        drivers = np.asarray(ds["anomaly_extreme"].values, np.uint8)
        values = [np.asarray(ds[n].values, np.float32) for n in names]
    clim_path = folder / f"climatology_{name}.nc"
    z = None
    if clim_path.is_file():
        with xr.open_dataset(clim_path) as cl:
            stats = [s.decode() if isinstance(s, bytes) else str(s) for s in cl["climatology"].values]
            z = []
            for n, x in zip(names, values):
                da = cl[n].isel(y=ys, x=xs)
                med = np.asarray(da.isel(climatology=stats.index("median")).values, np.float32)
                std = np.asarray(da.isel(climatology=stats.index("std")).values, np.float32)
                z.append(normalise(x, labels, med, std))
            z = np.stack(z)
    del values
    out = {}
    for a, b in times or [[int(labels[0]), int(labels[-1])]]:
        t = (labels >= a) & (labels <= b)
        zt = z[:, t] if z is not None else None
        out[f"{a}-{b}"] = regime_stats(extreme[t], anomaly[:, t], drivers[:, t], zt, names)
    return out


def print_table(title: str, columns: dict[str, dict[str, float]]) -> None:
    keys = list(next(iter(columns.values())))
    width = max(12, *(len(c) + 2 for c in columns))
    print(f"\n== {title}")
    print(f"{'':22s}" + "".join(f"{c:>{width}s}" for c in columns))
    for k in keys:
        cells = []
        for col in columns.values():
            v = col.get(k, float("nan"))
            cells.append(f"{v:>{width}d}" if isinstance(v, (int, np.integer)) else f"{v:>{width}.3g}")
        print(f"{k:22s}" + "".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="benchmark folders (published format)")
    ap.add_argument("--window", type=int, nargs=4, metavar=("Y0", "Y1", "X0", "X1"), help="pixels [Y0,Y1) x [X0,X1)")
    ap.add_argument("--times", type=int, nargs=2, action="append", metavar=("A", "B"), help="1-based inclusive weeks")
    ap.add_argument(
        "--by",
        choices=("folder", "selection"),
        default="folder",
        help="one table per folder (columns: time ranges) or per time range (columns: folders)",
    )
    args = ap.parse_args(argv)
    results = {}
    for f in args.folders:
        if not (f / f"datacube_{f.name}.nc").is_file():
            print(f"error: {f}/datacube_{f.name}.nc does not exist", file=sys.stderr)
            return 2
        try:
            results[str(f)] = folder_stats(f, args.window, args.times or [])
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    win = "window y {}-{}, x {}-{}".format(*args.window) if args.window else "whole grid"
    if args.by == "folder":
        for f, cols in results.items():
            print_table(f"{f} ({win}; columns: weeks)", cols)
    else:
        for sel in next(iter(results.values())):
            print_table(f"weeks {sel} ({win}; columns: folders)", {Path(f).name: r[sel] for f, r in results.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
