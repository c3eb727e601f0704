"""Datacube inputs the loader must take or refuse in one line: a glob of files, damaged or foreign
files, the run folder's climatology cache, and options whose message used to give wrong advice."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from utils.errors import ConfigError, StorageError

pytestmark = [pytest.mark.filterwarnings("ignore:Consolidated metadata")]


@pytest.fixture(scope="module")
def cube(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A small daily sample cube (2015-2017, 6 x 7 pixels) as one netCDF file, and its options."""
    from dataset.sample_datacube import make_datacube

    path = tmp_path_factory.mktemp("cube") / "cube.nc"
    return path, make_datacube(path, [2015, 2016, 2017], shape=(6, 7), seed=1, fmt="netcdf")


def _cfg(opts: dict[str, str], **over: object):
    from config import load_config, parse_overrides

    args = [a for k, v in opts.items() for a in (f"--{k}", *v.split())]
    return load_config(overrides={**parse_overrides(args), "dataset": "datacube", **over})


def _one_line_error(cfg, split: str = "train") -> str:
    """The message of the ConfigError loading ``split`` raises; it must be one line."""
    from dataset.families import dataset_family

    with pytest.raises(ConfigError) as err:
        dataset_family("datacube").load(cfg, split)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_glob_of_files_split_along_time_gives_the_single_files_samples(cube, tmp_path, capsys):
    """--data 'dir/*.nc' (no dask needed) reads the samples of the one file the parts were cut from, and trains."""
    import train_datacube
    from dataset.families import dataset_family

    path, opts = cube
    (tmp_path / "parts").mkdir()
    with xr.open_dataset(path) as ds:
        ds.sel(time=slice("2015", "2016")).to_netcdf(tmp_path / "parts" / "a.nc")
        ds.sel(time=slice("2017", "2017")).to_netcdf(tmp_path / "parts" / "b.nc")
    pattern = str(tmp_path / "parts" / "*.nc")
    family = dataset_family("datacube")
    for split in ("train", "test"):
        one, parts = family.load(_cfg(opts), split), family.load(_cfg(opts, data=pattern), split)
        assert len(one) == len(parts) > 0
        for i in range(len(one)):
            for key in ("x", "mask_extreme", "mask_extreme_loss", "mask_valid", "timestep"):
                np.testing.assert_array_equal(parts[i][key].numpy(), one[i][key].numpy(), err_msg=key)
    from dataset.datacube import DatacubeDataset

    DatacubeDataset.check_period(_cfg(opts, data=pattern), "test")  # reads the time axis of every file
    args = [a for k, v in {**opts, "data": pattern}.items() for a in (f"--{k}", *v.split())]
    assert train_datacube.main([*args, "--encoder", "CNN_3D", "--n_epochs", "1", "--max_train_batches", "1",
                                "--max_eval_batches", "1", "--batch_size", "2", "--device", "cpu",
                                "--dir_log", str(tmp_path), "--name", "glob"]) == 0
    assert "option 'data': no file matches" in _one_line_error(_cfg(opts, data=str(tmp_path / "none" / "*.nc")))
    with xr.open_dataset(path) as ds:  # files that overlap in time do not combine
        ds.sel(time=slice("2016", "2017")).to_netcdf(tmp_path / "parts" / "c.nc")
    assert "do not combine by their coordinates" in _one_line_error(_cfg(opts, data=pattern))


