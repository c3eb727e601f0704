"""Test a checkpoint of any method on a synthetic benchmark split (driver and extreme metrics).

    python test_synthetic.py --config log/swin_small/config.yaml --split test \\
        [--checkpoint PATH] [--save_predictions true]

Without ``--checkpoint`` the run folder's best_driver_F1_model.pth is used (then best_F1,
best_loss, last). Prints the paper-style rows beside the Naive reference and writes
``metrics_<split>.json`` (fractions in [0, 1]) and, with ``--save_predictions true``,
``drivers_<split>.nc`` into ``<dir_log>/<name>/``; the test config goes to
``config_test_<split>.yaml`` (config.yaml is never touched). Scoring baselines get their
driver threshold from the validation split first (``--driver_threshold_rule``).
"""

import sys

from utils.cli import test_main


def main(argv: list[str] | None = None) -> int:
    return test_main(argv, dataset="synthetic", prog="test_synthetic.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
