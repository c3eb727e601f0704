"""Train a method (IDE by default, ``--method NAME`` for a baseline) on a synthetic benchmark.

    python train_synthetic.py --root_synthetic data/synthetic/small --encoder Swin_3D \\
        --n_epochs 100 --dir_log log --name swin_small
    python train_synthetic.py --method rtfm --root_synthetic data/synthetic/small --name rtfm_small
    torchrun --nproc_per_node 2 train_synthetic.py ...        # DistributedDataParallel

Every option of config.py is a ``--<option> VALUE`` flag (``--help`` lists them and the
registered methods); ``--config FILE`` reads a YAML preset first. The run folder
``<dir_log>/<name>/`` gets config.yaml, train.log, TensorBoard events and the checkpoints; an
existing run needs ``--resume true`` (continue last.pth) or ``--overwrite true``.
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(argv, dataset="synthetic", prog="train_synthetic.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
