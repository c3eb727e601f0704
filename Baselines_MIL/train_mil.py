"""Train DeepMIL, ARNet, RTFM or MGFN with the shared engine: ``--method deepmil|arnet|rtfm|mgfn``.

Example: ``python -m Baselines_MIL.train_mil --method rtfm --root_synthetic DIR --name rtfm``.
Bags come from the extreme mask only; validation keeps best_driver_F1_model.pth like IDE.
"""

import sys

from Baselines_MIL.models import MILModel as build
from train_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
