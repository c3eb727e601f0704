"""Driver (and Naive) metrics of a DeepMIL / ARNet / RTFM / MGFN checkpoint; flag = score > 0.5.

``python -m Baselines_MIL.test_mil --method deepmil --checkpoint PATH --split test``; a published
run reads with ``--config config.pkl --checkpoint model.pth``.
"""

import sys

from Baselines_MIL.models import MILModel as build
from test_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
