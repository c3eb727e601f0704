"""Evaluate a trained IDE checkpoint on an ERA5-Land split: drought metrics and (optionally) the drivers.

    python test_ERA5_Land.py --config log/era5_eur11/config.yaml --split test [--checkpoint PATH] \\
        [--save_predictions true]

Reports precision, recall, F1 and IoU of the drought and no-drought classes and their means on
the split's valid pixels at ``pred_threshold`` (0.35), writes ``metrics_<split>.json`` and, with
``--save_predictions true``, ``drivers_<split>.nc`` (driver flags per week, variable and lag on
the data's own grid; see dataset/real_metrics.py) into ``<dir_log>/<name>/``. Without
``--checkpoint`` the run folder's best checkpoint is used (best_F1, then best_loss, last).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from config import parse_config
from train_ERA5_Land import PRESET, real_dataset_class
from utils import engine
from utils.checkpoints import write_atomic
from utils.distributed import cleanup
from utils.errors import UserError
from utils.logging import RERUN_TEST, exit_with_error, user_errors

PROG = "test_ERA5_Land.py"


def table(metrics: dict[str, Any]) -> str:
    rows = [
        f"| {'class':<10} | precision | recall |    F1  |   IoU  |",
        f"|{'-' * 12}|-----------|--------|--------|--------|",
    ]
    for cls in ("drought", "no_drought", "mean"):
        m = metrics[cls]
        rows.append(
            f"| {cls:<10} |   {100 * m['precision']:6.2f}  | {100 * m['recall']:6.2f} | "
            f"{100 * m['f1']:6.2f} | {100 * m['iou']:6.2f} |"
        )
    return "\n".join(rows)


def test_real(argv: list[str] | None, dataset_name: str, preset: str, prog: str, doc: str) -> int:
    """Shared body of test_ERA5_Land.py and test_CERRA.py."""
    cfg = parse_config(
        argv, description=doc.split("\n")[0], defaults_file=preset, fixed={"dataset": dataset_name}
    )
    from dataset.grid_signal import resolve_spatial_anomaly
    from dataset.real_metrics import DroughtClassCollector, DroughtPredictionWriter
    from models.build import build_model

    split = cfg.split
    with user_errors(prog):
        rt = engine.setup_runtime(cfg)
        checkpoint = engine.find_eval_checkpoint(cfg)
        dataset = real_dataset_class(cfg.dataset).from_config(dataclasses.replace(cfg, is_aug=False), split)
        if cfg.spatial_anomaly == "auto":  # the same choice as training: measured on the training split
            train_set = real_dataset_class(cfg.dataset).from_config(dataclasses.replace(cfg, is_aug=False), "train")
            cfg = resolve_spatial_anomaly(cfg, train_set)
        engine.seed_everything(cfg.seed)
        model = build_model(cfg)
        engine.load_for_evaluation(model, checkpoint)
    run_dir = Path(cfg.run_dir)
    threshold = cfg.pred_threshold
    try:
        if rt.is_main:
            engine.prepare_test_run(cfg, split)
        collectors: list[Any] = [DroughtClassCollector(threshold)]
        if cfg.save_predictions:
            attrs = {
                "dataset": cfg.dataset,
                "region": cfg.region if cfg.dataset == "ERA5_Land" else "CERRA",
                "encoder": cfg.encoder,
                "checkpoint": str(checkpoint),
            }
            collectors.append(DroughtPredictionWriter(dataset, run_dir, split, threshold, attrs))
        res = engine.evaluate(
            cfg,
            model,
            dataset,
            collectors,
            runtime=rt,
            with_loss=False,
            run_dir=run_dir,
            split=split,
            desc=f"test {split}",
        )
        if rt.is_main:
            m = res["drought_classes"]
            metrics = {
                "split": split,
                "checkpoint": str(checkpoint),
                "n_samples": res["n_samples"],
                "threshold": threshold,
                "drought": m["drought"],
                "no_drought": m["no_drought"],
                "mean": m["mean"],
                "oa": m["oa"],
                "counts": m["counts"],
            }
            out = run_dir / f"metrics_{split}.json"
            write_atomic(out, json.dumps(metrics, indent=1).encode(), then=RERUN_TEST)
            print(
                f"{dataset!r}\n{split} split, {res['n_samples']} samples, checkpoint {checkpoint}, "
                f"threshold {threshold}"
            )
            print(table(metrics))
            print(
                f"wrote {out}" + (f" and {run_dir / f'drivers_{split}.nc'}" if cfg.save_predictions else "")
            )
    except UserError as err:  # a resume that does not fit, a full disk: one line, exit 2
        exit_with_error(prog, err)
    finally:
        cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    return test_real(argv, "ERA5_Land", PRESET, PROG, __doc__)


if __name__ == "__main__":
    sys.exit(main())
