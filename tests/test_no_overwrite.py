"""Data-writing scripts never replace an existing output silently: without --overwrite they stop with one
line naming the path and the option; with it they replace only what they wrote (a zarr store, a file, the
requested years of a tree), never an ordinary folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from dataset.make_sample_tree import main as make_sample
from dataset.to_zarr import main as to_zarr


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def _listing(root: Path) -> dict[str, int]:
    """Relative path -> modification time of every file under ``root`` (what a rerun may not change)."""
    return {str(f.relative_to(root)): f.stat().st_mtime_ns for f in sorted(root.rglob("*")) if f.is_file()}


CUBE = ["--dataset", "datacube", "--years", "2015", "2016", "2017", "--size", "6", "6"]


# ------------------------------------------------------------------------------ make_sample_tree --dataset datacube


def test_sample_datacube_never_deletes_an_ordinary_folder(tmp_path, capsys):
    """The audit's case: --out an existing folder used to be emptied (to_zarr mode 'w')."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    assert make_sample([*CUBE, "--out", str(folder)]) == 2
    _one_line_error(capsys, str(folder), "exists", "--overwrite")
    assert make_sample([*CUBE, "--out", str(folder), "--overwrite"]) == 2
    _one_line_error(capsys, str(folder), "not a zarr store")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_sample_datacube_rerun_is_refused_unless_overwrite(tmp_path, suffix, capsys):
    out = tmp_path / f"cube{suffix}"
    assert make_sample([*CUBE, "--out", str(out)]) == 0
    with xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else None) as ds:
        before = ds["veg_index"].values.copy()
    stamp = _listing(tmp_path)
    assert make_sample([*CUBE, "--out", str(out), "--seed", "3"]) == 2
    _one_line_error(capsys, f"option 'out': {out} exists; pass --overwrite to replace it")
    assert _listing(tmp_path) == stamp
    assert make_sample([*CUBE, "--out", str(out), "--seed", "3", "--overwrite"]) == 0
    with xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else None) as ds:
        assert not np.array_equal(ds["veg_index"].values, before)


# ------------------------------------------------------------------------------ make_sample_tree era5_land / cerra


TREE = ["--dataset", "cerra", "--years", "2019", "--size", "6", "6", "--variables", "t2m"]


def test_sample_tree_rerun_is_refused_and_overwrite_gives_a_fresh_tree(tmp_path, capsys):
    """A rerun with another seed used to replace 2019001.nc silently; --overwrite now leaves exactly the
    files a fresh run writes (no NOAA file of the old seed's second satellite stays behind)."""
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    assert make_sample([*TREE, "--out", str(old)]) == 0
    stamp = _listing(old)
    assert make_sample([*TREE, "--out", str(old), "--seed", "3"]) == 2
    _one_line_error(capsys, str(old / "CERRA"), "--overwrite")
    assert _listing(old) == stamp
    assert make_sample([*TREE, "--out", str(old), "--seed", "3", "--overwrite"]) == 0
    assert make_sample([*TREE, "--out", str(fresh), "--seed", "3"]) == 0
    assert set(_listing(old)) == set(_listing(fresh))
    week = "CERRA/2019/2019001.nc"
    with xr.open_dataset(old / week) as a, xr.open_dataset(fresh / week) as b:
        np.testing.assert_array_equal(a["t2m"].values, b["t2m"].values)


def test_sample_tree_overwrite_keeps_no_year_of_the_old_tree(tmp_path, capsys):
    """--overwrite with other --years would leave the old years beside the new ones: refused, nothing changed."""
    assert make_sample([*TREE, "--out", str(tmp_path)]) == 0
    stamp = _listing(tmp_path)
    other = [a if a != "2019" else "2020" for a in TREE]
    assert make_sample([*other, "--out", str(tmp_path), "--overwrite"]) == 2
    _one_line_error(capsys, "also holds years 2019", "--years")
    assert _listing(tmp_path) == stamp
    # another dataset (or region) under the same --out is a different tree: allowed
    assert make_sample(["--dataset", "era5_land", "--years", "2019", "--size", "6", "6", "--variables", "t2m",
                        "--out", str(tmp_path)]) == 0


# ------------------------------------------------------------------------------ dataset.to_zarr


@pytest.fixture()
def cube_nc(tmp_path) -> Path:
    from dataset.sample_datacube import make_datacube

    src = tmp_path / "src.nc"
    make_datacube(src, [2015, 2016, 2017], shape=(6, 6), seed=1, fmt="netcdf")
    return src


def _cube_args(src: Path, out: Path, *extra: str) -> list[str]:
    return ["--dataset", "datacube", "--data", str(src), "--target", "veg_index", "--mask", "land",
            "--out", str(out), *extra]


