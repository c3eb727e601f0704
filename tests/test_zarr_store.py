"""``python -m dataset.to_zarr``: a tree, a synthetic benchmark or a datacube as one zarr 3 store,
read by the same loaders with the same samples."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest

from config import load_config
from dataset.sample_tree import make_tree

pytestmark = [pytest.mark.filterwarnings("ignore:Consolidated metadata"),
              pytest.mark.filterwarnings("ignore:The data type")]
VARS = ["t2m", "swvl1", "tp"]
SHAPE = (12, 14)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """A small ERA5-Land and CERRA tree and their stores (chunks that do not divide the grid)."""
    from dataset.to_zarr import main

    base = tmp_path_factory.mktemp("zarr")
    out = {}
    for kind in ("era5_land", "cerra"):
        names = VARS if kind == "era5_land" else ["t2m", "vsw", "tp"]
        opts = make_tree(kind, base / kind, [2016, 2017], shape=SHAPE, seed=3, variables=names)
        roots = (["--root_ERA5_Land", opts["root_ERA5_Land"], "--root_NOAA", opts["root_NOAA"]] if kind == "era5_land"
                 else ["--root_CERRA", opts["root_CERRA"], "--root_NOAA_CERRA", opts["root_NOAA_CERRA"]])
        store = base / f"{kind}.zarr"
        assert main(["--dataset", kind, *roots, "--out", str(store), "--chunk", "5", "6"]) == 0
        packed = base / f"{kind}_packed.zarr"  # the climatology compressed too, whole-grid chunks
        assert main(["--dataset", kind, *roots, "--out", str(packed), "--climatology_codec", "same"]) == 0
        out[kind] = (opts, names, store, packed)
    return out


def _cfg(opts, names, **over):
    o = {k: v for k, v in opts.items() if k not in ("x_max", "y_max")}
    o.update(years_train=["2017"], years_val=["2017"], years_test=["2017"], variables=names,
             in_channels_dynamic=len(names), x_min=0, x_max=SHAPE[1], y_min=0, y_max=SHAPE[0], is_aug=False)
    o.update(over)
    return load_config(overrides=o)


def _family(opts):
    from dataset.cerra import CERRADataset
    from dataset.era5_land import ERA5LandDataset

    return ERA5LandDataset if opts["dataset"] == "ERA5_Land" else CERRADataset


def _same(a, b, indices):
    assert len(a) == len(b)
    for i in indices:
        sa, sb = a[i], b[i]
        assert sa.keys() == sb.keys()
        for k in sa:
            if hasattr(sa[k], "numpy"):
                np.testing.assert_array_equal(sa[k].numpy(), sb[k].numpy(), err_msg=k)
            else:
                assert sa[k] == sb[k]


OPTIONS = [
    {},  # whole grid, climatology normalisation
    {"x_min": 3, "x_max": 11, "y_min": 1, "y_max": 10},  # a crop across chunk borders
    {"window_size": 2, "is_clima_scale": False},  # pooled, global statistics
    {"is_norm": False, "alpha": 0.3, "threshold": 40.0},  # raw values, another VHI rule
]


@pytest.mark.parametrize("kind", ["era5_land", "cerra"])
@pytest.mark.parametrize("over", OPTIONS)
def test_store_gives_the_trees_samples(trees, kind, over):
    """Inputs, labels, masks, week labels and coordinates from the store equal those from the tree."""
    opts, names, store, packed = trees[kind]
    cls = _family(opts)
    for split in ("train", "test"):
        ref = cls(_cfg(opts, names, **over), split)
        for s in (store, packed):
            ours = cls(_cfg(opts, names, store=str(s), **over), split)
            _same(ref, ours, [0, 1, 7, len(ref) - 1, 1])  # 1 again: from the week cache
            assert ours.week_labels == ref.week_labels
            for k, v in ref.coords.items():
                np.testing.assert_array_equal(ours.coords[k], v)
            assert ours.grid_mapping == ref.grid_mapping


def test_store_with_augmentation_draws_the_same_flips(trees):
    import torch

    opts, names, store, _ = trees["era5_land"]
    cls = _family(opts)
    ref, ours = cls(_cfg(opts, names, is_aug=True), "train"), cls(_cfg(opts, names, store=str(store), is_aug=True),
                                                                  "train")
    torch.manual_seed(5)
    a = [ref[i]["x"] for i in (0, 3, 9)]
    torch.manual_seed(5)
    b = [ours[i]["x"] for i in (0, 3, 9)]
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_zarrs_own_reader_gives_the_fast_readers_values(trees, monkeypatch):
    """The chunk reader of ``dataset.zarr_store`` and zarr's API (used for other codecs and URLs) agree."""
    from dataset import zarr_store

    opts, names, store, _ = trees["era5_land"]
    cls = _family(opts)
    over = {"x_min": 2, "x_max": 13, "y_min": 1, "y_max": 12}
    fast = cls(_cfg(opts, names, store=str(store), **over), "train")
    monkeypatch.setattr(zarr_store, "_plan", lambda array, root: None)
    slow = cls(_cfg(opts, names, store=str(store), **over), "train")
    assert all(a.plan is None for a in slow.store._arrays.values())
    _same(fast, slow, [0, 4, len(fast) - 1])


