"""SimpleNet, OCSVM and Isolation Forest training entry (option ``--method``).

SimpleNet wants ``--simplenet_backbone <IDE checkpoint>``; the scikit-learn pair fit in one epoch
(``--n_epochs 1``) on ``--oneclass_n_fit`` extreme-free voxels per variable.
"""

import sys

from Baselines_OneClass.models import build
from train_synthetic import main

if __name__ == "__main__":
    sys.exit(main(build=build, description=__doc__.split("\n")[0]))
