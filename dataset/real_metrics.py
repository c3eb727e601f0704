"""Engine collectors for real data (ERA5-Land, CERRA): per-class drought metrics and the prediction file.

``DroughtClassCollector`` (name ``drought_classes``): confusion counts of ``sigmoid(logits) >=
threshold`` against ``mask_extreme`` on the valid pixels (``mask_valid``), micro over the split,
reported per class — ``drought`` (positive = drought) and ``no_drought`` (positive = no drought) —
with precision, recall, F1, IoU and their ``mean`` over the two classes, plus OA.

``DroughtPredictionWriter``: ``drivers_<split>.nc`` on the data's own grid and week labels::

    driver        uint8   (week, var, lag, <y>, <x>)   flags; lag 0 = target week, lag k = k weeks before
    drought       uint8   (week, <y>, <x>)             predicted drought (prob >= threshold)
    drought_prob  float32 (week, <y>, <x>)
    drought_true  uint8   (week, <y>, <x>)             the label (VHI < threshold)
    valid         uint8   (week, <y>, <x>)             the phase's valid pixels
    coords: week ("YYYYWWW"), var, lag, <y>/<x> (rlat/rlon or y/x) and 2-D lat/lon when the files have them

Rows are north-up (as the samples). Each rank appends its samples to a temporary file while
the split runs (memory stays per-sample); ``save`` on rank 0 merges them in week order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import torch

from utils.distributed import barrier
from utils.metrics import ExtremeMetrics, scores_from_counts

__all__ = ["DroughtClassCollector", "DroughtPredictionWriter", "class_scores"]

KEYS = ("precision", "recall", "f1", "iou")


def class_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, Any]:
    """Per-class (drought / no drought) precision, recall, F1, IoU, their means, OA and the counts."""
    drought = scores_from_counts(tp, fp, fn, tn)
    no_drought = scores_from_counts(tn, fn, fp, tp)  # the other class as positive
    return {
        "drought": {k: drought[k] for k in KEYS},
        "no_drought": {k: no_drought[k] for k in KEYS},
        "mean": {k: 0.5 * (drought[k] + no_drought[k]) for k in KEYS},
        "oa": drought["oa"],
        "counts": {k: drought[k] for k in ("tp", "fp", "fn", "tn")},
    }


class DroughtClassCollector:
    """Drought / no-drought metrics on valid pixels (engine collector protocol)."""

    name = "drought_classes"

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.metrics = ExtremeMetrics(threshold)

    def update(self, batch: dict, out: Any) -> None:
        if getattr(out, "logits", None) is None:
            return
        probs = torch.sigmoid(out.logits.detach().float())[:, 0]
        self.metrics.update(probs, batch["mask_extreme"], batch.get("mask_valid"))

    def all_reduce(self) -> None:
        self.metrics.all_reduce()

    def result(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **class_scores(*self.metrics.counts.tolist())}


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DroughtPredictionWriter:
    """Writes ``drivers_<split>.nc`` (see the module docstring); contributes no metrics."""

    name = None

    def __init__(
        self,
        dataset: Any,
        run_dir: str | Path,
        split: str,
        threshold: float,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.dataset, self.split, self.threshold = dataset, split, float(threshold)
        self.run_dir = Path(run_dir)
        self.attrs = attrs or {}
        self.rank, self.world = _rank_world()
        self.tmp = self.run_dir / f".drivers_{split}.rank{self.rank}.nc"
        self._nc: netCDF4.Dataset | None = None
        self._n = 0

    def _open(self, v: int, t: int, h: int, w: int) -> netCDF4.Dataset:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        nc = netCDF4.Dataset(self.tmp, "w")
        nc.createDimension("sample", None)
        for name, size in (("var", v), ("lag", t), ("y", h), ("x", w)):
            nc.createDimension(name, size)
        nc.createVariable("timestep", "i8", ("sample",))
        nc.createVariable("driver", "u1", ("sample", "var", "lag", "y", "x"), chunksizes=(1, v, t, h, w))
        nc.createVariable("drought_prob", "f4", ("sample", "y", "x"), chunksizes=(1, h, w))
        for name in ("drought_true", "valid"):
            nc.createVariable(name, "u1", ("sample", "y", "x"), chunksizes=(1, h, w))
        return nc

    def update(self, batch: dict, out: Any) -> None:
        flags = torch.as_tensor(out.anomaly).detach().to("cpu", torch.uint8).numpy()  # [N, V, T, H, W]
        n, v, t, h, w = flags.shape
        if out.logits is not None:
            prob = torch.sigmoid(out.logits.detach().float())[:, 0].cpu().numpy()
        else:
            prob = np.full((n, h, w), np.nan, np.float32)
        true = (batch["mask_extreme"].detach().cpu().numpy() > 0.5).astype(np.uint8)
        valid = batch.get("mask_valid")
        valid = np.ones((n, h, w), np.uint8) if valid is None else (valid.detach().cpu().numpy() > 0.5).astype(np.uint8)
        if self._nc is None:
            self._nc = self._open(v, t, h, w)
        nc, k = self._nc, self._n
        nc["timestep"][k : k + n] = torch.as_tensor(batch["timestep"]).reshape(-1).cpu().numpy()
        nc["driver"][k : k + n] = flags
        nc["drought_prob"][k : k + n] = prob
        nc["drought_true"][k : k + n] = true
        nc["valid"][k : k + n] = valid
        self._n += n

    def all_reduce(self) -> None:
        """Close this rank's file; every rank waits so that rank 0 can merge complete files."""
        if self._nc is not None:
            self._nc.close()
            self._nc = None
        if self.world > 1:
            barrier()

    def result(self) -> dict:
        return {}

    def save(self, run_dir: Path, split: str) -> Path:
        """Merge the ranks' files into ``<run_dir>/drivers_<split>.nc``, weeks in split order."""
        path = Path(run_dir) / f"drivers_{split}.nc"
        parts = [self.run_dir / f".drivers_{split}.rank{r}.nc" for r in range(self.world)]
        parts = [p for p in parts if p.is_file()]
        sources = [netCDF4.Dataset(p, "r") for p in parts]
        try:
            where: dict[int, tuple[int, int]] = {}
            for s, src in enumerate(sources):
                for k, ts in enumerate(np.asarray(src["timestep"][:]).tolist()):
                    where[int(ts)] = (s, k)
            order = sorted(where)
            self._write(path, sources, where, order)
        finally:
            for src in sources:
                src.close()
            for p in parts:
                p.unlink()
        return path

    def _write(self, path: Path, sources: list, where: dict[int, tuple[int, int]], order: list[int]) -> None:
        ds = self.dataset
        names = list(ds.variables)
        h, w = ds.crop.shape
        t = ds.delta_t
        ydim, xdim = ds.dims
        labels = ds.week_labels
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        with netCDF4.Dataset(tmp, "w") as nc:
            nc.createDimension("week", len(order))
            for name, size in (("var", len(names)), ("lag", t), (ydim, h), (xdim, w)):
                nc.createDimension(name, size)
            wk = nc.createVariable("week", str, ("week",))
            wk[:] = np.array([labels[i] for i in order], dtype=object)
            wk.long_name = "target week YYYYWWW"
            vv = nc.createVariable("var", str, ("var",))
            vv[:] = np.array(names, dtype=object)
            lag = nc.createVariable("lag", "i4", ("lag",))
            lag[:] = np.arange(t, dtype=np.int32)
            lag.long_name = "weeks before the target week (0 = target week)"
            for dim, size in ((ydim, h), (xdim, w)):
                c = nc.createVariable(dim, "f8", (dim,))
                c[:] = ds.coords.get(dim, np.arange(size, dtype=np.float64))
            for key, units in (("lat", "degrees_north"), ("lon", "degrees_east")):
                if key in ds.coords:
                    c = nc.createVariable(key, "f4", (ydim, xdim))
                    c[:] = ds.coords[key].astype(np.float32)
                    c.units = units
            spatial = (ydim, xdim)
            zl = {"zlib": True, "complevel": 4}
            drv = nc.createVariable(
                "driver", "u1", ("week", "var", "lag", *spatial), chunksizes=(1, len(names), t, h, w), **zl
            )
            drv.long_name = "identified driver flag (1 = driver)"
            out = {
                "drought": nc.createVariable("drought", "u1", ("week", *spatial), chunksizes=(1, h, w), **zl),
                "drought_prob": nc.createVariable("drought_prob", "f4", ("week", *spatial), chunksizes=(1, h, w), **zl),
                "drought_true": nc.createVariable("drought_true", "u1", ("week", *spatial), chunksizes=(1, h, w), **zl),
                "valid": nc.createVariable("valid", "u1", ("week", *spatial), chunksizes=(1, h, w), **zl),
            }
            out["drought"].long_name = f"predicted extreme drought (drought_prob >= {self.threshold})"
            out["drought_true"].long_name = "extreme drought label (VHI below the threshold)"
            out["valid"].long_name = f"pixels counted in the metrics of split {self.split}"
            for j, ts in enumerate(order):
                s, k = where[ts]
                src = sources[s]
                drv[j] = src["driver"][k]
                prob = np.asarray(src["drought_prob"][k])
                out["drought_prob"][j] = prob
                out["drought"][j] = (np.nan_to_num(prob, nan=0.0) >= self.threshold).astype(np.uint8)
                out["drought_true"][j] = src["drought_true"][k]
                out["valid"][j] = src["valid"][k]
            nc.setncatts(
                {
                    "title": "IDEE drivers of extreme droughts",
                    "split": self.split,
                    "threshold_drought": self.threshold,
                    "rows": "north-up",
                    **{k: str(v) for k, v in self.attrs.items()},
                }
            )
        tmp.replace(path)
