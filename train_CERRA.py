"""Train a method (IDE by default, ``--method NAME`` for a baseline) on CERRA with NOAA VHI drought labels.

    python train_CERRA.py --root_CERRA ../CERRA --root_NOAA_CERRA ../NOAA_CERRA --dir_log log --name cerra
    python train_CERRA.py --method stealnet ... --name stealnet_cerra

Defaults come from configs/cerra.yaml (18 variables, 2 input channels, paper crop 512 x 832);
everything else as in train_ERA5_Land.py.
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, dataset="CERRA", prog="train_CERRA.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
