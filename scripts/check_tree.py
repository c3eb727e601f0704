"""Check that an extracted data tree has the layout the loaders read (used by scripts/download_*.sh).

    python scripts/check_tree.py era5_land --root data/ERA5-Land [--region EUR-11]
    python scripts/check_tree.py noaa_era5_land --root data/NOAA_CORDEX [--region EUR-11]
    python scripts/check_tree.py cerra --root data/CERRA
    python scripts/check_tree.py noaa_cerra --root data/NOAA_CERRA
    python scripts/check_tree.py synthetic --root data/synthetic/small   # an experiment folder, as --root_synthetic
    python scripts/check_tree.py synthetic --root data/Synthetic         # or a folder of them: each is checked

Without ``--region`` every region folder present is checked (at least one must be).
Opens every weekly and NOAA file once (h5py, well under a millisecond each): a file truncated by
an interrupted download or extraction, a missing variable or a grid that differs from the
folder's first file is reported by name.
Exit code 0 when the layout is right, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import netCDF4  # noqa: E402

from config import CERRA_VARIABLES, ERA5_LAND_VARIABLES, REGIONS  # noqa: E402
from dataset.noaa import NOAA_VARIABLES  # noqa: E402
from dataset.real_common import DataLayoutError, check_file  # noqa: E402

YEAR = re.compile(r"^\d{4}$")
VH = re.compile(r"\d{3}\.VH\.nc$")


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    def bad(self, msg: str) -> None:
        self.problems.append(msg)

    def need_file(self, path: Path) -> bool:
        if not path.is_file():
            self.bad(f"missing file {path}")
            return False
        return True

    def need_vars(self, path: Path, names: list[str], dim: str | None = None) -> None:
        """``path`` opens as netCDF and holds ``names`` (each with dimension ``dim`` if given)."""
        if not self.need_file(path):
            return
        try:
            with netCDF4.Dataset(path) as ds:
                for n in names:
                    if n not in ds.variables:
                        self.bad(f"{path}: variable '{n}' is missing (has {', '.join(sorted(ds.variables))})")
                    elif dim and dim not in ds.variables[n].dimensions:
                        self.bad(f"{path}: variable '{n}' has dims {ds.variables[n].dimensions}, no '{dim}'")
        except OSError as err:
            self.bad(f"{path}: not a readable netCDF file ({err})")


def check_files(rep: Report, files: list[Path], variables: list[str]) -> None:
    """Every file opens, holds ``variables`` and has the grid of the first readable file."""
    grid = None
    for path in files:
        try:
            grid = check_file(path, variables, grid, "weekly file")
        except DataLayoutError as err:
            rep.bad(str(err))


def _years(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and YEAR.match(p.name)) if folder.is_dir() else []


def check_weekly(rep: Report, folder: Path, variables: list[str]) -> None:
    """``<YYYY>/<YYYY><WWW>.nc`` folders; one file per year checked for the variables."""
    years = _years(folder)
    if not years:
        rep.bad(f"{folder}: no <YYYY> year folders")
        return
    for y in years:
        files = sorted(y.glob(f"{y.name}[0-9][0-9][0-9].nc"))
        if len(files) != 52:
            rep.notes.append(f"{y}: {len(files)} weekly files (52 expected for a complete year)")
        if files:
            rep.need_vars(files[0], variables, dim="statistic")
        check_files(rep, files, variables)
    rep.notes.append(f"{folder}: years {years[0].name}..{years[-1].name} ({len(years)} folders)")


def check_noaa_years(rep: Report, folder: Path) -> None:
    years = _years(folder)
    if not years:
        rep.bad(f"{folder}: no <YYYY> NOAA year folders")
        return
    for y in years:
        files = sorted(p for p in y.iterdir() if VH.search(p.name))
        if not files:
            rep.bad(f"{y}: no *<WWW>.VH.nc files")
            continue
        check_files(rep, files, list(NOAA_VARIABLES))
    rep.notes.append(f"{folder}: NOAA years {years[0].name}..{years[-1].name}")


def _exp_name(folder: Path) -> str:
    """The experiment name as the loader takes it: the folder's name (a symlink keeps its own)."""
    return Path(os.path.abspath(folder)).name


