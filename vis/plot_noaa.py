"""Maps of NOAA vegetation health files (``<root>/<YYYY>/<...><YYYY><WWW>.VH.nc``).

Per week: VCI, TCI (nanmean over the week's files), VHI by the label's rule
(``dataset.noaa.week_vhi``: per file alpha VCI + (1-alpha) TCI, then the nanmean) and the
extreme-drought label VHI < threshold. Cold surface and, with ``--masks``, sea /
no-vegetation pixels are grey; drought pixels are outlined. Row 0 is the northernmost row.

    python -m vis.plot_noaa --root ../NOAA_CORDEX/EUR-11 --weeks 2022030 2022031 \\
        --masks ../NOAA_CORDEX/EUR-11/EUR-11_masks.nc --out figs/noaa
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vis.common import (
    FLAG_CMAP,
    cmap_of,
    grid_figure,
    legend_patches,
    outline,
    run_main,
    save,
    show_categories,
    show_field,
    unit_of,
    week_label,
)
from vis.weekly import (
    NOAA_FILE,
    NOAA_VARS,
    choose_weeks,
    drought_mask,
    list_weeks,
    read_masks,
    read_noaa_week,
    weekly_parser,
)


def plot_week(
    week: str, files: list[Path], out: Path, threshold: float, alpha: float, bad: np.ndarray | None
) -> Path:
    data = read_noaa_week(files, alpha)
    lat, lon = data.pop("_geometry")  # type: ignore[misc]
    cold = data.get("mask_cold_surface")
    names = [n for n in NOAA_VARS if n in data]
    shape = data[names[0]].shape
    hide = np.zeros(shape, bool)
    if cold is not None:
        hide |= cold
    if bad is not None:
        if bad.shape != shape:
            raise SystemExit(f"--masks grid {bad.shape} differs from the NOAA grid {shape}")
        hide |= bad
    drought = drought_mask(data, threshold, bad)
    fig, axes = grid_figure(1, len(names) + 1, panel=3.0, aspect=shape[0] / shape[1])
    for ax, name in zip(axes[0], names):
        field = np.where(hide, np.nan, data[name])
        long, unit = unit_of(name)
        show_field(
            ax,
            field,
            name,
            unit,
            cmap_of(name),
            lat,
            lon,
            vmin=0,
            vmax=100,
            title=f"{name}\n{long}",
        )
        outline(ax, drought, lw=0.7)
    ax = axes[0, -1]
    if drought is not None:
        show_categories(
            ax,
            np.ma.masked_where(hide, drought),
            FLAG_CMAP,
            2,
            lat,
            lon,
            f"extreme drought (VHI < {threshold:g})",
        )
        legend_patches(
            ax, [FLAG_CMAP.colors[1], "#d9d9d9"], ["drought", "masked"], loc="upper right", framealpha=0.8
        )
    else:
        ax.set_axis_off()
    n = len(files)
    fig.suptitle(f"NOAA VHI {week_label(week)} ({n} file{'s' if n > 1 else ''})", fontsize=9)
    return save(fig, out / f"NOAA_{week}.png")


def main(argv: list[str] | None = None) -> list[Path]:
    p = weekly_parser(__doc__, "NOAA folder holding <YYYY>/<...><YYYY><WWW>.VH.nc", "VH files, all of one week")
    p.add_argument("--masks", help="masks file (lsm, mask_no_vegetation); default: *masks.nc in --root")
    p.add_argument("--threshold", type=float, default=26.0, help="VHI drought threshold (default 26)")
    p.add_argument("--alpha", type=float, default=0.5, help="VHI = alpha VCI + (1-alpha) TCI")
    p.add_argument("--out", default="figures/NOAA", help="output folder")
    a = p.parse_args(argv)
    masks = Path(a.masks) if a.masks else None
    if a.file:
        files = [Path(f) for f in a.file]
        for f in files:
            if not f.is_file():
                raise SystemExit(f"--file {f} does not exist")
        m = NOAA_FILE.search(files[0].name)
        weeks = {m.group(1) + m.group(2) if m else files[0].stem: files}
        chosen = list(weeks)
    else:
        root = Path(a.root)
        weeks = list_weeks(root, NOAA_FILE)
        chosen = choose_weeks(weeks, a.weeks, a.period, a.max_weeks, root)
        if masks is None:
            found = sorted(root.glob("*masks.nc"))
            masks = found[0] if found else None
    bad = read_masks(masks) if masks else None
    paths = [plot_week(w, weeks[w], Path(a.out), a.threshold, a.alpha, bad) for w in chosen]
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    run_main(main)
