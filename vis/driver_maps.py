"""Driver maps of a test run: one figure per target week.

Top row: predicted extreme probability, predicted extreme, true extreme. One row per
variable: the flagged drivers at each week before the target (lag 0 = target week);
on synthetic runs the flags are compared with the ground truth (TP / FP / FN
colours). The predicted extreme of the target week is outlined on every panel so
that drivers can be read against it.

    python -m vis.driver_maps --run log/exp1 --split test --n 4 --out figs/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vis.common import (
    COMPARE_CMAP,
    COMPARE_LABELS,
    EXTREME_CLASS_CMAP,
    FLAG_CMAP,
    PROB_CMAP,
    legend_patches,
    outline,
    run_main,
    save,
    select_names,
    show_categories,
    show_field,
)
from vis.runs import RunData, load_run, pick_targets


def _masked(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    out = a.astype(float)
    out[~valid] = np.nan
    return out


def _layout(n_vars: int, ncols: int, aspect: float, panel: float = 1.9) -> tuple[plt.Figure, np.ndarray, np.ndarray]:
    """Top row (maps with colour bar and axes) and the driver grid in separate sub-figures.

    The top row's colour bar and axis labels then cannot widen some driver columns: every lag
    column of the grid gets the same width and spacing.
    """
    aspect = min(max(aspect, 0.3), 3.0)
    top_h, row_h = panel * aspect + 1.0, panel * aspect + 0.1  # the top row has titles and axes
    grid_h = row_h * n_vars + 0.4  # + the lag titles
    fig = plt.figure(figsize=(max(panel * ncols, 4.0), top_h + grid_h), layout="constrained")
    top_fig, grid_fig = fig.subfigures(2, 1, height_ratios=[top_h, grid_h])
    top = top_fig.subplots(1, ncols, squeeze=False)[0]
    grid = grid_fig.subplots(n_vars, ncols, squeeze=False)
    return fig, top, grid


def plot_sample(
    run: RunData,
    i: int,
    out_dir: Path,
    variables: list[str] | None = None,
    n_lags: int | None = None,
    dpi: int = 100,
) -> Path:
    """Figure of target index i; returns the PNG path."""
    names = select_names(run.names, variables, "--variables")
    vidx = [run.names.index(n) for n in names]
    lags = min(n_lags or run.n_lags, run.n_lags)
    valid = run.valid_at(i)
    pred = run.extreme[i]
    flags = run.window(i)[vidx, :lags]
    truth = run.window(i, truth=True)[vidx, :lags] if run.has_driver_truth else None
    covered = run.lag_covered(i)[:lags]
    lag_names = run.lag_labels(i)[:lags]
    ncols = max(lags, 3)
    fig, top, grid = _layout(len(names), ncols, pred.shape[0] / pred.shape[1])
    lat, lon = run.lat, run.lon
    what = "drought" if run.kind == "real" else "extreme"

    if run.extreme_prob is not None:
        show_field(
            top[0],
            _masked(run.extreme_prob[i], valid),
            cmap=PROB_CMAP,
            unit="probability",
            vmin=0,
            vmax=1,
            lat=lat,
            lon=lon,
            title=f"{what} probability",
        )
    else:
        top[0].set_axis_off()
    show_categories(
        top[1], np.ma.masked_where(~valid, pred), EXTREME_CLASS_CMAP, 4, lat, lon, f"predicted {what}"
    )
    outline(top[0], pred)
    if run.extreme_true is not None:
        true = run.extreme_true[i]
        show_categories(
            top[2], np.ma.masked_where(~valid, true), EXTREME_CLASS_CMAP, 4, lat, lon, f"true {what}"
        )
        outline(top[2], pred)
        outline(top[1], true, color="#1f77b4", ls="--")
    else:
        top[2].set_axis_off()
    for ax in top[3:]:
        ax.set_axis_off()
    if ncols > 3:
        if truth is not None:
            legend_patches(top[3], COMPARE_CMAP.colors[1:], COMPARE_LABELS[1:], loc="center", title="drivers")
        else:
            legend_patches(top[3], FLAG_CMAP.colors[1:], ["flagged driver"], loc="center")
        top[3].text(
            0.5,
            0.05,
            f"black line: predicted {what}\nblue dashed: true {what}",
            fontsize=6,
            ha="center",
            transform=top[3].transAxes,
        )

    for r, name in enumerate(names, start=1):  # driver panels: north-up like the top row, no axes
        for k in range(ncols):
            ax = grid[r - 1, k]
            if k >= lags:
                ax.set_axis_off()
                continue
            if not covered[k]:
                ax.text(
                    0.5, 0.5, "before split", ha="center", va="center", fontsize=7, transform=ax.transAxes
                )
                ax.set_xticks([])
                ax.set_yticks([])
            elif truth is not None:
                cls = (flags[r - 1, k] > 0).astype(np.int8) + 2 * (truth[r - 1, k] > 0)
                show_categories(ax, np.ma.masked_where(~valid, cls), COMPARE_CMAP, 4)
            else:
                show_categories(ax, np.ma.masked_where(~valid, flags[r - 1, k] > 0), FLAG_CMAP, 2)
            if covered[k]:
                outline(ax, pred, lw=0.6)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_xlabel("")
                ax.set_ylabel("")
            if r == 1:
                ax.set_title(("lag 0 (target)\n" if k == 0 else f"lag {k}\n") + lag_names[k], fontsize=7)
            if k == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"{run.run_dir.name} [{run.split}] drivers before {run.label_text(i)}", fontsize=9)
    return save(fig, out_dir / f"drivers_{run.split}_{run.labels[i]}.png", dpi=dpi)


def driver_maps(
    run_dir: str | Path,
    split: str = "test",
    targets: list[str] | None = None,
    n: int = 4,
    out: str | Path | None = None,
    variables: list[str] | None = None,
    n_lags: int | None = None,
) -> list[Path]:
    """Figures for the chosen targets (default: the n with most predicted + true extremes)."""
    run = load_run(run_dir, split, n_lags=n_lags)
    out_dir = Path(out) if out else Path(run_dir) / "figures"
    return [plot_sample(run, i, out_dir, variables, n_lags) for i in pick_targets(run, n, targets)]


def main(argv: list[str] | None = None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder <dir_log>/<name> holding drivers_<split>.nc")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--times", nargs="+", help="synthetic target time labels (1-based)")
    g.add_argument("--weeks", nargs="+", help="real-data target weeks YYYYWWW")
    p.add_argument("--n", type=int, default=4, help="number of targets when none is given (default 4)")
    p.add_argument("--variables", nargs="+", help="variables to show (default: all)")
    p.add_argument("--lags", type=int, help="weeks before the target to show (default: the model's window)")
    p.add_argument("--out", help="output folder (default: <run>/figures)")
    a = p.parse_args(argv)
    if a.n < 1:
        p.error(f"--n {a.n}: give at least 1 target week (or name them with --times / --weeks)")
    paths = driver_maps(a.run, a.split, a.times or a.weeks, a.n, a.out, a.variables, a.lags)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    run_main(main)
