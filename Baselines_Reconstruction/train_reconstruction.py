"""Train STEALNet or UniAD on a synthetic benchmark
(a shortcut for ``train_synthetic.py --method NAME``).

Example:
``python -m Baselines_Reconstruction.train_reconstruction --method stealnet --root_synthetic DIR --name stealnet``.
The driver score is the reconstruction error; its threshold comes from the validation split.
Other dataset families: ``python train_ERA5_Land.py --method stealnet ...`` (or train_CERRA.py).
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(
        argv,
        dataset="synthetic",
        prog="Baselines_Reconstruction.train_reconstruction",
        doc=__doc__,
        group="reconstruction",
    )


if __name__ == "__main__":
    sys.exit(main())