def test_store_behind_an_fsspec_url(trees):
    """An fsspec URL (here the in-memory filesystem; s3://, gs://, ... alike) reads through zarr's API."""
    import fsspec

    opts, names, store, _ = trees["era5_land"]
    fs = fsspec.filesystem("memory")
    for f in store.rglob("*"):
        if f.is_file():
            fs.pipe(f"/idee_test/era5.zarr/{f.relative_to(store)}", f.read_bytes())
    try:
        cls = _family(opts)
        ref = cls(_cfg(opts, names, store=str(store)), "train")
        ours = cls(_cfg(opts, names, store="memory://idee_test/era5.zarr"), "train")
        assert ours.store.root is None and all(a.plan is None for a in ours.store._arrays.values())
        _same(ref, ours, [0, 6, len(ref) - 1])
    finally:
        fs.rm("/idee_test", recursive=True)


def test_store_layout_chunks_and_the_climatology_beside(trees):
    """Chunks (one week x both statistics x --chunk), codecs, CF dims, and the tree's climatology in the store."""
    import xarray as xr
    import zarr

    opts, names, store, packed = trees["era5_land"]
    g = zarr.open_group(str(store), mode="r")
    assert g.attrs["idee_store"] == 1 and g.attrs["name"] == "ERA5-Land EUR-11" and g.attrs["grid"] == list(SHAPE)
    a = g["t2m"]
    assert a.shape == (104, 2, *SHAPE) and a.chunks == (1, 2, 5, 6)
    assert [type(c).__name__ for c in a.metadata.codecs] == ["BytesCodec", "BloscCodec"]
    assert a.metadata.codecs[1].cname.value == "lz4hc" and a.metadata.codecs[1].shuffle.value == "shuffle"
    assert list(a.metadata.dimension_names) == ["time", "statistic", "rlat", "rlon"]
    assert g["time"][0] == 2016001 and g["time"][-1] == 2017052
    clim = g["climatology/t2m"]
    assert clim.shape == (2, 2, 52, *SHAPE) and clim.chunks == (2, 2, 1, *SHAPE)  # one mapped view per week
    assert [type(c).__name__ for c in clim.metadata.codecs] == ["BytesCodec"]  # memory-mapped
    p = zarr.open_group(str(packed), mode="r")
    assert p["t2m"].chunks == (1, 2, *SHAPE)
    assert [type(c).__name__ for c in p["climatology/t2m"].metadata.codecs] == ["BytesCodec", "BloscCodec"]
    root = opts["root_ERA5_Land"] + "/EUR-11"
    with netCDF4.Dataset(f"{root}/EUR-11_climatology_pixels_train.nc") as nc:
        np.testing.assert_array_equal(clim[...], nc["t2m"][:].filled(np.nan))
    with netCDF4.Dataset(f"{root}/2016/2016003.nc") as nc:
        labels = list(nc["statistic"][:])
        ref = nc["swvl1"][:].filled(np.nan)[[labels.index("mean"), labels.index("std")]]
    np.testing.assert_array_equal(g["swvl1"][2], ref)
    assert json.loads(g.attrs["statistics_json"])["mean"]["t2m"] > 200
    with xr.open_zarr(store, consolidated=False) as ds:  # an ordinary zarr store for xarray
        assert ds["t2m"].dims == ("time", "statistic", "rlat", "rlon")
    with xr.open_zarr(store, group="climatology", consolidated=False) as ds:
        assert set(ds.data_vars) == set(names)


