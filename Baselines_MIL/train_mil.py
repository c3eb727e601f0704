"""Train DeepMIL, ARNet, RTFM or MGFN on a synthetic benchmark
(a shortcut for ``train_synthetic.py --method NAME``).

Example: ``python -m Baselines_MIL.train_mil --method deepmil --root_synthetic DIR --name deepmil``.
Bags come from the extreme mask only; validation keeps best_driver_F1_model.pth like IDE.
Other dataset families: ``python train_ERA5_Land.py --method deepmil ...`` (or train_CERRA.py).
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, dataset="synthetic", prog="Baselines_MIL.train_mil", doc=__doc__, group="MIL")


if __name__ == "__main__":
    sys.exit(main())
