"""The ``datacube`` family: the user's own gridded data (``dataset/datacube.py``), any method.

Extremes are always scored; drivers are scored (pooled and per variable, with the Naive
reference) when ``--truth_drivers`` names the true drivers, and otherwise only written
(``--save_predictions true``) for mapping.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from dataset.families import DatasetFamily, register_family
from dataset.families.synthetic import gate_line, naive_reference
from utils.checkpoints import write_atomic
from utils.distributed import is_main
from utils.driver_gate import gate_spec
from utils.metrics import DriverCollector, ExtremeCollector
from utils.tables import paper_markdown, percent


class _Votes(DriverCollector):
    """The driver votes of a split without driver truth: re-assembled for the file, not scored."""

    name = None
    checkpoint_keys = {}


def source_stamp(data: Any) -> list[list[Any]]:
    """[path, size, modification time] of each file behind ``--data`` (a zarr store: of its metadata
    file), so a cached climatology of data rewritten at the same path is not reused."""
    from dataset.datacube import source_paths
    from dataset.zarr_store import store_marker

    if not data:
        return []
    stamp: list[list[Any]] = []
    for p in map(Path, source_paths(str(data))):
        p = store_marker(p) or p
        if p.exists():
            st = p.stat()
            stamp.append([str(p), st.st_size, st.st_mtime_ns])
    return stamp


class DatacubeFamily(DatasetFamily):
    """A user's own datacube (any xarray source): extremes always, drivers when truth is given."""

    name = "datacube"
    driver_gate = True
    driver_truth = True  # when --truth_drivers is given; threshold_rules says what holds

    #: the options a cached climatology was computed from; another value of any of them, or data
    #: rewritten at the same path (:func:`source_stamp`), recomputes it
    CLIMATOLOGY_KEYS = ("data", "variables", "statistics", "step", "period_train", "target",
                        "lat_min", "lat_max", "lon_min", "lon_max")

    def load(self, cfg: Any, split: str, *, augment: bool = False) -> Any:
        """The split; the training period's climatology is cached in the run folder once it exists."""
        from dataset.datacube import DatacubeDataset

        cache = Path(cfg.run_dir) / "datacube_climatology.nc"
        key = json.dumps({**{k: getattr(cfg, k) for k in self.CLIMATOLOGY_KEYS}, "source": source_stamp(cfg.data)},
                         sort_keys=True, default=str)
        clim = None
        if cfg.is_norm and cfg.climatology:
            clim = read_climatology(cfg.climatology, len(cfg.variables), len(cfg.statistics))
        elif cfg.is_norm and cache.is_file():
            clim = _cached_climatology(cache, key)
        dataset = DatacubeDataset(cfg, split, augment=augment and cfg.is_aug, climatology=clim)
        # (a given --climatology is not copied); under torchrun every rank computes it, rank 0 writes it
        if cfg.is_norm and clim is None and cache.parent.is_dir() and is_main():
            med, std = dataset.climatology
            dims = ("variable", "statistic", "step_of_year", "y", "x")
            nc = xr.Dataset({"median": (dims, med), "std": (dims, std)}, attrs={"options": key}).to_netcdf()
            # a temporary file renamed over the cache: a crash mid-write never leaves a half file behind
            write_atomic(cache, nc, then="free space (or fix the folder's permissions), then run again")
        return dataset

    def check(self, cfg: Any, train_set: Any, val_set: Any) -> None:
        """The family checks, plus the test period, so a bad one fails before training."""
        from dataset.datacube import DatacubeDataset

        super().check(cfg, train_set, val_set)
        DatacubeDataset.check_period(cfg, "test")  # before hours of training, not after

    def threshold_rules(self, cfg: Any = None) -> tuple[str, ...]:
        """Without ``truth_drivers`` the val_f1 rule has nothing to fit: only the others."""
        if cfg is not None and not cfg.truth_drivers:
            return ("normal_percentile", "fixed")
        return super().threshold_rules(cfg)

    def val_collectors(self, cfg: Any, dataset: Any, *, drivers: bool) -> list[Any]:
        """Extreme scores, and driver scores when the datacube has true drivers."""
        collectors: list[Any] = [ExtremeCollector(cfg.pred_threshold)]
        if drivers and cfg.truth_drivers:
            collectors.append(DriverCollector(dataset, cfg.delta_t, gate_spec(cfg)))
        return collectors

    def test_collectors(self, cfg: Any, dataset: Any, *, run_dir: Path, split: str,
                        attrs: dict[str, str]) -> list[Any]:
        """Extremes, driver votes (scored against truth when given) and the prediction file."""
        from utils.predictions import PredictionCollector

        collectors: list[Any] = [ExtremeCollector(cfg.pred_threshold)]
        truth = dataset if cfg.truth_drivers else _NoTruth(dataset)
        votes = (DriverCollector if cfg.truth_drivers else _Votes)(truth, cfg.delta_t, gate_spec(cfg))
        collectors.append(votes)
        if cfg.save_predictions:
            attrs = {**attrs, "data": str(cfg.data)}
            collectors.append(PredictionCollector(dataset, votes, cfg.pred_threshold, attrs=attrs))
        return collectors

    def test_metrics(self, cfg: Any, dataset: Any, res: dict[str, Any]) -> dict[str, Any]:
        """Extreme metrics; with true drivers also driver metrics and the Naive reference."""
        metrics = {"n_samples": res["n_samples"], "extremes": res.get("extremes", {})}
        if cfg.truth_drivers:
            metrics["drivers"] = res["drivers"]
            metrics["naive"] = naive_reference(dataset, cfg.delta_t)
        return metrics

    def report(self, label: str, metrics: dict[str, Any]) -> str:
        """The paper-style table when drivers are scored, else the extreme scores."""
        if "drivers" in metrics:
            per_variable = "; ".join(
                f"{v} F1 {percent(s['f1'])}%" for v, s in metrics["drivers"]["per_variable"].items()
            )
            return paper_markdown(metrics, label) + f"\nper variable ({label}): {per_variable}" + gate_line(metrics)
        ext = metrics.get("extremes") or {}
        if not ext:
            return f"{label} predicts no extreme map; its driver flags are the output"
        return (f"{label}: extreme F1 {percent(ext.get('f1'))} %, precision {percent(ext.get('precision'))} %, "
                f"recall {percent(ext.get('recall'))} % (no driver truth: drivers are written, not scored)")


