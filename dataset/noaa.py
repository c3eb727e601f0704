"""NOAA VHI labels and masks, shared by the ERA5-Land and CERRA loaders.

Weekly NOAA files ``<root>/<YYYY>/<...><WWW>.VH.nc`` hold ``VCI``, ``TCI``, ``VHI`` and
``mask_cold_surface`` on the climate grid; a week may have several files (satellites
overlap). Per file ``VHI = alpha VCI + (1 - alpha) TCI`` (values outside [0, 100], e.g.
NOAA's -999 fill, are NaN); a week's VHI is the nanmean over its files and a pixel is
cold when any of the week's files flags it.

Decisions on gaps (the published data description leaves them open):

- a target week without any NOAA file is not a sample (it is skipped when the index is built);
- a window week without NOAA data contributes nothing to the anomaly-loss mask;
- a split year without a NOAA folder is an error (a wrong root, not a gap).

Labels, with ``sea = not land``:

- ``mask_extreme`` = VHI < threshold at the target week, 0 on sea, cold, no vegetation, NaN;
- ``mask_extreme_loss`` = VHI < threshold_anomaly in any window week, excluding that
  week's cold pixels;
- ``mask_valid`` (loss/metrics pixels): train ``1 - cold``; val ``1 - cold - no_vegetation``;
  test ``1 - sea - cold - no_vegetation`` (cold at the target week).

With ``window_size`` k > 1 the labels are computed on the coarse grid: VHI is NaN-aware
k x k averaged, and land / cold / no-vegetation are the majority (> 0.5) of each block.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataset.real_common import DataLayoutError, read_fields
from dataset.real_samples import Crop

VH_FILE = re.compile(r"(\d{3})\.VH\.nc$")
SPLITS = ("train", "val", "test")
NOAA_VARIABLES = ("VCI", "TCI", "mask_cold_surface")  # what the labels read of each weekly file


def index_noaa_year(year_dir: Path) -> dict[int, list[Path]]:
    """week -> sorted ``*<WWW>.VH.nc`` files of one NOAA year folder (one ``listdir``)."""
    if not year_dir.is_dir():
        raise DataLayoutError(f"NOAA year folder {year_dir} does not exist")
    out: dict[int, list[Path]] = {}
    for name in sorted(os.listdir(year_dir)):
        m = VH_FILE.search(name)
        if m and 1 <= int(m.group(1)) <= 52:
            out.setdefault(int(m.group(1)), []).append(year_dir / name)
    return out


@dataclass
class NOAAWeek:
    """One week on the sample grid (north-up, pooled): VHI (NaN = no data) and cold flags."""

    vhi: np.ndarray  # float32 [h, w]
    cold: np.ndarray  # bool [h, w]


def index_values(a: np.ndarray) -> np.ndarray:
    """A NOAA index (VCI, TCI) as float32 with values outside [0, 100] (e.g. the -999 fill) as NaN."""
    a = np.array(a, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        a[(a < 0) | (a > 100)] = np.nan
    return a


def file_vhi(vci: np.ndarray, tci: np.ndarray, alpha: float) -> np.ndarray:
    """VHI of one NOAA file: ``alpha VCI + (1 - alpha) TCI`` (NaN where either index is missing)."""
    return alpha * index_values(vci) + (1.0 - alpha) * index_values(tci)


def week_vhi(vhis: list[np.ndarray], colds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The VHI rule of a week: nanmean of its files' VHI (``file_vhi``); cold where any file flags it.

    The one implementation behind the labels (``read_noaa_week``) and the NOAA figures (``vis``).
    """
    cold = np.logical_or.reduce([np.nan_to_num(np.asarray(c, np.float32)) > 0.5 for c in colds])
    if len(vhis) == 1:  # the common case: the nanmean of one file is the file
        return np.asarray(vhis[0], np.float32), cold
    oks = [np.isfinite(v) for v in vhis]
    vhi_sum = sum(np.where(ok, v, 0.0) for ok, v in zip(oks, vhis))
    cnt = sum(ok.astype(np.float32) for ok in oks)
    with np.errstate(invalid="ignore", divide="ignore"):
        vhi = np.where(cnt > 0, vhi_sum / np.maximum(cnt, 1), np.nan).astype(np.float32)
    return vhi, cold


def read_noaa_week(files: list[Path], crop: Crop, alpha: float) -> NOAAWeek:
    """Read VCI, TCI and the cold mask of each file once; VHI and cold by ``week_vhi``."""
    planes = [
        read_fields(path, "NOAA weekly file", list(NOAA_VARIABLES), crop.grid, crop.rows, crop.cols)
        for path in files
    ]
    return noaa_week(planes, crop, alpha)


def noaa_week(planes: list, crop: Crop, alpha: float) -> NOAAWeek:
    """The week from each file's (VCI, TCI, cold) crop in file order, wherever they were read from:
    VHI and cold by ``week_vhi``, oriented north up and pooled to the sample grid."""
    vhi, cold = week_vhi([file_vhi(v, t, alpha) for v, t, _ in planes], [c for _, _, c in planes])
    vhi = crop.pool(crop.orient(vhi))
    cold = crop.pool(crop.orient(cold).astype(np.float32)) > 0.5
    return NOAAWeek(vhi=np.ascontiguousarray(vhi), cold=np.ascontiguousarray(cold))


def drought_label(target: NOAAWeek, land: np.ndarray, no_veg: np.ndarray, threshold: float) -> np.ndarray:
    """Extreme drought at the target week: VHI < threshold, 0 on sea, cold, no vegetation, NaN."""
    with np.errstate(invalid="ignore"):
        low = target.vhi < threshold  # NaN compares False
    return (low & land & ~target.cold & ~no_veg).astype(np.float32)


def anomaly_loss_mask(weeks: list[NOAAWeek | None], threshold_anomaly: float) -> np.ndarray:
    """VHI < threshold_anomaly in any window week (cold pixels of that week excluded)."""
    out = None
    for wk in weeks:
        if wk is None:  # no NOAA data for this window week: contributes nothing
            continue
        with np.errstate(invalid="ignore"):
            m = (wk.vhi < threshold_anomaly) & ~wk.cold
        out = m if out is None else out | m
    if out is None:
        raise ValueError("anomaly_loss_mask needs at least one week with NOAA data")
    return out.astype(np.float32)


def valid_mask(split: str, target: NOAAWeek, land: np.ndarray, no_veg: np.ndarray) -> np.ndarray:
    """Pixels that count for loss and metrics in a phase (train / val / test)."""
    if split == "train":
        m = ~target.cold
    elif split == "val":
        m = ~target.cold & ~no_veg
    elif split == "test":
        m = land & ~target.cold & ~no_veg
    else:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return m.astype(np.float32)


def read_static_mask(path: Path, var: str, crop: Crop, what: str, threshold: float = 0.5) -> np.ndarray:
    """A 0/1 (or fractional) static mask on the sample grid: value > threshold, block majority.

    NaN counts as 0 (e.g. lsm NaN = sea, mask_no_vegetation NaN = vegetated)."""
    (a,) = read_fields(path, what, [var], crop.grid, crop.rows, crop.cols)
    return static_mask(a, crop, threshold)


def static_mask(a: np.ndarray, crop: Crop, threshold: float = 0.5) -> np.ndarray:
    """The rule of :func:`read_static_mask` on the crop's raw values ``a`` (file order), wherever they
    were read from: value > threshold (NaN = 0), oriented north up, block majority."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = (np.nan_to_num(a, nan=0.0) > threshold).astype(np.float32)
    return np.ascontiguousarray(crop.pool(crop.orient(m)) > 0.5)
