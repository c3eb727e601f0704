"""Test entry of the one-class baselines: picks the driver threshold on val, then scores ``--split``.

For instance ``python -m Baselines_OneClass.test_oneclass --method iforest --name RUN --split test``.
"""

import sys

from Baselines_OneClass.models import build
from test_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
