"""The reanalysis families ``ERA5_Land`` and ``CERRA``: weekly climate fields with NOAA VHI drought labels.

There is no driver truth: validation and test score the drought map on the split's valid
pixels (methods that predict no extremes score nothing there), and the test writes the
driver flags on the data's own grid for mapping (``--save_predictions true``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dataset.families import DatasetFamily, register_family
from utils.metrics import ExtremeCollector

_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


class ReanalysisFamily(DatasetFamily):
    """ERA5-Land and CERRA with NOAA VHI drought labels: no driver truth, drought maps scored."""

    driver_truth = False

    def __init__(self, name: str, preset: str, dataset_class: str) -> None:
        self.name = name
        self.preset = str(_CONFIGS / preset)
        self._dataset_class = dataset_class  # "module:Class", imported on first use

    def _cls(self) -> Any:
        import importlib

        module, cls = self._dataset_class.split(":")
        return getattr(importlib.import_module(module), cls)

    def load(self, cfg: Any, split: str, *, augment: bool = False) -> Any:
        """The split's weekly samples (augmentation only where asked)."""
        return self._cls().from_config(dataclasses.replace(cfg, is_aug=cfg.is_aug and augment), split)

    def check(self, cfg: Any, train_set: Any, val_set: Any) -> None:
        """These samples hold two channels (weekly mean and std): refuse another in_channels early."""
        if cfg.in_channels != 2:
            raise ValueError(
                f"option 'in_channels' is {cfg.in_channels}; {self.name} samples have 2 input channels "
                "(the weekly mean and std): pass --in_channels 2 or the dataset's preset"
            )
        super().check(cfg, train_set, val_set)

    def val_collectors(self, cfg: Any, dataset: Any, *, drivers: bool) -> list[Any]:
        """Drought F1 of the validation split (picks the best_F1 checkpoint)."""
        from dataset.real_metrics import DroughtClassCollector

        return [ExtremeCollector(cfg.pred_threshold), DroughtClassCollector(cfg.pred_threshold)]

    def test_collectors(self, cfg: Any, dataset: Any, *, run_dir: Path, split: str,
                        attrs: dict[str, str]) -> list[Any]:
        """Drought and no-drought class scores, and the drivers file when asked."""
        from dataset.real_metrics import DroughtClassCollector, DroughtPredictionWriter

        collectors: list[Any] = [DroughtClassCollector(cfg.pred_threshold)]
        if cfg.save_predictions:
            attrs = {"dataset": cfg.dataset, "region": cfg.region if cfg.dataset == "ERA5_Land" else "CERRA",
                     **attrs}
            collectors.append(DroughtPredictionWriter(dataset, run_dir, split, cfg.pred_threshold, attrs))
        return collectors

    def test_metrics(self, cfg: Any, dataset: Any, res: dict[str, Any]) -> dict[str, Any]:
        """Per-class precision, recall, F1 and IoU, their mean, accuracy and counts."""
        m = res["drought_classes"]
        return {
            "n_samples": res["n_samples"],
            "threshold": cfg.pred_threshold,
            **{k: m[k] for k in ("drought", "no_drought", "mean", "oa", "counts")},
        }

    def report(self, label: str, metrics: dict[str, Any]) -> str:
        """The drought table printed by the test scripts."""
        if not any(metrics["counts"].values()):
            return f"{label} predicts no drought map; its driver flags are the output"
        rows = [
            f"{label}, drought map at threshold {metrics['threshold']}:",
            f"| {'class':<10} | precision | recall |    F1  |   IoU  |",
            f"|{'-' * 12}|-----------|--------|--------|--------|",
        ]
        for cls in ("drought", "no_drought", "mean"):
            m = metrics[cls]
            rows.append(
                f"| {cls:<10} |   {_pct(m['precision'])}  | {_pct(m['recall'])} | {_pct(m['f1'])} | {_pct(m['iou'])} |"
            )
        return "\n".join(rows)


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:6.2f}"


register_family(ReanalysisFamily("ERA5_Land", "era5_land.yaml", "dataset.era5_land:ERA5LandDataset"))
register_family(ReanalysisFamily("CERRA", "cerra.yaml", "dataset.cerra:CERRADataset"))
