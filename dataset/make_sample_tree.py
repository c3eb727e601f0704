"""Write a small (or full-size) real-data tree in the published layout.

    python -m dataset.make_sample_tree --dataset era5_land --region EUR-11 \
        --years 2015 2016 2017 --out data/sample
    python -m dataset.make_sample_tree --dataset cerra --years 2019 2020 2021 --out data/sample
    python -m dataset.make_sample_tree --dataset datacube --years 2015 2016 2017 2018 --out data/sample/cube.zarr

Prints the options that point the loaders at the tree (``--root_ERA5_Land .. --x_max ..``).
An existing tree (the dataset's folders under ``--out``) or datacube is refused unless
``--overwrite``: a rerun with another seed must not silently replace the data earlier runs used.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dataset.sample_tree import ERA5_LAND_GRIDS, STATISTICS, make_tree


def _error(err: Exception) -> int:
    """One line on stderr and exit code 2, as the other data scripts do."""
    print(f"python -m dataset.make_sample_tree: error: {err}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=("era5_land", "cerra", "datacube"))
    p.add_argument("--region", default="EUR-11", choices=sorted(ERA5_LAND_GRIDS), help="ERA5-Land region")
    p.add_argument("--years", nargs="+", type=int, required=True, help="years to write (52 weeks each)")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="parent folder of ERA5-Land/ NOAA_CORDEX/ (or CERRA/ NOAA_CERRA/); datacube: the .zarr or .nc path",
    )
    p.add_argument("--full_grid", action="store_true", help="the region's real grid size instead of 32 x 32")
    p.add_argument(
        "--size", nargs=2, type=int, metavar=("H", "W"), help="grid size (rows, cols); overrides --full_grid"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing tree's files or datacube (a datacube folder only if it is a zarr store)",
    )
    p.add_argument("--variables", nargs="+", help="subset of the dataset's variables (default: all)")
    p.add_argument(
        "--statistics",
        nargs="+",
        default=list(STATISTICS),
        help=f"labels of the 'statistic' dimension (with mean and std; default {' '.join(STATISTICS)})",
    )
    a = p.parse_args(argv)
    start = time.time()
    if a.dataset == "datacube":  # a daily cube in no published layout (dataset/sample_datacube.py)
        from dataset.sample_datacube import make_datacube

        fmt = "netcdf" if a.out.suffix == ".nc" else "zarr"
        try:
            opts = make_datacube(a.out, a.years, tuple(a.size) if a.size else (24, 24), a.seed, fmt, a.overwrite)
        except ValueError as err:
            return _error(err)
        print(f"[sample datacube] written to {a.out} in {time.time() - start:.1f} s; train_datacube.py options:")
        print("  " + " ".join(f"--{k} {v}" for k, v in opts.items()))
        return 0
    try:
        opts = make_tree(
            a.dataset,
            a.out,
            a.years,
            region=a.region,
            shape=tuple(a.size) if a.size else None,
            full_grid=a.full_grid,
            seed=a.seed,
            variables=a.variables,
            statistics=tuple(a.statistics),
            overwrite=a.overwrite,
            verbose=True,
        )
    except ValueError as err:
        return _error(err)
    print(f"[sample tree] written to {a.out} in {time.time() - start:.1f} s; loader options:")
    print("  " + " ".join(f"--{k} {v}" for k, v in opts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
