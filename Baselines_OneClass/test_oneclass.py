"""Test a simplenet, ocsvm, iforest checkpoint on a synthetic split
(a shortcut for ``test_synthetic.py --method NAME``).

Example: ``python -m Baselines_OneClass.test_oneclass --config log/simplenet/config.yaml --split test``; a published
run reads with ``--config config.pkl --checkpoint model.pth --method NAME``.
"""

import sys

from utils.cli import test_main


def main(argv: list[str] | None = None) -> int:
    return test_main(argv, dataset="synthetic", prog="Baselines_OneClass.test_oneclass", doc=__doc__, group="one-class")


if __name__ == "__main__":
    sys.exit(main())
