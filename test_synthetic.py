"""Evaluate a trained IDE checkpoint on a synthetic benchmark split (driver and extreme metrics).

    python test_synthetic.py --config log/swin_small/config.yaml --split test \\
        [--checkpoint PATH] [--save_predictions true]

Without ``--checkpoint`` the run folder's best_driver_F1_model.pth is used
(then best_F1, best_loss, last). Prints the paper-style row beside the Naive
reference and writes ``metrics_<split>.json`` (fractions in [0, 1]) and, with
``--save_predictions true``, ``drivers_<split>.nc`` into ``<dir_log>/<name>/``.
The test config goes to ``config_test_<split>.yaml``; config.yaml is never touched.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from config import parse_config
from train_synthetic import synthetic_collectors
from utils import engine
from utils.distributed import cleanup
from utils.logging import user_errors
from utils.metrics import driver_scores, naive_drivers
from utils.tables import method_label, paper_markdown, percent

PROG = "test_synthetic.py"


def naive_reference(dataset: Any, delta_t: int) -> dict[str, Any]:
    """Driver scores of the Naive reference (every variable, every week of a window with an extreme)."""
    truth = np.asarray(dataset.drivers_truth())
    flags = naive_drivers(dataset.extremes_truth(), delta_t)
    return driver_scores(np.broadcast_to(flags[None], truth.shape), truth, list(dataset.variables))


def table(name: str, metrics: dict[str, Any]) -> str:
    """The paper-style table (``utils.tables``, as in the HTML report) and the per-variable line."""
    per_variable = "; ".join(
        f"{v} F1 {percent(s['f1'])}% FPR {100 * s['fpr']:.2f}%" for v, s in metrics["drivers"]["per_variable"].items()
    )
    return paper_markdown(metrics, name) + f"\nper variable ({name}): {per_variable}"


def calibrate_threshold(cfg: Any, model: Any, rt: Any) -> dict[str, Any]:
    """Score-based baselines: driver threshold from the validation split (never the test split)."""
    from dataset.synthetic import SyntheticDataset
    from utils.metrics import ScoreThreshold

    if cfg.driver_threshold_rule == "fixed":
        if cfg.driver_threshold is None:
            raise ValueError("option 'driver_threshold_rule' is fixed but 'driver_threshold' is not set")
        model.threshold = float(cfg.driver_threshold)
        return {"threshold": model.threshold, "rule": "fixed"}
    collector = ScoreThreshold(cfg.driver_threshold_rule, cfg.driver_threshold_percentile)
    val = SyntheticDataset.from_config(cfg, "val")
    res = engine.evaluate(cfg, model, val, [collector], runtime=rt, with_loss=False, desc="threshold on val")
    model.threshold = res["threshold"]["threshold"]
    return res["threshold"]


def main(argv: list[str] | None = None, build: Any = None, description: str | None = None) -> int:
    """``build``: model hook for the baselines (default: IDE); models with ``needs_threshold`` get
    their driver threshold from the validation split first."""
    description = description or __doc__.split("\n")[0]
    cfg = parse_config(argv, description=description, fixed={"dataset": "synthetic"})
    from dataset.grid_signal import resolve_spatial_anomaly
    from dataset.synthetic import SyntheticDataset
    from models.build import build_model

    split = cfg.split
    with user_errors(PROG):
        rt = engine.setup_runtime(cfg)
        checkpoint = engine.find_eval_checkpoint(cfg)
        dataset = SyntheticDataset.from_config(cfg, split)
        if len(dataset) < 1:
            raise ValueError(
                f"option 'times_{split}' holds fewer weeks than delta_t = {cfg.delta_t}: no samples"
            )
        if cfg.spatial_anomaly == "auto":  # the same choice as training: measured on the training split
            cfg = resolve_spatial_anomaly(cfg, SyntheticDataset.from_config(cfg, "train"))
        engine.seed_everything(cfg.seed)
        model = (build or build_model)(cfg)
        engine.load_for_evaluation(model, checkpoint)
    run_dir = Path(cfg.run_dir)
    try:
        if rt.is_main:
            engine.prepare_test_run(cfg, split)
        threshold = calibrate_threshold(cfg, model, rt) if getattr(model, "needs_threshold", False) else None
        collectors = synthetic_collectors(cfg, cfg.save_predictions)(dataset)
        res = engine.evaluate(cfg, model, dataset, collectors, runtime=rt, with_loss=False,
                              run_dir=run_dir, split=split, desc=f"test {split}")
        if rt.is_main:
            metrics = {
                "split": split,
                "checkpoint": str(checkpoint),
                "n_samples": res["n_samples"],
                "extremes": res.get("extremes", {}),
                "drivers": res["drivers"],
                "naive": naive_reference(dataset, cfg.delta_t),
            }
            if threshold is not None:
                metrics["driver_threshold"] = threshold
            out = run_dir / f"metrics_{split}.json"
            out.write_text(json.dumps(metrics, indent=1))
            print(f"{split} split, {res['n_samples']} samples, checkpoint {checkpoint}")
            print(table(method_label(cfg.to_dict()), metrics))
            saved = f" and {run_dir / f'drivers_{split}.nc'}" if cfg.save_predictions else ""
            print(f"wrote {out}{saved}")
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
