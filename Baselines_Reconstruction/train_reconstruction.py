"""Fit STEALNet or UniAD (``--method stealnet|uniad``) to reconstruct extreme-free inputs.

``python -m Baselines_Reconstruction.train_reconstruction --method uniad --root_synthetic DIR --name RUN``
"""

import sys

from Baselines_Reconstruction.models import build
from train_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