def test_to_zarr_overwrite_never_deletes_an_ordinary_folder(cube_nc, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("1,2")
    assert to_zarr(_cube_args(cube_nc, folder, "--overwrite")) == 2
    _one_line_error(capsys, str(folder), "not a zarr store")
    assert (folder / "table.csv").read_text() == "1,2"
    store = tmp_path / "cube.zarr"
    assert to_zarr(_cube_args(cube_nc, store)) == 0
    assert to_zarr(_cube_args(cube_nc, store, "--overwrite")) == 0  # a store is replaced
    assert (store / "zarr.json").is_file()


def test_to_zarr_refuses_an_existing_climatology_beside_the_store(cube_nc, tmp_path, capsys):
    store = tmp_path / "cube.zarr"
    clim = tmp_path / "cube.zarr.climatology.nc"
    clim.write_text("an earlier climatology")
    period = ("--target_below", "30", "--step", "7D", "--period_train", "2015-01-01", "2015-12-31")
    assert to_zarr(_cube_args(cube_nc, store, *period)) == 2
    _one_line_error(capsys, f"{clim} exists; pass --overwrite")
    assert not store.exists() and clim.read_text() == "an earlier climatology"
    assert to_zarr(_cube_args(cube_nc, store, *period, "--overwrite")) == 0
    with xr.open_dataset(clim) as c:
        assert c["median"].shape[0] == 3


def test_to_zarr_datacube_keeps_every_input_field_by_default(cube_nc, tmp_path, capsys):
    """Without --variables: every variable along time except target, mask and truth (was: only target and mask)."""
    store = tmp_path / "cube.zarr"
    assert to_zarr(_cube_args(cube_nc, store)) == 0
    assert "--variables t2m_daily precip soil_water" in capsys.readouterr().out
    with xr.open_zarr(store) as z:
        assert set(z.data_vars) == {"t2m_daily", "precip", "soil_water", "veg_index", "land"}


@pytest.mark.parametrize("bad, words", [
    ((), "--target_below"),  # a continuous target needs a threshold rule
    (("--target_below", "30", "--period_train", "2015-01-01", "2015-02-31"), "period_train"),
])
def test_to_zarr_datacube_checks_options_before_writing(cube_nc, tmp_path, capsys, bad, words):
    """--period_train used to fail (TypeError) after the store was written; a bad option now writes nothing."""
    store = tmp_path / "cube.zarr"
    args = _cube_args(cube_nc, store, "--step", "7D", *bad)
    if "--period_train" not in bad:
        args += ["--period_train", "2015-01-01", "2015-12-31"]
    assert to_zarr(args) == 2
    _one_line_error(capsys, words)
    assert not store.exists() and not Path(f"{store}.climatology.nc").exists()


def test_to_zarr_datacube_period_train_needs_a_target(cube_nc, tmp_path, capsys):
    store = tmp_path / "cube.zarr"
    args = ["--dataset", "datacube", "--data", str(cube_nc), "--out", str(store),
            "--period_train", "2015-01-01", "2015-12-31"]
    assert to_zarr(args) == 2
    _one_line_error(capsys, "option 'target' is not set")
    assert not store.exists()


# ------------------------------------------------------------------------------ dataset.generate_synthetic


SMALL = ["--preset", "tiny", "--height", "6", "--width", "6"]


def test_generate_synthetic_rerun_is_refused_unless_overwrite(tmp_path, capsys):
    from dataset.generate_synthetic import main

    out = tmp_path / "tiny"
    assert main([*SMALL, "--out", str(out)]) == 0
    stamp = _listing(out)
    assert main([*SMALL, "--out", str(out), "--seed", "5"]) == 2
    _one_line_error(capsys, str(out), "datacube_tiny.nc", "--overwrite")
    assert _listing(out) == stamp
    assert main([*SMALL, "--out", str(out), "--seed", "5", "--overwrite"]) == 0
    with xr.open_dataset(out / "datacube_tiny.nc") as ds:
        assert int(ds.attrs["seed"]) == 5


def test_generate_function_refuses_a_benchmark_and_finishes_an_interrupted_one(tmp_path, capsys):
    """``generate()`` (tests, scripts) refuses a folder holding a benchmark; the files an interrupted
    write left without a datacube are replaced with a note, so a rerun (quickstart) completes it."""
    from dataset.generate_synthetic import BenchmarkExists, generate

    out = tmp_path / "tiny"
    generate("tiny", out, height=6, width=6)
    with pytest.raises(BenchmarkExists, match="pass --overwrite"):
        generate("tiny", out, seed=1, height=6, width=6)
    generate("tiny", out, seed=1, height=6, width=6, overwrite=True)
    (out / "datacube_tiny.nc").unlink()  # as if killed before the last file
    capsys.readouterr()
    generate("tiny", out, seed=2, height=6, width=6)
    assert "interrupted write" in capsys.readouterr().out
    assert (out / "datacube_tiny.nc").is_file()
