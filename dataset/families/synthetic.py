"""The ``synthetic`` family: benchmark cubes with known drivers (our generator or the published one).

Validation and test score the extremes and the drivers against the cube's truth; the test
also scores the Naive reference (every variable flagged wherever an extreme follows).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from dataset.families import DatasetFamily, register_family
from utils.driver_gate import GateSetting, gate_spec
from utils.metrics import DriverCollector, ExtremeCollector, driver_scores, naive_drivers, valid_pixels
from utils.tables import paper_markdown, percent


def naive_reference(dataset: Any, delta_t: int) -> dict[str, Any]:
    """Driver scores of the Naive reference (every variable, every week of a window with an extreme)."""
    truth = np.asarray(dataset.drivers_truth())
    flags = naive_drivers(dataset.extremes_truth(), delta_t)
    return driver_scores(np.broadcast_to(flags[None], truth.shape), truth, list(dataset.variables),
                         valid_pixels(dataset))


class SyntheticFamily(DatasetFamily):
    """Synthetic benchmarks: known drivers, so driver F1 and the Naive reference are scored."""

    name = "synthetic"
    driver_truth = True
    driver_gate = True

    def load(self, cfg: Any, split: str, *, augment: bool = False) -> Any:
        """The split's windows of the benchmark cube (augmentation only where asked)."""
        from dataset.synthetic import SyntheticDataset

        return SyntheticDataset.from_config(dataclasses.replace(cfg, is_aug=cfg.is_aug and augment), split)

    def check(self, cfg: Any, train_set: Any, val_set: Any) -> None:
        """A split shorter than the window has no sample: say which option, before training."""
        for split, ds in (("train", train_set), ("val", val_set)):
            if len(ds) < 1:
                raise ValueError(
                    f"option 'times_{split}' = {tuple(getattr(cfg, 'times_' + split))} holds fewer weeks than "
                    f"delta_t = {cfg.delta_t}: no samples"
                )

    def val_collectors(self, cfg: Any, dataset: Any, *, drivers: bool) -> list[Any]:
        """Extreme scores and, when asked, driver scores (best_driver_F1 checkpoint)."""
        collectors: list[Any] = [ExtremeCollector(cfg.pred_threshold)]
        if drivers:
            collectors.append(DriverCollector(dataset, cfg.delta_t, gate_spec(cfg)))
        return collectors

    def test_collectors(self, cfg: Any, dataset: Any, *, run_dir: Path, split: str,
                        attrs: dict[str, str]) -> list[Any]:
        """Extremes, re-assembled driver votes and the drivers file when asked."""
        from utils.predictions import PredictionCollector

        votes = DriverCollector(dataset, cfg.delta_t, gate_spec(cfg))
        collectors: list[Any] = [ExtremeCollector(cfg.pred_threshold), votes]
        if cfg.save_predictions:
            attrs = {**attrs, "root_synthetic": cfg.root_synthetic}
            collectors.append(
                PredictionCollector(dataset, votes, cfg.pred_threshold, cfg.y_min, cfg.x_min, attrs=attrs)
            )
        return collectors

    def test_metrics(self, cfg: Any, dataset: Any, res: dict[str, Any]) -> dict[str, Any]:
        """Extreme and driver metrics beside the Naive reference."""
        return {
            "n_samples": res["n_samples"],
            "extremes": res.get("extremes", {}),
            "drivers": res["drivers"],
            "naive": naive_reference(dataset, cfg.delta_t),
        }

    def report(self, label: str, metrics: dict[str, Any]) -> str:
        """The paper-style table (``utils.tables``, as in the HTML report) and the per-variable line."""
        per_variable = "; ".join(
            f"{v} F1 {percent(s['f1'])}% FPR {100 * s['fpr']:.2f}%"
            for v, s in metrics["drivers"]["per_variable"].items()
        )
        return paper_markdown(metrics, label) + f"\nper variable ({label}): {per_variable}" + gate_line(metrics)


def gate_line(metrics: dict[str, Any]) -> str:
    """The extreme gate's threshold and the ungated driver F1, when the run was gated (else nothing)."""
    gate = metrics.get("drivers", {}).get("gate")
    if not gate:
        return ""
    setting = GateSetting.from_record(gate)
    return f"\ndriver gate: flags kept where {setting.describe()}; ungated driver F1 {percent(gate['ungated']['f1'])} %"


register_family(SyntheticFamily())
