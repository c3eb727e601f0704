"""Integrated-gradients drivers (zero or window-mean baseline) of a trained classifier; val threshold."""

import sys

from Baselines_Attribution.models import IGModel as build
from test_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
