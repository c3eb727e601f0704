"""Reconstruction-error drivers of a STEALNet / UniAD checkpoint, threshold from the validation split.

Usage: python -m Baselines_Reconstruction.test_reconstruction --method stealnet --checkpoint PATH --split val
"""

import sys

from Baselines_Reconstruction.models import build
from test_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
