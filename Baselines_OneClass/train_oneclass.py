"""Train SimpleNet, OCSVM or Isolation Forest on a synthetic benchmark
(a shortcut for ``train_synthetic.py --method NAME``).

Example: ``python -m Baselines_OneClass.train_oneclass --method simplenet --root_synthetic DIR --name simplenet``.
SimpleNet wants ``--simplenet_backbone <IDE checkpoint>``; the scikit-learn pair fit in one epoch
(``--n_epochs 1``) on ``--oneclass_n_fit`` extreme-free voxels per variable.
Other dataset families: ``python train_ERA5_Land.py --method simplenet ...`` (or train_CERRA.py).
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(
        argv, dataset="synthetic", prog="Baselines_OneClass.train_oneclass", doc=__doc__, group="one-class"
    )


if __name__ == "__main__":
    sys.exit(main())