def test_damaged_or_foreign_files_are_one_line_errors(cube, tmp_path, capsys):
    """A truncated netCDF, a text file and an empty zarr folder, as --data or --climatology: one line that
    names the option and the file, from the loader and (exit code 2) from the entry script."""
    import train_datacube

    path, opts = cube
    truncated, text, empty = tmp_path / "trunc.nc", tmp_path / "notes.txt", tmp_path / "x.zarr"
    truncated.write_bytes(path.read_bytes()[:3000])
    text.write_text("not a cube\n")
    empty.mkdir()
    for bad in (truncated, text, empty):
        message = _one_line_error(_cfg(opts, data=str(bad)))
        assert message.startswith(f"option 'data': cannot read {bad} as netCDF or zarr (")
        assert message.endswith("check the file is complete and is netCDF or zarr")
    for bad in (truncated, text):
        message = _one_line_error(_cfg(opts, climatology=str(bad)))
        assert message.startswith(f"option 'climatology': cannot read {bad} as netCDF or zarr (")
    args = [a for k, v in {**opts, "data": str(truncated)}.items() for a in (f"--{k}", *v.split())]
    with pytest.raises(SystemExit) as err:
        train_datacube.main([*args, "--device", "cpu", "--dir_log", str(tmp_path), "--name", "bad"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(lines) == 1 and "option 'data': cannot read" in lines[0]


def test_the_climatology_cache_is_written_whole_by_rank_0_and_a_damaged_one_is_recomputed(
        cube, tmp_path, monkeypatch, capsys):
    from dataset.families import datacube as family_module
    from dataset.families import dataset_family

    _, opts = cube
    cfg = _cfg(opts, dir_log=str(tmp_path), name="run")
    run = Path(cfg.run_dir)
    run.mkdir()
    cache = run / "datacube_climatology.nc"
    family = dataset_family("datacube")

    monkeypatch.setattr(family_module, "is_main", lambda: False)  # another torchrun rank: reads, never writes
    ref = family.load(cfg, "val")
    assert not cache.exists()
    monkeypatch.undo()

    family.load(cfg, "val")
    good = cache.read_bytes()
    assert [p.name for p in run.iterdir()] == [cache.name]  # no temporary file left behind

    # a crash in the middle of rewriting it (a full disk) keeps the previous cache whole
    import utils.checkpoints

    def half_then_full(p: Path, data: bytes) -> None:
        p.write_bytes(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    other = _cfg(opts, dir_log=str(tmp_path), name="run", period_train=["2015-01-01", "2015-12-31"], step="14D")
    monkeypatch.setattr(utils.checkpoints, "_write_bytes", half_then_full)
    with pytest.raises(StorageError, match="no space left on device"):
        family.load(other, "val")
    monkeypatch.undo()
    assert cache.read_bytes() == good and [p.name for p in run.iterdir()] == [cache.name]

    # a damaged cache is a cache miss: a one-line warning naming it, then recomputed and rewritten
    cache.write_bytes(good[:2000])
    capsys.readouterr()
    again = family.load(cfg, "val")
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: cannot read the cached climatology {cache}")
    with xr.open_dataset(cache) as c:
        np.testing.assert_array_equal(c["median"].values, ref.climatology[0])
    for i in (0, len(ref) - 1):
        np.testing.assert_array_equal(again[i]["x"].numpy(), ref[i]["x"].numpy())


def test_messages_name_the_option_and_give_the_right_advice(cube, tmp_path):
    """A model calendar, a step finer than the data's or not a time step, an empty or swapped box, and a
    target that is also an input each get their own one-line message."""
    path, opts = cube
    with xr.open_dataset(path) as ds:
        ds.convert_calendar("noleap").to_netcdf(tmp_path / "noleap.nc")
        weekly = ds.resample(time="7D").mean()
        weekly["land"] = ds["land"]
        weekly.to_netcdf(tmp_path / "weekly.nc")

    message = _one_line_error(_cfg(opts, data=str(tmp_path / "noleap.nc")))
    assert "uses calendar noleap, which is not supported" in message
    assert "ds.convert_calendar('standard', align_on='date')" in message

    message = _one_line_error(_cfg(opts, data=str(tmp_path / "weekly.nc"), step="1D"))
    assert message.startswith("option 'step': 1D is finer than the data's step (7 days)") and "period" not in message
    assert "option 'step': '7X' is not a time step; use a pandas offset such as 7D" in _one_line_error(
        _cfg(opts, step="7X"))

    message = _one_line_error(_cfg(opts, lon_min=50.0, lon_max=60.0))
    assert "the box holds no pixel" in message and "longitude runs -5.0 .. 10.0" in message
    with pytest.raises(ConfigError, match=r"options 'lat_min'/'lat_max' = 50/45: need lat_min < lat_max"):
        _cfg(opts, lat_min=50.0, lat_max=45.0)  # refused with the options, before the data are opened
    with pytest.raises(ConfigError, match=r"options 'lon_min'/'lon_max' = 10/5: lon_min is above lon_max; swap"):
        _cfg(opts, lon_min=10.0, lon_max=5.0)

    message = _one_line_error(_cfg(opts, variables=["t2m_daily", "veg_index"]))
    assert "options 'target' and 'variables'" in message and "veg_index" in message