def test_converter_errors(trees, tmp_path, capsys):
    """Existing output (not overwritten), unknown dataset, missing variable: exit 2 and one line."""
    from dataset.to_zarr import main

    opts, names, store, _ = trees["era5_land"]
    roots = ["--root_ERA5_Land", opts["root_ERA5_Land"], "--root_NOAA", opts["root_NOAA"]]
    stamp = (store / "zarr.json").stat().st_mtime_ns
    assert main(["--dataset", "era5_land", *roots, "--out", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(store) in err and "--overwrite" in err
    assert (store / "zarr.json").stat().st_mtime_ns == stamp
    assert main(["--dataset", "era5", "--out", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'era5' is not one of era5_land, cerra, synthetic, datacube" in err
    bad = ["--variables", "t2m", "snow", "--out", str(tmp_path / "y.zarr")]
    assert main(["--dataset", "era5_land", *roots, *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "variable 'snow' is missing" in err
    assert not (tmp_path / "y.zarr").exists()
    # --overwrite replaces it
    small = tmp_path / "z.zarr"
    small.mkdir()
    assert main(["--dataset", "era5_land", *roots, "--variables", "t2m", "--years", "2017", "--out", str(small),
                 "--overwrite"]) == 0
    assert (small / "t2m" / "zarr.json").is_file()


def test_loader_errors_on_stores(trees, tmp_path):
    from dataset.real_common import DataLayoutError

    opts, names, store, _ = trees["era5_land"]
    cls = _family(opts)
    with pytest.raises(DataLayoutError, match="holds 'ERA5-Land EUR-11', not 'ERA5-Land AFR-11'"):
        cls(_cfg(opts, names, store=str(store), region="AFR-11"), "train")
    with pytest.raises(DataLayoutError, match="year 2019 of option 'years_train' is not in option 'store'"):
        cls(_cfg(opts, names, store=str(store), years_train=["2019"]), "train")
    with pytest.raises(DataLayoutError, match="has no variable 'skt'"):
        cls(_cfg(opts, [*names, "skt"], store=str(store)), "train")
    with pytest.raises(DataLayoutError, match="is not a zarr 3 store"):
        cls(_cfg(opts, names, store=str(tmp_path)), "train")
    c_opts, c_names, c_store, _ = trees["cerra"]
    with pytest.raises(DataLayoutError, match="holds 'CERRA', not 'ERA5-Land EUR-11'"):
        cls(_cfg(opts, names, store=str(c_store)), "train")


def test_store_through_dataloader_workers(trees):
    """A store dataset pickles into DataLoader workers (zarr handles reopened there)."""
    from torch.utils.data import DataLoader

    opts, names, store, _ = trees["era5_land"]
    cls = _family(opts)
    ref = cls(_cfg(opts, names), "test")
    ours = cls(_cfg(opts, names, store=str(store)), "test")
    batches = list(DataLoader(ours, batch_size=4, num_workers=1))
    np.testing.assert_array_equal(batches[0]["x"][2].numpy(), ref[2]["x"].numpy())


def test_synthetic_benchmark_as_a_store_reads_the_synthetic_samples(tmp_path):
    """``--dataset synthetic``: the datacube loader, given the climatology written beside the store, reads
    the synthetic loader's normalised inputs, labels and true drivers."""
    import zarr

    from config import parse_overrides
    from dataset.families import dataset_family
    from dataset.generate_synthetic import generate
    from dataset.to_zarr import main

    root = generate("tiny", tmp_path / "tiny")
    store = tmp_path / "tiny.zarr"
    assert main(["--dataset", "synthetic", "--root_synthetic", str(root), "--out", str(store)]) == 0
    assert (tmp_path / "tiny.zarr.climatology.nc").is_file()
    g = zarr.open_group(str(store), mode="r")
    name = next(k for k in g.array_keys() if k.startswith("var_"))
    assert g[name].chunks[0] == 28 and type(g[name].metadata.codecs[1]).__name__ == "BloscCodec"
    names = sorted(k for k in g.array_keys() if k.startswith("var_"))
    import pandas as pd

    def week(k: int) -> str:
        return str((pd.Timestamp("2001-01-05") + pd.Timedelta(weeks=k)).date())

    args = ["--data", str(store), "--variables", *names, "--target", "extreme", "--truth_drivers", "true_drivers",
            "--climatology", str(tmp_path / "tiny.zarr.climatology.nc"),
            "--period_train", week(0), week(103), "--period_val", week(104), week(129),
            "--period_test", week(130), week(155)]
    cube_cfg = load_config(overrides={**parse_overrides(args), "dataset": "datacube"})
    syn_cfg = load_config("configs/synthetic_tiny.yaml", {"root_synthetic": str(root)})
    for split in ("val", "test"):
        ours, ref = dataset_family("datacube").load(cube_cfg, split), dataset_family("synthetic").load(syn_cfg, split)
        assert len(ours) == len(ref)
        for i in (0, len(ref) - 1):
            np.testing.assert_array_equal(ours[i]["x"].numpy(), ref[i]["x"].numpy())
            np.testing.assert_array_equal(ours[i]["mask_extreme"].numpy(), ref[i]["mask_extreme"].numpy())
            np.testing.assert_array_equal(ours[i]["mask_anomaly"].numpy(), ref[i]["mask_anomaly"].numpy())


def test_datacube_as_a_store_with_its_training_climatology(tmp_path):
    """``--dataset datacube``: the rewritten cube reads the source's samples; the climatology beside it is
    the loader's training climatology."""
    import xarray as xr

    from config import parse_overrides
    from dataset.datacube import DatacubeDataset
    from dataset.sample_datacube import make_datacube
    from dataset.to_zarr import main

    src = tmp_path / "cube.nc"
    opts = make_datacube(src, [2015, 2016, 2017], shape=(9, 10), seed=2, fmt="netcdf")
    store = tmp_path / "cube.zarr"
    assert main(["--dataset", "datacube", "--data", str(src), "--variables", *opts["variables"].split(),
                 "--target", opts["target"], "--target_below", opts["target_below"], "--mask", opts["mask"],
                 "--step", "7D",
                 "--period_train", *opts["period_train"].split(), "--out", str(store)]) == 0
    args = [a for k, v in opts.items() for a in (f"--{k}", *v.split())]
    ref_cfg = load_config(overrides={**parse_overrides(args), "dataset": "datacube"})
    ours_cfg = load_config(overrides={**parse_overrides(args), "dataset": "datacube", "data": str(store)})
    ref, ours = DatacubeDataset(ref_cfg, "val"), DatacubeDataset(ours_cfg, "val")
    for i in (0, len(ref) - 1):
        for k in ("x", "mask_extreme", "mask_extreme_loss", "mask_valid"):
            np.testing.assert_array_equal(ours[i][k].numpy(), ref[i][k].numpy())
    with xr.open_dataset(f"{store}.climatology.nc") as c:
        np.testing.assert_array_equal(c["median"].values, ref.climatology[0])
    with xr.open_zarr(store, consolidated=False) as z:
        assert z["t2m_daily"].encoding["chunks"] == (28, 9, 10)


def test_sample_tree_fields_are_smooth_in_space_and_time(tmp_path):
    """The sample tree's weekly means: neighbouring pixels and consecutive weeks are correlated
    (white noise would give ~0), and Blosc compresses them."""
    from dataset.sample_tree import AR1, smooth_noise

    rng = np.random.default_rng(0)
    a = smooth_noise(rng, (64, 64))
    assert 0.85 < a.std() < 1.15
    assert np.corrcoef(a[:, :-1].ravel(), a[:, 1:].ravel())[0, 1] > 0.9
    opts = make_tree("era5_land", tmp_path, [2016], shape=(40, 40), seed=0, variables=["t2m"])
    root = opts["root_ERA5_Land"] + "/EUR-11/2016"
    weeks = []
    for w in (20, 21):
        with netCDF4.Dataset(f"{root}/2016{w:03d}.nc") as nc:
            weeks.append(nc["t2m"][:].filled(np.nan)[list(nc["statistic"][:]).index("mean")])
    with netCDF4.Dataset(f"{opts['root_ERA5_Land']}/EUR-11/EUR-11_climatology_pixels_train.nc") as nc:
        clim = [nc["t2m"][0, 0, w - 1].filled(np.nan) for w in (20, 21)]
    an = [wk - c for wk, c in zip(weeks, clim)]
    ok = np.isfinite(an[0]) & np.isfinite(an[1])
    assert np.corrcoef(an[0][ok], an[1][ok])[0, 1] > AR1 - 0.35
    land = np.isfinite(an[0])
    ok = land[:, :-1] & land[:, 1:]
    assert np.corrcoef(an[0][:, :-1][ok], an[0][:, 1:][ok])[0, 1] > 0.8


def test_config_store_option_has_help():
    from dataclasses import fields

    from utils.option_sections import ReanalysisOptions

    f = {x.name: x for x in fields(ReanalysisOptions)}["store"]
    assert f.default is None and "dataset.to_zarr" in f.metadata["help"]



def test_train_and_test_scripts_read_a_store(trees, tmp_path):
    """``train_ERA5_Land.py`` / ``test_ERA5_Land.py --store`` (the root options pointing nowhere) train,
    test and write the tree's labels; the saved configuration keeps the store."""
    import xarray as xr

    import test_ERA5_Land
    import train_ERA5_Land

    opts, names, store, _ = trees["era5_land"]
    args = ["--region", "EUR-11", "--store", str(store), "--root_ERA5_Land", str(tmp_path / "none"),
            "--root_NOAA", str(tmp_path / "none"), "--variables", *names, "--in_channels_dynamic", str(len(names)),
            "--x_max", str(SHAPE[1]), "--y_max", str(SHAPE[0]), "--years_train", "2017", "--years_val", "2017",
            "--years_test", "2017", "--encoder", "CNN_3D", "--en_embed_dim", "4", "4", "--cls_dim", "4",
            "--codebook_dim", "4", "--n_epochs", "1", "--batch_size", "2", "--max_train_batches", "1",
            "--max_eval_batches", "1", "--device", "cpu", "--dir_log", str(tmp_path), "--name", "run",
            "--n_workers", "0"]
    assert train_ERA5_Land.main(args) == 0
    assert test_ERA5_Land.main([*args, "--save_predictions", "true"]) == 0
    run = tmp_path / "run"
    cfg = load_config(run / "config_test_test.yaml")
    assert cfg.store == str(store)
    ref = _family(opts)(_cfg(opts, names), "test")
    with xr.open_dataset(run / "drivers_test.nc") as nc:
        np.testing.assert_array_equal(nc["drought_true"].values[0], ref[0]["mask_extreme"].numpy())


def test_decoding_threads_share_the_cores(monkeypatch):
    """Ranks of a machine and their workers divide the cores; IDEE_ZARR_THREADS overrides."""
    import os

    from dataset.zarr_store import decode_threads

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("IDEE_ZARR_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert decode_threads() == max(1, min(8, cores))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(4 * cores))
    assert decode_threads() == 1
    monkeypatch.setenv("IDEE_ZARR_THREADS", "3")
    assert decode_threads() == 3


def test_benchmark_compares_tree_and_store(tmp_path, capsys):
    """``scripts/benchmark_loader.py --compare_store`` on a small tree: writes tree and store, prints the table."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import benchmark_loader

    tree = tmp_path / "bench"
    assert benchmark_loader.main(["--compare_store", "--tree", str(tree), "--size", "12", "14", "--store_chunk",
                                  "6", "7", "--compare_crop", "6", "6", "--samples", "3", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert (tree / "era5_land_eur11.zarr" / "zarr.json").is_file()
    rows = [line for line in out.splitlines() if line.startswith("| 12 x 14") or line.startswith("| 6 x 6")]
    assert len(rows) == 4 and "| zarr store |" in rows[1] and rows[1].split("|")[6].strip().endswith("%")
    assert "MiB on disk" in out and "load average" in out
