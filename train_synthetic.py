"""Train IDE on a synthetic benchmark.

    python train_synthetic.py --root_synthetic data/synthetic/small --encoder Swin_3D \\
        --n_epochs 100 --dir_log log --name swin_small
    torchrun --nproc_per_node 2 train_synthetic.py ...        # DistributedDataParallel

Every option of config.py is a ``--<option> VALUE`` flag (``--help`` lists them);
``--config FILE`` reads a YAML preset first. The run folder ``<dir_log>/<name>/``
gets config.yaml, train.log, TensorBoard events and the checkpoints; an existing
run needs ``--resume true`` (continue last.pth) or ``--overwrite true``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from config import Config, parse_config
from utils import engine
from utils.distributed import cleanup
from utils.errors import UserError
from utils.logging import exit_with_error, user_errors
from utils.metrics import DriverCollector, ExtremeCollector
from utils.predictions import PredictionCollector

PROG = "train_synthetic.py"


def synthetic_collectors(cfg: Config, save_predictions: bool = False, drivers: bool = True
                         ) -> Callable[[Any], Sequence[Any]]:
    """Collectors of a synthetic split: extreme confusion counts, driver votes, optionally the netCDF."""

    def factory(dataset: Any) -> list[Any]:
        if not drivers:  # score-based baselines: flags need a threshold chosen after training
            return [ExtremeCollector(cfg.pred_threshold)]
        votes = DriverCollector(dataset, cfg.delta_t)
        collectors: list[Any] = [ExtremeCollector(cfg.pred_threshold), votes]
        if save_predictions:
            attrs = {"encoder": cfg.encoder, "codebook": cfg.codebook, "root_synthetic": cfg.root_synthetic}
            collectors.append(
                PredictionCollector(dataset, votes, cfg.pred_threshold, cfg.y_min, cfg.x_min, attrs=attrs)
            )
        return collectors

    return factory


def main(argv: list[str] | None = None, build: Callable[[Config], Any] | None = None,
         description: str | None = None) -> int:
    """``build``: model hook for the baselines (default: IDE). A model with ``needs_threshold``
    (score-based baselines) is validated on extremes only: its driver threshold is chosen after training."""
    description = description or __doc__.split("\n")[0]
    cfg = parse_config(argv, description=description, fixed={"dataset": "synthetic"})
    from dataset.grid_signal import resolve_spatial_anomaly
    from dataset.synthetic import SyntheticDataset
    from models.build import build_model

    with user_errors(PROG):  # everything that can be wrong before the first step
        engine.setup_runtime(cfg)
        engine.seed_everything(cfg.seed)
        train_set = SyntheticDataset.from_config(cfg, "train")
        val_set = SyntheticDataset.from_config(cfg, "val")
        _check_samples(train_set, val_set, cfg)
        cfg = resolve_spatial_anomaly(cfg, train_set)
        model = (build or build_model)(cfg)
        engine.check_train_crop(cfg, train_set)
        engine.check_run_dir(cfg)
    try:
        drivers = not getattr(model, "needs_threshold", False)
        if not drivers and hasattr(model, "attribute_in_eval"):
            model.attribute_in_eval = False  # IG: its validation passes score extremes only
        engine.fit(cfg, model, train_set, val_set, synthetic_collectors(cfg, drivers=drivers))
    except UserError as err:  # a resume that does not fit, a full disk: one line, exit 2
        exit_with_error(PROG, err)
    finally:
        cleanup()
    return 0


def _check_samples(train_set: Any, val_set: Any, cfg: Config) -> None:
    for split, ds in (("train", train_set), ("val", val_set)):
        if len(ds) < 1:
            raise ValueError(
                f"option 'times_{split}' = {tuple(getattr(cfg, 'times_' + split))} holds fewer weeks than "
                f"delta_t = {cfg.delta_t}: no samples"
            )


if __name__ == "__main__":
    sys.exit(main())