def _cached_climatology(cache: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The run folder's climatology if it was computed for these options (``key``), else None. A damaged
    cache (a crash of an older version mid-write, a full disk) is only a cache: warn and recompute it."""
    try:
        with xr.open_dataset(cache) as c:
            if c.attrs.get("options") != key:
                return None
            return c["median"].values, c["std"].values
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        from dataset.datacube import cause_of

        print(f"warning: cannot read the cached climatology {cache} ({cause_of(err)}); recomputing it",
              file=sys.stderr, flush=True)
        return None


def read_climatology(path: str, n_vars: int, n_stats: int) -> tuple[np.ndarray, np.ndarray]:
    """``--climatology``: median and std, dims (variable, statistic, step_of_year, y, x)."""
    from dataset.datacube import read_errors

    if not Path(path).is_file():
        raise FileNotFoundError(f"option 'climatology': {path} does not exist")
    with read_errors("climatology", path):  # a damaged or foreign file: one line naming the option
        c = xr.open_dataset(path)
    with c:
        missing = [v for v in ("median", "std") if v not in c.data_vars]
        if missing:
            raise ValueError(f"option 'climatology': {path} has no variable {', '.join(missing)}")
        with read_errors("climatology", path):
            med, std = c["median"].values.astype(np.float32), c["std"].values.astype(np.float32)
    if med.ndim != 5 or med.shape[:2] != (n_vars, n_stats) or std.shape != med.shape:
        raise ValueError(
            f"option 'climatology': {path} holds median {med.shape}; expected (variables {n_vars}, statistics "
            f"{n_stats}, step_of_year, y, x)"
        )
    return med, std


class _NoTruth:
    """The dataset seen by a votes-only collector: its driver truth is an empty volume of the right shape."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self.time_labels, self.variables = dataset.time_labels, dataset.variables

    def drivers_truth(self) -> np.ndarray:
        v, t, (h, w) = len(self.variables), len(self.time_labels), self.dataset.grid_shape
        return np.zeros((v, t, h, w), np.uint8)


register_family(DatacubeFamily())
