"""Train the encoder + classifier that integrated gradients explain (``--method ig1`` or ``ig2``)."""

import sys

from Baselines_Attribution.models import IGModel as build
from train_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
