"""netCDF writers for re-assembled predictions (``drivers_<split>.nc``).

The file holds exactly the volumes the reported driver metrics are computed
from, so reading it back (``xarray.open_dataset``) recomputes them bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.metrics import DriverCollector, _all_reduce_sum

__all__ = ["write_driver_predictions", "PredictionCollector"]

_FLAG = {"flag_values": np.array([0, 1], dtype=np.uint8), "units": "1"}


def write_driver_predictions(
    path: str | Path,
    *,
    driver: np.ndarray,
    driver_true: np.ndarray | None,
    extreme_prob: np.ndarray | None,
    extreme_true: np.ndarray | None,
    var_names: Sequence[str],
    time_labels: Sequence[int],
    y: Sequence[int],
    x: Sequence[int],
    coverage: np.ndarray | None = None,
    threshold: float = 0.5,
    latitude: np.ndarray | None = None,
    longitude: np.ndarray | None = None,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write ``driver`` uint8 (var, time, y, x) and the extreme maps (weeks not predicted: 0 / NaN)."""
    import xarray as xr

    path = Path(path)
    coords: dict[str, Any] = {
        "var": ("var", np.asarray([str(v) for v in var_names], dtype=object)),
        "time": ("time", np.asarray(time_labels, dtype=np.int32), {"long_name": "week index (1-based)"}),
        "y": ("y", np.asarray(y, dtype=np.int32), {"long_name": "row index in the data cube"}),
        "x": ("x", np.asarray(x, dtype=np.int32), {"long_name": "column index in the data cube"}),
    }
    if latitude is not None:
        coords["latitude"] = (("y", "x"), np.asarray(latitude, dtype=np.float32), {"units": "degrees_north"})
    if longitude is not None:
        coords["longitude"] = (("y", "x"), np.asarray(longitude, dtype=np.float32), {"units": "degrees_east"})
    data: dict[str, Any] = {
        "driver": (
            ("var", "time", "y", "x"),
            np.asarray(driver, dtype=np.uint8),
            {**_FLAG, "long_name": "identified driver (majority vote of overlapping windows)",
             "flag_meanings": "normal driver"},
        )
    }
    if driver_true is not None:
        data["driver_true"] = (
            ("var", "time", "y", "x"),
            np.asarray(driver_true, dtype=np.uint8),
            {**_FLAG, "long_name": "ground-truth driver (anomaly_extreme)", "flag_meanings": "normal driver"},
        )
    if extreme_prob is not None:
        prob = np.asarray(extreme_prob, dtype=np.float32)
        data["extreme_prob"] = (
            ("time", "y", "x"),
            prob,
            {"long_name": "predicted probability of an extreme (NaN: week not predicted)", "units": "1"},
        )
        data["extreme"] = (
            ("time", "y", "x"),
            (np.nan_to_num(prob, nan=0.0) >= threshold).astype(np.uint8),
            {**_FLAG, "long_name": f"predicted extreme (probability >= {threshold})",
             "flag_meanings": "normal extreme"},
        )
    if extreme_true is not None:
        data["extreme_true"] = (
            ("time", "y", "x"),
            (np.asarray(extreme_true) == 1).astype(np.uint8),
            {**_FLAG, "long_name": "ground-truth extreme (class 1)", "flag_meanings": "normal extreme"},
        )
    if coverage is not None:
        data["coverage"] = (
            ("time",),
            np.asarray(coverage, dtype=np.int32),
            {"long_name": "number of sample windows covering the week (0: driver flags default to normal)"},
        )
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"Conventions": "CF-1.8", "title": "IDEE re-assembled driver predictions",
                     "threshold_extreme": float(threshold)})
    for k, v in (attrs or {}).items():
        ds.attrs[k] = v if isinstance(v, (int, float, np.number)) else str(v)
    enc = {k: {"zlib": True, "complevel": 4} for k in data}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="netcdf4", encoding=enc)
    tmp.replace(path)
    return path


class PredictionCollector:
    """Engine collector that keeps per-week extreme probabilities and, on ``save``, writes the netCDF.

    It shares the vote volume of a :class:`~utils.metrics.DriverCollector` (listed before it),
    so the file holds exactly what the metrics were computed from.
    """

    name = None  # contributes no metrics

    def __init__(
        self,
        dataset: Any,
        drivers: DriverCollector,
        threshold: float = 0.5,
        y0: int = 0,
        x0: int = 0,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.dataset, self.drivers, self.threshold = dataset, drivers, float(threshold)
        self.t_first = drivers.time_labels[0]
        n_time, (h, w) = len(drivers.time_labels), drivers.truth.shape[2:]
        self.y, self.x = np.arange(y0, y0 + h), np.arange(x0, x0 + w)
        self.prob_sum = torch.zeros(n_time, h, w, dtype=torch.float32)
        self.count = torch.zeros(n_time, dtype=torch.int64)
        self.attrs = attrs or {}
        self.seen_logits = False

    def update(self, batch: dict, out: Any) -> None:
        if getattr(out, "logits", None) is None:
            return
        self.seen_logits = True
        probs = torch.sigmoid(out.logits.detach().float())[:, 0].cpu()
        for n, t in enumerate(torch.as_tensor(batch["timestep"]).reshape(-1).tolist()):
            j = int(t) - self.t_first
            if 0 <= j < self.count.numel():
                self.prob_sum[j] += probs[n]
                self.count[j] += 1

    def all_reduce(self) -> None:
        self.prob_sum = _all_reduce_sum(self.prob_sum)
        self.count = _all_reduce_sum(self.count)

    def result(self) -> dict:
        return {}

    def save(self, run_dir: Path, split: str) -> Path:
        prob = None
        if self.seen_logits or int(self.count.sum()):
            cnt = self.count.view(-1, 1, 1).float()
            prob = torch.where(cnt > 0, self.prob_sum / cnt.clamp(min=1), torch.tensor(float("nan"))).numpy()
        ext_true = self.dataset.extremes_truth() if hasattr(self.dataset, "extremes_truth") else None
        return write_driver_predictions(
            Path(run_dir) / f"drivers_{split}.nc",
            driver=self.drivers.votes.assembled(),
            driver_true=self.drivers.truth,
            extreme_prob=prob,
            extreme_true=None if ext_true is None else np.asarray(ext_true),
            var_names=self.drivers.names,
            time_labels=self.drivers.time_labels,
            y=self.y,
            x=self.x,
            coverage=self.drivers.votes.coverage.numpy(),
            threshold=self.threshold,
            latitude=getattr(self.dataset, "latitude", None),
            longitude=getattr(self.dataset, "longitude", None),
            attrs={"split": split, **self.attrs},
        )
