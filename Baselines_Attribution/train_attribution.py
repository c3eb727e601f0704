"""Train the encoder + classifier that integrated gradients explain (IG I or II)
on a synthetic benchmark (a shortcut for ``train_synthetic.py --method NAME``).

Example: ``python -m Baselines_Attribution.train_attribution --method ig1 --root_synthetic DIR --name ig1``.
The driver score is the attribution; its threshold comes from the validation split.
Other dataset families: ``python train_ERA5_Land.py --method ig1 ...`` (or train_CERRA.py).
"""

import sys

from utils.cli import train_main


def main(argv: list[str] | None = None) -> int:
    return train_main(
        argv, dataset="synthetic", prog="Baselines_Attribution.train_attribution", doc=__doc__, group="attribution"
    )


if __name__ == "__main__":
    sys.exit(main())
