"""Test a checkpoint of any method on a split of your own datacube (extremes; drivers with truth).

    python test_datacube.py --data cube.zarr --variables t2m tp swvl1 --target heatwave \\
        --period_train 1991-01-01 2010-12-31 --period_val 2011-01-01 2015-12-31 \\
        --period_test 2016-01-01 2020-12-31 --step 7D --name my_cube --save_predictions true

Any xarray-openable source (netCDF file, glob, zarr store); a continuous index as the target
with ``--target_below X`` / ``--target_above X``; optional ``--mask``, ``--truth_drivers``, a
lat/lon box and ``--statistics mean std`` (see dataset/datacube.py and docs/guides/datacube.md).
"""

import sys

from utils.cli import test_main


def main(argv: list[str] | None = None) -> int:
    return test_main(argv, dataset="datacube", prog="test_datacube.py", doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
