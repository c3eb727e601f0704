"""Test a checkpoint of any method on a CERRA split: drought metrics and (optionally) the drivers.

    python test_CERRA.py --config log/cerra/config.yaml --split test [--save_predictions true]

Everything as in test_ERA5_Land.py (dims y/x instead of rlat/rlon in drivers_<split>.nc).
"""

import sys

from utils.cli import test_main


def main(argv: list[str] | None = None) -> int:
    return test_main(argv, dataset="CERRA", prog="test_CERRA.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
