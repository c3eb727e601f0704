"""Train IDE on ERA5-Land (a CORDEX region) with NOAA VHI drought labels.

    python train_ERA5_Land.py --region EUR-11 --root_ERA5_Land ../ERA5-Land --root_NOAA ../NOAA_CORDEX \\
        --dir_log log --name era5_eur11
    torchrun --nproc_per_node 2 train_ERA5_Land.py ...        # DistributedDataParallel

Defaults come from configs/era5_land.yaml (9 variables, 2 input channels = weekly mean and
std); ``--config FILE`` replaces it and every option is a ``--<option> VALUE`` flag. Validation
reports drought F1 at ``pred_threshold`` (0.35) on the valid pixels of each phase.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from config import Config, parse_config
from utils import engine
from utils.distributed import cleanup
from utils.errors import UserError
from utils.logging import exit_with_error, user_errors
from utils.metrics import ExtremeCollector

PROG = "train_ERA5_Land.py"
PRESET = str(Path(__file__).resolve().parent / "configs" / "era5_land.yaml")


def real_collectors(cfg: Config) -> Callable[[Any], Sequence[Any]]:
    """Validation collectors of real data: drought F1 (checkpoint selection) and per-class metrics."""
    from dataset.real_metrics import DroughtClassCollector

    def factory(dataset: Any) -> list[Any]:
        return [ExtremeCollector(cfg.pred_threshold), DroughtClassCollector(cfg.pred_threshold)]

    return factory


def check_real_config(cfg: Config, train_set: Any) -> None:
    """Options the model needs to match the real-data samples."""
    if cfg.in_channels != 2:
        raise ValueError(
            f"option 'in_channels' is {cfg.in_channels}; real-data samples have 2 input channels "
            "(the weekly mean and std): pass --in_channels 2 or the dataset's preset"
        )
    if len(train_set) < 1:
        raise ValueError("the training split has no samples")


def train_real(argv: list[str] | None, dataset_name: str, preset: str, prog: str, doc: str) -> int:
    """Shared body of train_ERA5_Land.py and train_CERRA.py."""
    cfg = parse_config(
        argv, description=doc.split("\n")[0], defaults_file=preset, fixed={"dataset": dataset_name}
    )
    from dataset.grid_signal import resolve_spatial_anomaly
    from models.build import build_model

    with user_errors(prog):  # everything that can be wrong before the first step
        dataset_cls = real_dataset_class(cfg.dataset)
        engine.setup_runtime(cfg)
        engine.seed_everything(cfg.seed)
        train_set = dataset_cls.from_config(cfg, "train")
        val_set = dataset_cls.from_config(cfg, "val")
        check_real_config(cfg, train_set)
        cfg = resolve_spatial_anomaly(cfg, train_set)
        model = build_model(cfg)
        engine.check_train_crop(cfg, train_set)
        engine.check_run_dir(cfg)
    try:
        engine.fit(cfg, model, train_set, val_set, real_collectors(cfg))
    except UserError as err:  # a resume that does not fit, a full disk: one line, exit 2
        exit_with_error(prog, err)
    finally:
        cleanup()
    return 0


def real_dataset_class(name: str) -> Any:
    if name == "ERA5_Land":
        from dataset.era5_land import ERA5LandDataset

        return ERA5LandDataset
    if name == "CERRA":
        from dataset.cerra import CERRADataset

        return CERRADataset
    raise ValueError(f"option 'dataset' is {name!r}; this entry point trains ERA5_Land or CERRA")


def main(argv: list[str] | None = None) -> int:
    return train_real(argv, "ERA5_Land", PRESET, PROG, __doc__)


if __name__ == "__main__":
    sys.exit(main())