def _experiment(folder: Path) -> bool:
    return (folder / f"datacube_{_exp_name(folder)}.nc").is_file()


def _regions(rep: Report, root: Path, region: str | None) -> list[str]:
    if region:
        return [region]
    found = [r for r in REGIONS if (root / r).is_dir()]
    if not found:
        have = ", ".join(sorted(p.name for p in root.iterdir())) if root.is_dir() else "nothing"
        rep.bad(f"{root}: no region folder ({', '.join(REGIONS)}); found {have}")
    return found


def check(kind: str, root: Path, region: str | None = None, variables: list[str] | None = None) -> Report:
    rep = Report()
    era5_vars, cerra_vars = variables or ERA5_LAND_VARIABLES, variables or CERRA_VARIABLES
    if not root.is_dir():
        rep.bad(f"folder {root} does not exist")
        return rep
    if kind == "era5_land":
        for r in _regions(rep, root, region):
            d = root / r
            rep.need_file(d / f"{r}_statistic_train.json")
            rep.need_vars(d / f"{r}_climatology_pixels_train.nc", era5_vars, dim="week")
            check_weekly(rep, d, era5_vars)
    elif kind == "noaa_era5_land":
        for r in _regions(rep, root, region):
            rep.need_vars(root / r / f"{r}_masks.nc", ["lsm", "mask_no_vegetation"])
            check_noaa_years(rep, root / r)
    elif kind == "cerra":
        rep.need_file(root / "CERRA_statistic_train.json")
        rep.need_vars(root / "CERRA_climatology_pixels_train.nc", cerra_vars, dim="week")
        rep.need_vars(root / "CERRA_static_variables.nc", ["lsm"])
        check_weekly(rep, root, cerra_vars)
    elif kind == "noaa_cerra":
        rep.need_vars(root / "masks.nc", ["mask_no_vegetation"])
        check_noaa_years(rep, root)
    elif kind == "synthetic":
        if _experiment(root):  # what --root_synthetic takes
            exps = [root]
        else:  # a folder of experiment folders (e.g. the extracted Synthetic archive)
            exps = [p for p in sorted(root.iterdir()) if p.is_dir() and _experiment(p)]
        if not exps:
            rep.bad(
                f"{root}: not an experiment folder (no {root / f'datacube_{_exp_name(root)}.nc'}; --root takes "
                "the folder that --root_synthetic takes) and no experiment folders <exp>/datacube_<exp>.nc in it"
            )
        for p in exps:
            rep.need_file(p / f"climatology_{_exp_name(p)}.nc")
            rep.need_file(p / f"statistic_{_exp_name(p)}.json")
        rep.notes.append(f"{root}: {len(exps)} synthetic experiment folder(s): {', '.join(p.name for p in exps)}")
    else:
        raise ValueError(f"unknown tree kind {kind!r}")
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("era5_land", "noaa_era5_land", "cerra", "noaa_cerra", "synthetic"))
    p.add_argument(
        "--root",
        type=Path,
        required=True,
        help="the extracted folder (e.g. data/ERA5-Land); synthetic: the experiment folder, as --root_synthetic "
        "(a folder of experiment folders checks each)",
    )
    p.add_argument("--region", choices=REGIONS, help="ERA5-Land / NOAA_CORDEX region (default: all present)")
    p.add_argument("--variables", nargs="+", help="variables to require (default: all of the data set)")
    a = p.parse_args(argv)
    rep = check(a.kind, a.root, a.region, a.variables)
    for n in rep.notes:
        print(f"[check_tree] {n}")
    for msg in rep.problems:
        print(f"[check_tree] PROBLEM: {msg}", file=sys.stderr)
    print(
        f"[check_tree] {a.kind} at {a.root}: "
        + ("OK" if not rep.problems else f"{len(rep.problems)} problem(s)")
    )
    return 0 if not rep.problems else 1


if __name__ == "__main__":
    sys.exit(main())
