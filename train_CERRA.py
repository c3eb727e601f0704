"""Train IDE on CERRA with NOAA VHI drought labels.

    python train_CERRA.py --root_CERRA ../CERRA --root_NOAA_CERRA ../NOAA_CERRA --dir_log log --name cerra

Defaults come from configs/cerra.yaml (18 variables, 2 input channels, paper crop 512 x 832);
everything else as in train_ERA5_Land.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from train_ERA5_Land import train_real

PROG = "train_CERRA.py"
PRESET = str(Path(__file__).resolve().parent / "configs" / "cerra.yaml")


def main(argv: list[str] | None = None) -> int:
    return train_real(argv, "CERRA", PRESET, PROG, __doc__)


if __name__ == "__main__":
    sys.exit(main())
