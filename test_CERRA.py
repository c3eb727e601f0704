"""Evaluate a trained IDE checkpoint on a CERRA split: drought metrics and (optionally) the drivers.

    python test_CERRA.py --config log/cerra/config.yaml --split test [--save_predictions true]

Everything as in test_ERA5_Land.py (dims y/x instead of rlat/rlon in drivers_<split>.nc).
"""

from __future__ import annotations

import sys

from test_ERA5_Land import test_real
from train_CERRA import PRESET

PROG = "test_CERRA.py"


def main(argv: list[str] | None = None) -> int:
    return test_real(argv, "CERRA", PRESET, PROG, __doc__)


if __name__ == "__main__":
    sys.exit(main())
