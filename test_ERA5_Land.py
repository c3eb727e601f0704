"""Test a checkpoint of any method on an ERA5-Land split: drought metrics and (optionally) the drivers.

    python test_ERA5_Land.py --config log/era5_eur11/config.yaml --split test [--checkpoint PATH] \\
        [--save_predictions true]

Reports precision, recall, F1 and IoU of the drought and no-drought classes and their means on
the split's valid pixels at ``pred_threshold`` (0.35; methods that predict no drought map score
none), writes ``metrics_<split>.json`` and, with ``--save_predictions true``,
``drivers_<split>.nc`` (driver flags per week, variable and lag on the data's own grid) into
``<dir_log>/<name>/``. Scoring baselines take their threshold from the validation split
(``normal_percentile``: no driver truth here).
"""

import sys

from utils.cli import test_main


def main(argv: list[str] | None = None) -> int:
    return test_main(argv, dataset="ERA5_Land", prog="test_ERA5_Land.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
