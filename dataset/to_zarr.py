"""Convert a dataset into one chunked, compressed zarr store (zarr format 3) read by the same loaders.

    python -m dataset.to_zarr --dataset era5_land --region EUR-11 --root_ERA5_Land data/ERA5-Land \
        --root_NOAA data/NOAA_CORDEX --out data/era5_land_eur11.zarr
    python -m dataset.to_zarr --dataset cerra --root_CERRA data/CERRA --root_NOAA_CERRA data/NOAA_CERRA \
        --chunk 557 832 --out data/cerra.zarr
    python -m dataset.to_zarr --dataset synthetic --root_synthetic data/synthetic/tiny --out data/tiny.zarr
    python -m dataset.to_zarr --dataset datacube --data 'era5/*.nc' --out data/cube.zarr \
        --variables t2m tp --target heat --step 7D --period_train 2000-01-01 2015-12-31

Reanalysis trees (ERA5-Land, CERRA + NOAA) become the layout of ``dataset/zarr_store.py``; the
loaders read it with ``--store STORE.zarr`` (instead of the root options), sample for sample the
same as from the tree. Chunks: one week (time chunk 1) x both statistics x ``--chunk`` rows x
cols (default: the whole grid). A sample window of T weeks starting at any week then decodes
exactly its T weeks; a time chunk of T would decode two chunks (2T weeks) for most shuffled
windows. Spatially, a chunk that holds the loader's crop decodes little outside it (chunks count
from the file's first, southernmost row: a crop y_min..y_max of H rows is file rows
H - y_max .. H - y_min); the whole grid is the choice for whole-grid samples (and costs a crop of
size s x s about grid / s^2 times its own bytes). The climatology (read by every sample)
is stored uncompressed by default (``--climatology_codec none``), one chunk per week of the
whole grid, so that it is memory-mapped and shared by all processes, as from the netCDF tree
(it is 52 weeks; the inputs are 52 weeks per year).

Synthetic benchmarks and datacubes become a datacube store (``train_datacube.py --data``), with
the climatology written beside it as ``<out>.climatology.nc`` (``--climatology``): the benchmark's
own climatology for synthetic, the training period's (``--period_train``) for a datacube.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from dataset.real_common import (
    N_WEEKS,
    DataLayoutError,
    get_var,
    label_index,
    list_weekly_files,
    open_nc,
    read_fields,
    read_labels,
    read_var,
    week_label,
)
from dataset.zarr_store import STORE_FORMAT, ZARR_MARKERS, is_zarr_store

DATASETS = ("era5_land", "cerra", "synthetic", "datacube")
CODECS = ("lz4hc", "lz4", "zstd", "none")
SYNTHETIC_START = "2001-01-05"  # weekly dates whose step of the year is the benchmark's week index


class StoreExists(DataLayoutError):
    """The output store exists and --overwrite was not given."""


def compressors(codec: str, level: int) -> Any:
    """zarr 3 compressors for ``--codec``: Blosc with byte shuffle (float32 fields), or none."""
    from zarr.codecs import BloscCodec

    if codec == "none":
        return None
    return [BloscCodec(cname=codec, clevel=level, shuffle="shuffle")]


def check_out(path: Path, overwrite: bool, *, store: bool, option: str = "out") -> None:
    """Refuse, before anything is written, an output that exists (without ``overwrite``) or that
    ``overwrite`` may not replace: a store replaces only a zarr store (or an empty folder), a file
    only a file, so a mistyped path never deletes an ordinary folder."""
    if not path.exists() and not path.is_symlink():
        return
    if not overwrite:
        raise StoreExists(f"option '{option}': {path} exists; pass --overwrite to replace it")
    if store and path.is_dir() and not is_zarr_store(path) and any(path.iterdir()):
        raise StoreExists(
            f"option '{option}': {path} is a folder but not a zarr store (no {', '.join(ZARR_MARKERS)}); "
            "--overwrite replaces only a store: remove it yourself or choose another path"
        )
    if store and not path.is_dir():
        raise StoreExists(
            f"option '{option}': {path} is a file, not a zarr store; --overwrite replaces only a store: "
            "remove it yourself or choose another path"
        )
    if not store and path.is_dir():
        raise StoreExists(
            f"option '{option}': {path} is a folder, not a file; --overwrite replaces only a file: "
            "remove it yourself or choose another path"
        )


def remove_out(path: Path, overwrite: bool, *, store: bool, option: str = "out") -> None:
    """:func:`check_out`, then delete the old output (a store or a file) and create the parent folder."""
    check_out(path, overwrite, store=store, option=option)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)


def _climatology_path(out: Path) -> Path:
    return Path(f"{out}.climatology.nc")


def _check_outs(out: Path, overwrite: bool, climatology: bool) -> None:
    """The store and, where one is written, its ``<out>.climatology.nc``: both refused alike."""
    check_out(out, overwrite, store=True)
    if climatology:
        check_out(_climatology_path(out), overwrite, store=False)


def _prepare_out(out: Path, overwrite: bool, climatology: bool = False) -> None:
    """Remove the old store (and with ``--overwrite`` its old climatology, which belongs to it)."""
    _check_outs(out, overwrite, climatology)
    remove_out(out, overwrite, store=True)
    clim = _climatology_path(out)
    if overwrite and clim.is_file():
        clim.unlink()


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


# --------------------------------------------------------------------------------------
# reanalysis trees
# --------------------------------------------------------------------------------------


def _latlon(ds: Any, dims: tuple[str, ...]) -> dict[str, np.ndarray]:
    """2-D latitude / longitude variables of an open netCDF file on the grid ``dims``."""
    return {
        n: np.asarray(ds.variables[n][:], np.float64)
        for n in ("lat", "lon", "latitude", "longitude")
        if n in ds.variables and ds.variables[n].dimensions == dims
    }


def _year_dirs(root: Path) -> list[int]:
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit() and len(p.name) == 4)


def convert_reanalysis(
    dataset: str,
    cfg: Any,
    out: Path,
    *,
    years: list[int] | None = None,
    variables: list[str] | None = None,
    chunk: tuple[int, int] | None = None,
    codec: str = "lz4hc",
    level: int = 5,
    climatology_codec: str = "none",
    overwrite: bool = False,
    verbose: bool = False,
) -> dict[str, str]:
    """Write the tree named by ``cfg`` (the loader's root options) to ``out``; returns the loader options."""
    import zarr

    from dataset import noaa
    from dataset.cerra import cerra_layout
    from dataset.era5_land import era5_land_layout

    check_out(out, overwrite, store=True)  # before the tree is read
    lay = era5_land_layout(cfg) if dataset == "era5_land" else cerra_layout(cfg)
    for path, opt in ((lay.root, lay.root_option), (lay.root_noaa, lay.noaa_option)):
        if not path.is_dir():
            raise DataLayoutError(f"{lay.name}: folder {path} does not exist (option '{opt}')")
    all_years = _year_dirs(lay.root)
    years = sorted(years) if years else all_years
    absent = [y for y in years if y not in all_years]
    if absent:
        raise DataLayoutError(f"{lay.name}: years {absent} of option 'years' have no folder in {lay.root}")
    weeks: list[tuple[int, int, Path]] = []
    for y in years:
        files = list_weekly_files(lay.root / f"{y:04d}")
        weeks += [(y, w, files[w]) for w in sorted(files)]
    if not weeks:
        raise DataLayoutError(f"{lay.name}: no weekly file <YYYY><WWW>.nc in the year folders of {lay.root}")
    first = weeks[0][2]
    ds = open_nc(first, f"{lay.name} weekly file")
    try:
        if variables is None:
            variables = [n for n, v in ds.variables.items() if "statistic" in v.dimensions and v.ndim == 3]
        for v in variables:
            get_var(ds, v, first)  # the missing-variable error
        ref = ds.variables[variables[0]]
        grid, dims = (int(ref.shape[-2]), int(ref.shape[-1])), tuple(ref.dimensions[-2:])
        stat_idx = label_index(read_labels(ds, "statistic", first), ("mean", "std"), first, "statistic")
        coords = {d: np.asarray(ds.variables[d][:], np.float64) for d in dims if d in ds.variables}
        coord_attrs = {
            d: _jsonable({k: ds.variables[d].getncattr(k) for k in ds.variables[d].ncattrs() if not k.startswith("_")})
            for d in dims
            if d in ds.variables
        }
        latlon = _latlon(ds, dims)
        gm_name = getattr(ref, "grid_mapping", None) or next(
            (n for n, v in ds.variables.items() if "grid_mapping_name" in v.ncattrs()), None
        )
        grid_mapping = None
        if gm_name is not None and gm_name in ds.variables:
            gm = ds.variables[gm_name]
            grid_mapping = [gm_name, _jsonable({k: gm.getncattr(k) for k in gm.ncattrs() if not k.startswith("_")})]
    finally:
        ds.close()
    if not latlon:  # lat/lon from the land-sea mask file, as the loader does
        ds = open_nc(lay.lsm[0], "land-sea mask")
        try:
            latlon = _latlon(ds, dims)
        finally:
            ds.close()
    ch, cw = chunk or grid
    ch, cw = min(ch, grid[0]), min(cw, grid[1])
    rows, cols = slice(0, grid[0]), slice(0, grid[1])
    _prepare_out(out, overwrite)
    t0 = time.perf_counter()
    root = zarr.create_group(str(out), zarr_format=3)
    stats_path = lay.statistics
    root.attrs.update(
        {
            "idee_store": STORE_FORMAT,
            "dataset": "ERA5_Land" if dataset == "era5_land" else "CERRA",
            "name": lay.name,
            "region": getattr(cfg, "region", None) if dataset == "era5_land" else None,
            "grid": list(grid),
            "dims": list(dims),
            "variables": list(variables),
            "statistics_json": stats_path.read_text() if stats_path.is_file() else None,
            "coord_attrs": coord_attrs,
            "grid_mapping": grid_mapping,
            "chunks": {"time": 1, "rows": ch, "cols": cw},
            "codec": codec if codec == "none" else f"blosc-{codec}-{level}-shuffle",
            "source": {"root": str(lay.root), "root_noaa": str(lay.root_noaa)},
            "Conventions": "CF-1.8",
        }
    )
    comp = compressors(codec, level)
    n = len(weeks)
    root.create_array(
        "time",
        data=np.array([int(week_label(y, w)) for y, w, _ in weeks], np.int32),
        dimension_names=("time",),
        attributes={"long_name": "year and week of year (YYYYWWW)"},
    )
    for d, values in coords.items():
        root.create_array(d, data=values, dimension_names=(d,), attributes=coord_attrs.get(d, {}))
    for name, values in latlon.items():
        root.create_array(
            name,
            data=values,
            dimension_names=dims,
            attributes={"units": "degrees_north" if name.startswith("lat") else "degrees_east"},
        )
    arrays = {
        v: root.create_array(
            v,
            shape=(n, 2, *grid),
            chunks=(1, 2, ch, cw),
            dtype="float32",
            compressors=comp,
            fill_value=np.nan,
            dimension_names=("time", "statistic", *dims),
            attributes={"statistic": ["mean", "std"], "grid_mapping": grid_mapping[0] if grid_mapping else ""},
        )
        for v in variables
    }
    for t, (y, w, path) in enumerate(weeks):
        planes = read_fields(
            path, f"{lay.name} weekly file", variables, grid, rows, cols, {"statistic": stat_idx}, writable=False
        )
        for v, a in zip(variables, planes):
            arrays[v][t] = a
        if verbose and w == N_WEEKS:
            print(f"[to_zarr] {lay.name} {y} written ({time.perf_counter() - t0:.0f} s)", flush=True)

    # NOAA: the week's files in name order, one slot each
    nz = root.create_group("noaa")
    noaa_weeks: list[tuple[int, int, list[Path]]] = []
    for y in years:
        d = lay.root_noaa / f"{y:04d}"
        if d.is_dir():
            idx = noaa.index_noaa_year(d)
            noaa_weeks += [(y, w, idx[w]) for w in sorted(idx)]
    slots = max([len(f) for _, _, f in noaa_weeks], default=1)
    nz.create_array(
        "noaa_time",
        data=np.array([int(week_label(y, w)) for y, w, _ in noaa_weeks], np.int32),
        dimension_names=("noaa_time",),
    )
    nz.create_array(
        "n_files", data=np.array([len(f) for _, _, f in noaa_weeks], np.int8), dimension_names=("noaa_time",)
    )
    shape, chunks = (len(noaa_weeks), slots, *grid), (1, 1, ch, cw)
    nd = ("noaa_time", "file", *dims)
    noaa_vars = ["VCI", "TCI", "mask_cold_surface"]
    noaa_arrays = [
        nz.create_array(
            v, shape=shape, chunks=chunks, dtype="float32", compressors=comp, fill_value=np.nan, dimension_names=nd
        )
        for v in noaa_vars
    ]
    for t, (_, _, files) in enumerate(noaa_weeks):
        for k, path in enumerate(files):
            for arr, plane in zip(noaa_arrays, read_fields(path, "NOAA weekly file", noaa_vars, grid, rows, cols)):
                arr[t, k] = plane

    st = root.create_group("static")
    for name, (path, var) in (("lsm", lay.lsm), ("no_vegetation", lay.no_vegetation)):
        (a,) = read_fields(path, "static mask", [var], grid, rows, cols)
        st.create_array(name, data=a, dimension_names=dims, compressors=comp, attributes={"source": f"{path}:{var}"})

    if lay.climatology.is_file():
        cz = root.create_group("climatology")
        cz.attrs.update({"climatology": ["mean", "std"], "stat": ["mean", "std"], "week": list(range(1, N_WEEKS + 1))})
        ds = open_nc(lay.climatology, "climatology file")
        try:
            path = lay.climatology
            sel = {
                "climatology": label_index(read_labels(ds, "climatology", path), ("mean", "std"), path, "climatology"),
                "stat": label_index(read_labels(ds, "stat", path), ("mean", "std"), path, "stat"),
            }
            wk = list(range(1, N_WEEKS + 1))
            if "week" in ds.variables:
                wk = [int(v) for v in np.asarray(ds.variables["week"][:]).tolist()]
            pos = {w: i for i, w in enumerate(wk)}
            ccomp = compressors(codec if climatology_codec == "same" else "none", level)
            # uncompressed: whole-grid chunks, so any crop of a week is one zero-copy view of a mapped file
            cchunk = (ch, cw) if ccomp else grid
            for v in variables:
                arr = cz.create_array(
                    v,
                    shape=(2, 2, N_WEEKS, *grid),
                    chunks=(2, 2, 1, *cchunk),
                    dtype="float32",
                    compressors=ccomp,
                    fill_value=np.nan,
                    dimension_names=("climatology", "stat", "week", *dims),
                )
                for w in range(1, N_WEEKS + 1):
                    arr[:, :, w - 1] = read_var(ds, v, path, grid, rows, cols, {**sel, "week": pos[w]})
        finally:
            ds.close()
    if verbose:
        print(f"[to_zarr] {out} written in {time.perf_counter() - t0:.0f} s", flush=True)
    opts = {"dataset": "ERA5_Land" if dataset == "era5_land" else "CERRA", "store": str(out)}
    if dataset == "era5_land":
        opts["region"] = cfg.region
    return opts


# --------------------------------------------------------------------------------------
# synthetic benchmarks and datacubes
# --------------------------------------------------------------------------------------


def _write_cube(ds: Any, out: Path, time_dim: str, time_chunk: int, codec: str, level: int) -> None:
    """Every variable with the time dimension chunked by ``time_chunk`` steps x the whole grid."""
    encoding = {}
    for name, da in ds.data_vars.items():
        chunks = tuple(min(time_chunk, s) if d == time_dim else s for d, s in zip(da.dims, da.shape))
        encoding[name] = {"chunks": chunks, "compressors": compressors(codec, level)}
    with warnings.catch_warnings():  # zarr 3 notes that consolidated metadata is outside its spec
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        ds.to_zarr(out, mode="w-", zarr_format=3, encoding=encoding, consolidated=True)  # one metadata read


def convert_synthetic(
    root: Path, out: Path, *, time_chunk: int, codec: str, level: int, overwrite: bool = False
) -> dict[str, str]:
    """A synthetic benchmark as a datacube store: weekly dates from ``SYNTHETIC_START`` (whose step of
    the year is the benchmark's week index), latitude 60..45 N top-down, and its climatology beside."""
    import pandas as pd
    import xarray as xr

    _check_outs(out, overwrite, climatology=True)  # before the benchmark is read
    cube_path, clim_path = root / f"datacube_{root.name}.nc", root / f"climatology_{root.name}.nc"
    for p in (cube_path, clim_path):
        if not p.is_file():
            raise DataLayoutError(f"option 'root_synthetic': {p} does not exist (a benchmark folder holds it)")
    with xr.open_dataset(cube_path, decode_times=False) as src:
        src = src.load()
    names = [str(v) for v in src["var"].values]
    n_t, h, w = src.sizes["time"], src.sizes["y"], src.sizes["x"]
    dims = ("time", "lat", "lon")
    data = {v: (dims, src[v].values.astype(np.float32)) for v in names}
    data["extreme"] = (dims, (src["extreme"].values == 1).astype(np.int8))
    data["true_drivers"] = (("variable", *dims), src["anomaly_extreme"].values.astype(np.int8))
    cube = xr.Dataset(
        data,
        coords={
            "time": pd.date_range(SYNTHETIC_START, periods=n_t, freq="7D"),
            "lat": ("lat", np.linspace(60.0, 45.0, h), {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", np.linspace(5.0, 20.0, w), {"standard_name": "longitude", "units": "degrees_east"}),
            "variable": names,
        },
        attrs={"title": f"synthetic benchmark {root.name} as a datacube", "source": str(cube_path)},
    )
    with xr.open_dataset(clim_path) as c:
        stats = [str(s) for s in c["climatology"].values]
        pick = {s: np.stack([c[v].values[stats.index(s)] for v in names])[:, None] for s in ("median", "std")}
    _prepare_out(out, overwrite, climatology=True)
    clim_out = _climatology_path(out)
    _write_cube(cube, out, "time", time_chunk, codec, level)
    cdims = ("variable", "statistic", "step_of_year", "y", "x")
    xr.Dataset({s: (cdims, a.astype(np.float32)) for s, a in pick.items()}).to_netcdf(clim_out)
    return {
        "data": str(out),
        "variables": " ".join(names),
        "target": "extreme",
        "truth_drivers": "true_drivers",
        "climatology": str(clim_out),
    }


def default_variables(ds: Any, time_dim: str, exclude: list[str]) -> list[str]:
    """``--variables`` not given: every data variable along time except the target, mask and truth
    (what ``--help`` promises as "all"; static fields such as a land mask are not inputs)."""
    return [str(n) for n, v in ds.data_vars.items() if time_dim in v.dims and n not in exclude]


def convert_datacube(
    args: Any, out: Path, *, time_chunk: int, codec: str, level: int, overwrite: bool = False
) -> dict[str, str]:
    """Any xarray-openable source rewritten chunked and compressed; with ``--period_train`` also the
    training climatology of the datacube loader (``<out>.climatology.nc``). Every option is checked
    before anything is written, so a bad option leaves no half output behind."""
    import xarray as xr

    from dataset.datacube import find_dims, open_source

    _check_outs(out, overwrite, climatology=bool(args.period_train))
    ds = open_source(args.data)
    tdim, _, _ = find_dims(ds, args.data)
    extra = [n for n in (args.target, args.mask, args.truth_drivers) if n]
    variables = list(args.variables) if args.variables else default_variables(ds, tdim, extra)
    wanted = variables + [n for n in extra if n not in variables]
    missing = [v for v in wanted if v not in ds.data_vars]
    if missing:
        raise DataLayoutError(
            f"option 'data': {args.data} has no variable {', '.join(missing)}; "
            f"it has {', '.join(map(str, ds.data_vars))}"
        )
    if not variables:
        raise DataLayoutError(
            f"option 'variables': {args.data} has no data variable along '{tdim}' besides "
            f"{', '.join(extra) or 'none'}; pass --variables NAME ..."
        )
    clim: tuple[np.ndarray, np.ndarray] | None = None
    over: dict[str, Any] = {}
    if args.period_train:
        from config import load_config
        from dataset.datacube import DatacubeDataset

        if not args.target:
            raise DataLayoutError("option 'target' is not set: --period_train needs the target variable")
        over = {
            "dataset": "datacube",
            "data": str(args.data),  # the source: the climatology is computed before any output exists
            "variables": variables,
            "target": args.target,
            "period_train": list(args.period_train),
            "statistics": list(args.statistics),
            "step": args.step,
            "delta_t": args.delta_t,
            "target_below": args.target_below,
            "target_above": args.target_above,
        }
        # a bad target, period or step fails here and leaves nothing behind
        cfg = load_config(overrides={k: v for k, v in over.items() if v is not None})
        clim = DatacubeDataset(cfg, "train").climatology
    ds = ds[wanted]
    _prepare_out(out, overwrite, climatology=clim is not None)
    for v in ds.variables.values():  # the source's chunking would override ours
        v.encoding.pop("chunks", None)
        v.encoding.pop("preferred_chunks", None)
    _write_cube(ds.load(), out, tdim, time_chunk, codec, level)
    opts = {"data": str(out), "variables": " ".join(variables)}
    if clim is not None:
        med, std = clim
        over["data"] = str(out)
        clim_out = _climatology_path(out)
        cdims = ("variable", "statistic", "step_of_year", "y", "x")
        xr.Dataset(
            {"median": (cdims, med), "std": (cdims, std)}, attrs={"options": json.dumps(over, default=str)}
        ).to_netcdf(clim_out)
        opts["climatology"] = str(clim_out)
    return opts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dataset.to_zarr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--out", required=True, type=Path, help="the zarr store to write (a folder, e.g. data/x.zarr)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (only a zarr store is deleted, never an ordinary folder) and its "
        "<out>.climatology.nc",
    )
    from config import FIELDS

    for name in ("region", "root_ERA5_Land", "root_NOAA", "root_CERRA", "root_NOAA_CERRA"):  # the loader's options
        p.add_argument(f"--{name}", default=FIELDS[name].default, help=FIELDS[name].metadata["help"])
    p.add_argument("--root_synthetic", type=Path, help="a synthetic benchmark folder (holds datacube_<name>.nc)")
    p.add_argument("--years", nargs="+", type=int, help="reanalysis years to convert (default: every year folder)")
    p.add_argument(
        "--variables",
        nargs="+",
        help="variables to convert (default: all; datacube: every variable along time but --target, --mask "
        "and --truth_drivers)",
    )
    p.add_argument(
        "--chunk",
        nargs=2,
        type=int,
        metavar=("ROWS", "COLS"),
        help="reanalysis spatial chunk (default: the whole grid; the crop size for cropped training)",
    )
    p.add_argument("--time_chunk", type=int, default=28, help="datacube / synthetic: source steps per chunk")
    p.add_argument("--codec", default="lz4hc", choices=CODECS, help="Blosc compressor (byte shuffle) or none")
    p.add_argument("--level", type=int, default=5, help="compression level (1-9)")
    p.add_argument(
        "--climatology_codec",
        default="none",
        choices=("none", "same"),
        help="reanalysis climatology: uncompressed (memory-mapped, shared by workers) or --codec",
    )
    p.add_argument("--data", help="datacube source: a netCDF file, a glob or a zarr store")
    p.add_argument("--target")
    p.add_argument("--target_below", type=float)
    p.add_argument("--target_above", type=float)
    p.add_argument("--mask")
    p.add_argument("--truth_drivers")
    p.add_argument("--step")
    p.add_argument("--statistics", nargs="+", default=["mean"])
    p.add_argument("--delta_t", type=int, default=8)
    p.add_argument(
        "--period_train",
        nargs=2,
        metavar=("START", "END"),
        help="datacube: also write the training climatology beside the store",
    )
    a = p.parse_args(argv)
    start = time.time()
    try:
        if a.dataset not in DATASETS:
            raise DataLayoutError(f"option 'dataset': {a.dataset!r} is not one of {', '.join(DATASETS)}")
        if a.dataset in ("era5_land", "cerra"):
            cfg = SimpleNamespace(
                region=a.region,
                root_ERA5_Land=a.root_ERA5_Land,
                root_NOAA=a.root_NOAA,
                root_CERRA=a.root_CERRA,
                root_NOAA_CERRA=a.root_NOAA_CERRA,
            )
            opts = convert_reanalysis(
                a.dataset,
                cfg,
                a.out,
                years=a.years,
                variables=a.variables,
                chunk=tuple(a.chunk) if a.chunk else None,
                codec=a.codec,
                level=a.level,
                climatology_codec=a.climatology_codec,
                overwrite=a.overwrite,
                verbose=True,
            )
        elif a.dataset == "synthetic":
            if a.root_synthetic is None:
                raise DataLayoutError("option 'root_synthetic' is not set: pass the benchmark folder")
            opts = convert_synthetic(
                a.root_synthetic, a.out, time_chunk=a.time_chunk, codec=a.codec, level=a.level, overwrite=a.overwrite
            )
        else:
            if not a.data:
                raise DataLayoutError("option 'data' is not set: pass --data PATH (a netCDF file, a glob or a store)")
            opts = convert_datacube(
                a, a.out, time_chunk=a.time_chunk, codec=a.codec, level=a.level, overwrite=a.overwrite
            )
    except (DataLayoutError, ValueError, FileNotFoundError) as err:
        print(f"python -m dataset.to_zarr: error: {err}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"[to_zarr] {a.out}: {size / 2**20:.1f} MiB in {time.time() - start:.1f} s; loader options:")
    print("  " + " ".join(f"--{k} {v}" for k, v in opts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
