"""Train a method (IDE by default, ``--method NAME`` for a baseline) on ERA5-Land with NOAA VHI drought labels.

    python train_ERA5_Land.py --region EUR-11 --root_ERA5_Land ../ERA5-Land --root_NOAA ../NOAA_CORDEX \\
        --dir_log log --name era5_eur11
    python train_ERA5_Land.py --method arnet ... --name arnet_eur11
    torchrun --nproc_per_node 2 train_ERA5_Land.py ...        # DistributedDataParallel

Defaults come from configs/era5_land.yaml (9 variables, 2 input channels = weekly mean and
std); ``--config FILE`` replaces it and every option is a ``--<option> VALUE`` flag. Validation
reports drought F1 at ``pred_threshold`` (0.35) on the valid pixels of each phase.
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, dataset="ERA5_Land", prog="train_ERA5_Land.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
