"""Real-data loaders (ERA5-Land, CERRA) on hand-made and generated trees in the published layout.

The hand-made tree (4 x 5 pixels, 2 variables, years 2015-2016) has known values:
weekly ``mean`` = week + 100 * file_row + col and ``std`` = 1000 + week; the climatology has
mean = week / std = 100 (stat mean) and mean = 1000 / std = 10 (stat std), so a normalised
sample holds ``file_row + col / 100`` (mean channel) and ``week / 10`` (std channel).
VHI is 50 everywhere except the planted cases below (north-up coordinates).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch
from cf_checks import check_cf

from config import load_config
from dataset import mapped
from dataset.era5_land import ERA5LandDataset
from dataset.real_common import DataLayoutError, window_weeks
from dataset.sample_tree import make_tree, noaa_name, write_climatology, write_masks, write_noaa, write_weekly

H, W = 4, 5
VARS = ["t2m", "swvl1"]
DIMS = ("rlat", "rlon")
TARGET = (2016, 10)
SEA, COLD, NOVEG, NAN = (3, 0), (1, 1), (1, 2), (2, 2)  # north-up (row, col)


def _vhi(year: int, week: int) -> np.ndarray:
    v = np.full((H, W), 50.0)
    v[SEA] = np.nan
    if (year, week) == TARGET:
        v[0, 1] = 20.0  # drought
        v[0, 2] = 30.0  # dry, not a drought (only the loss mask)
        v[COLD] = 20.0  # cold surface: no label
        v[NOVEG] = 20.0  # no vegetation: no label
        v[NAN] = np.nan
    if (year, week) == (2016, 8):
        v[2, 3] = 30.0  # dry two weeks before the target: loss mask
    if (year, week) == (2016, 7):
        v[2, 4] = 20.0  # dry but cold that week: not in the loss mask
    return v


def _cold(year: int, week: int) -> np.ndarray:
    c = np.zeros((H, W), bool)
    if (year, week) == TARGET:
        c[COLD] = True
    if (year, week) == (2016, 7):
        c[2, 4] = True
    return c


def _file(a: np.ndarray) -> np.ndarray:
    """north-up -> file order (rows south-to-north)."""
    return np.ascontiguousarray(a[::-1])


def write_hand_tree(root: Path) -> dict[str, str]:
    era, noaa = root / "ERA5-Land" / "EUR-11", root / "NOAA_CORDEX" / "EUR-11"
    rows = np.arange(H)[:, None] * 100.0 + np.arange(W)[None, :]
    for year in (2015, 2016):
        for week in range(1, 53):
            data = {}
            for v in VARS:
                a = np.zeros((4, H, W), np.float32)  # statistic = (min, max, mean, std)
                a[2] = week + rows
                a[3] = 1000.0 + week
                data[v] = a
            write_weekly(era / f"{year}" / f"{year}{week:03d}.nc", data, DIMS)
            if (year, week) == (2016, 9):
                continue  # no NOAA data this week
            vhi, cold = _file(_vhi(year, week)), _file(_cold(year, week))
            if (year, week) == TARGET:  # two satellites: nanmean of the files
                a, b = vhi.copy(), vhi.copy()
                a[_file_idx(0, 3)], b[_file_idx(0, 3)] = 20.0, 30.0  # mean 25 < 26: drought
                a[_file_idx(0, 4)], b[_file_idx(0, 4)] = 24.0, np.nan  # nanmean 24: drought
                a[_file_idx(1, 3)], b[_file_idx(1, 3)] = 20.0, 40.0  # mean 30: no drought
                write_noaa(noaa / f"{year}" / noaa_name(year, week, "n19"), a + 6, a - 6, cold, DIMS)
                write_noaa(noaa / f"{year}" / noaa_name(year, week, "npp"), b - 2, b + 2, cold, DIMS)
            else:
                write_noaa(noaa / f"{year}" / noaa_name(year, week), vhi, vhi, cold, DIMS)
    land, noveg = np.ones((H, W)), np.zeros((H, W))
    land[SEA] = 0
    noveg[NOVEG] = 1
    write_masks(noaa / "EUR-11_masks.nc", DIMS, lsm=_file(land), mask_no_vegetation=_file(noveg))

    def clim(name: str, week: int) -> np.ndarray:
        c = np.empty((2, 2, H, W), np.float32)
        c[0, 0], c[1, 0], c[0, 1], c[1, 1] = week, 100.0, 1000.0, 10.0
        return c

    write_climatology(era / "EUR-11_climatology_pixels_train.nc", DIMS, (H, W), VARS, clim)
    stats = {"mean": {v: 0.0 for v in VARS}, "std": {v: 10.0 for v in VARS}, "min": {}, "max": {}}
    (era / "EUR-11_statistic_train.json").write_text(json.dumps(stats))
    return {"root_ERA5_Land": str(root / "ERA5-Land"), "root_NOAA": str(root / "NOAA_CORDEX")}


def _file_idx(r: int, c: int) -> tuple[int, int]:
    return (H - 1 - r, c)


@pytest.fixture(scope="module")
def hand_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hand")
    write_hand_tree(root)
    return root


def _cfg(root: Path, **over):
    base = {
        "dataset": "ERA5_Land",
        "root_ERA5_Land": str(root / "ERA5-Land"),
        "root_NOAA": str(root / "NOAA_CORDEX"),
        "variables": VARS,
        "in_channels_dynamic": 2,
        "in_channels": 2,
        "delta_t": 4,
        "x_min": 0,
        "x_max": W,
        "y_min": 0,
        "y_max": H,
        "years_train": ["2016"],
        "years_val": ["2016"],
        "years_test": ["2016"],
        "is_aug": False,
    }
    base.update(over)
    return load_config(overrides=base)


def _sample(ds, year_week):
    return ds[ds.targets.index(year_week)]


def test_window_weeks_wrap_into_previous_year():
    assert window_weeks(2016, 2, 4) == [(2016, 2), (2016, 1), (2015, 52), (2015, 51)]
    assert window_weeks(2016, 10, 3) == [(2016, 10), (2016, 9), (2016, 8)]


def test_labels_masks_and_several_noaa_files(hand_tree):
    s = {split: _sample(ERA5LandDataset(_cfg(hand_tree), split), TARGET) for split in ("train", "val", "test")}
    ext = s["train"]["mask_extreme"].numpy()
    expect = np.zeros((H, W), np.float32)
    expect[0, 1] = expect[0, 3] = expect[0, 4] = 1  # planted drought, two files mean 25, nanmean 24
    np.testing.assert_array_equal(ext, expect)  # cold, no-vegetation, NaN, sea and mean-30 pixels are 0

    loss = s["train"]["mask_extreme_loss"].numpy()
    want = {(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (2, 3)}  # < 35 in a week, not cold that week
    assert {tuple(p) for p in np.argwhere(loss > 0)} == want

    for split, invalid in (("train", {COLD}), ("val", {COLD, NOVEG}), ("test", {COLD, NOVEG, SEA})):
        valid = s[split]["mask_valid"].numpy()
        assert {tuple(p) for p in np.argwhere(valid == 0)} == invalid, split
    assert s["train"]["week"] == "2016010"
    assert set(s["train"]) == {"x", "mask_extreme", "mask_extreme_loss", "mask_valid", "timestep", "week"}


def test_values_window_order_year_wrap_and_north_up(hand_tree):
    ds = ERA5LandDataset(_cfg(hand_tree), "train")
    x = _sample(ds, (2016, 2))["x"].numpy()
    assert x.shape == (2, 2, 4, H, W) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 1, :, 0, 0], [0.2, 0.1, 5.2, 5.1], rtol=1e-6)  # std channel = week / 10
    file_row = (H - 1 - np.arange(H))[:, None]  # north-up row r is file row H-1-r
    np.testing.assert_allclose(x[1, 0, 2], file_row + np.arange(W)[None, :] / 100, rtol=1e-6)
    assert ds.coords["rlat"][0] > ds.coords["rlat"][-1]  # first row is the northernmost

    crop = ERA5LandDataset(_cfg(hand_tree, y_min=1, y_max=3, x_min=1, x_max=4), "train")
    xc = _sample(crop, (2016, 2))["x"].numpy()
    assert xc.shape[-2:] == (2, 3)
    np.testing.assert_allclose(xc[0, 0, 0], x[0, 0, 0, 1:3, 1:4], rtol=1e-6)  # y counted from the north


def test_missing_noaa_week_and_first_weeks_without_previous_year(hand_tree):
    ds = ERA5LandDataset(_cfg(hand_tree), "train")
    assert (2016, 9) not in ds.targets and (2016, 1) in ds.targets and len(ds) == 51
    assert ds.week_labels[int(ds[5]["timestep"])] == ds[5]["week"]
    first = ERA5LandDataset(_cfg(hand_tree, years_train=["2015"]), "train")  # no 2014: weeks 1..3 dropped
    assert first.targets[0] == (2015, 4) and len(first) == 49


def test_coarsening_global_norm_and_clip(hand_tree):
    ds = ERA5LandDataset(_cfg(hand_tree, window_size=2), "train")
    s = _sample(ds, TARGET)
    assert s["x"].shape == (2, 2, 4, 2, 2)  # 4 x 5 -> trimmed to 4 x 4 -> 2 x 2
    full = _sample(ERA5LandDataset(_cfg(hand_tree), "train"), TARGET)["x"].numpy()
    np.testing.assert_allclose(s["x"][0, 0, 0, 0, 0], full[0, 0, 0, :2, :2].mean(), rtol=1e-6)
    assert s["mask_extreme"].shape == (2, 2)

    g = _sample(ERA5LandDataset(_cfg(hand_tree, is_clima_scale=False, clip_value=3.0), "train"), TARGET)["x"]
    assert float(g.max()) == 3.0  # (1000 + 10) / 10 clipped
    raw = _sample(ERA5LandDataset(_cfg(hand_tree, is_norm=False), "train"), TARGET)["x"].numpy()
    assert raw[0, 1, 0, 0, 0] == 1010.0  # raw values are never clipped


def test_augmentation_flips_inputs_and_labels_together(hand_tree):
    plain = _sample(ERA5LandDataset(_cfg(hand_tree), "train"), TARGET)
    aug = ERA5LandDataset(_cfg(hand_tree, is_aug=True), "train")
    torch.manual_seed(0)
    seen = set()
    for _ in range(12):
        s = _sample(aug, TARGET)
        for fy in (False, True):
            for fx in (False, True):
                dims = [d for d, f in ((-2, fy), (-1, fx)) if f]
                ok = all(
                    torch.equal(s[k], torch.flip(plain[k], dims) if dims else plain[k])
                    for k in ("x", "mask_extreme", "mask_extreme_loss", "mask_valid")
                )
                if ok:
                    seen.add((fy, fx))
                    break
            else:
                continue
            break
        else:
            pytest.fail("augmented sample is not a consistent flip of the plain one")
    assert len(seen) >= 2


def test_dataloader_workers_match_in_process(hand_tree):
    ds = ERA5LandDataset(_cfg(hand_tree), "val")
    direct = [ds[i] for i in range(3)]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1)
    batch = next(iter(loader))
    for k in ("x", "mask_extreme", "mask_valid"):
        torch.testing.assert_close(batch[k], torch.stack([d[k] for d in direct]))
    assert batch["week"] == [d["week"] for d in direct]


def _all_samples(ds) -> list[dict]:
    return [ds[i] for i in range(len(ds))]


def _assert_same_samples(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for sa, sb in zip(a, b):
        for k in ("x", "mask_extreme", "mask_extreme_loss", "mask_valid"):
            assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize(
    "over", [{}, {"is_clima_scale": False}, {"is_norm": False}, {"window_size": 2}, {"x_min": 1, "y_max": 3}]
)
def test_memory_mapped_reads_equal_netcdf_reads(hand_tree, monkeypatch, over):
    """Contiguous files are read through memory maps; the values are those netCDF4 reads."""
    mapped.clear()
    fast = _all_samples(ERA5LandDataset(_cfg(hand_tree, **over), "train"))
    weekly = str(hand_tree / "ERA5-Land/EUR-11/2016/2016010.nc")
    assert mapped.mapped_vars(weekly, VARS) is not None  # the fast path was taken
    monkeypatch.setattr(mapped, "h5py", None)  # as without h5py: netCDF4 only
    assert mapped.mapped_vars(weekly, VARS) is None
    _assert_same_samples(fast, _all_samples(ERA5LandDataset(_cfg(hand_tree, **over), "train")))


def test_compressed_or_rewritten_files_are_read_correctly(hand_tree, tmp_path):
    """A compressed (chunked) file cannot be mapped and goes through netCDF4; a file rewritten
    in place is mapped again, never served from a stale map."""
    t = _copy_tree(hand_tree, tmp_path / "t")
    mapped.clear()
    ref = _all_samples(ERA5LandDataset(_cfg(t), "val"))
    path = t / "ERA5-Land/EUR-11/2016/2016010.nc"
    with netCDF4.Dataset(path) as src:
        data = {v: np.asarray(src[v][:]) for v in VARS}
    path.unlink()
    with netCDF4.Dataset(path, "w") as ds:  # same content, zlib-compressed
        ds.createDimension("statistic", 4)
        for d, n in zip(DIMS, (H, W)):
            ds.createDimension(d, n)
        for v in VARS:
            ds.createVariable(v, "f4", ("statistic", *DIMS), zlib=True, fill_value=np.float32(np.nan))[:] = data[v]
        ds.createVariable("statistic", str, ("statistic",))[:] = np.array(["min", "max", "mean", "std"], object)
    assert mapped.mapped_vars(path, VARS) is None
    _assert_same_samples(ref, _all_samples(ERA5LandDataset(_cfg(t), "val")))

    other = t / "ERA5-Land/EUR-11/2016/2016011.nc"
    before = mapped.mapped_vars(other, VARS)[0].array.copy()
    write_weekly(other, {v: np.full((4, H, W), 7.0, np.float32) for v in VARS}, DIMS, ("min", "max", "mean", "std"))
    after = mapped.mapped_vars(other, VARS)[0].array
    assert not np.array_equal(before, after) and (after == 7.0).all()


def _copy_tree(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_grid_mapping_of_the_weekly_files_or_the_cordex_pole(hand_tree, tmp_path):
    """Prediction files repeat the grid's CF metadata: the files' own, else the CORDEX region's pole."""
    from dataset.era5_land import rotated_pole

    ds = ERA5LandDataset(_cfg(hand_tree), "test")
    assert ds.dims == ("rlat", "rlon") and ds.grid_mapping == rotated_pole("EUR-11")
    path = tmp_path / "weekly.nc"
    with netCDF4.Dataset(path, "w") as nc:
        for d in ("rlat", "rlon"):
            nc.createDimension(d, 2)
            c = nc.createVariable(d, "f8", (d,))
            c.setncatts({"standard_name": f"grid_{'latitude' if d == 'rlat' else 'longitude'}", "units": "degrees"})
        gm = nc.createVariable("rotated_pole", "i4")
        gm.setncatts({"grid_mapping_name": "rotated_latitude_longitude", "grid_north_pole_latitude": 1.5,
                      "grid_north_pole_longitude": -20.0})
        nc.createVariable("t2m", "f4", ("rlat", "rlon")).grid_mapping = "rotated_pole"
    with netCDF4.Dataset(path) as nc:
        attrs, (name, gm_attrs) = ds._read_grid_metadata(nc, "t2m")
    assert name == "rotated_pole" and gm_attrs["grid_north_pole_latitude"] == 1.5
    assert attrs["rlat"] == {"standard_name": "grid_latitude", "units": "degrees"}


def test_clear_errors(hand_tree, tmp_path):
    with pytest.raises(DataLayoutError, match=r"year 2013 of option 'years_train' is missing"):
        ERA5LandDataset(_cfg(hand_tree, years_train=["2013"]), "train")
    with pytest.raises(DataLayoutError, match=r"variable 'tp' is missing"):
        ERA5LandDataset(_cfg(hand_tree, variables=["t2m", "tp"]), "train")

    t = _copy_tree(hand_tree, tmp_path / "t")
    (t / "ERA5-Land/EUR-11/2016/2016020.nc").unlink()
    with pytest.raises(DataLayoutError, match=r"lacks weekly files for weeks \[20\]"):
        ERA5LandDataset(_cfg(t), "train")
    (t / "NOAA_CORDEX/EUR-11/EUR-11_masks.nc").unlink()
    with pytest.raises(DataLayoutError, match=r"EUR-11_masks.nc does not exist"):
        ERA5LandDataset(_cfg(t, years_train=["2015"]), "train")

    t2 = _copy_tree(hand_tree, tmp_path / "t2")
    import shutil

    shutil.rmtree(t2 / "NOAA_CORDEX/EUR-11/2016")
    with pytest.raises(DataLayoutError, match=r"NOAA year 2016 .* is missing"):
        ERA5LandDataset(_cfg(t2), "train")
    bad = t2 / "NOAA_CORDEX/EUR-11/2015" / noaa_name(2015, 20)
    write_noaa(bad, np.ones((H, W + 1)), np.ones((H, W + 1)), np.zeros((H, W + 1)), DIMS)
    with pytest.raises(DataLayoutError, match=r"P2015020.VH.nc: variable 'VCI' has grid \(4, 6\) .*'root_NOAA'"):
        ERA5LandDataset(_cfg(t2, years_train=["2015"]), "train")  # before training, not at that sample


def _real_args(opts: dict[str, str], log: Path, name: str, *extra: str) -> list[str]:
    args = [f"--{k}={v}" for k, v in opts.items() if k not in ("dataset", "variables")]
    return [
        *args,
        "--variables",
        *opts["variables"].split(),
        "--years_train",
        "2016",
        "--years_val",
        "2017",
        "--years_test",
        "2017",
        "--encoder",
        "CNN_3D",
        "--en_embed_dim",
        "4",
        "4",
        "--cls_dim",
        "4",
        "--codebook_dim",
        "4",
        "--n_epochs",
        "1",
        "--batch_size",
        "2",
        "--max_train_batches",
        "1",
        "--max_eval_batches",
        "1",
        "--device",
        "cpu",
        "--dir_log",
        str(log),
        "--name",
        name,
        "--n_workers",
        "0",
        *extra,
    ]


@pytest.mark.parametrize("kind", ["era5_land", "cerra"])
def test_sample_tree_train_and_test(kind, tmp_path, capsys):
    pytest.importorskip("models.build")
    import xarray as xr

    root = tmp_path / "data"
    names = ["t2m", "tp", "swvl1"] if kind == "era5_land" else ["t2m", "tp", "vsw"]
    opts = make_tree(kind, root, [2016, 2017], shape=(12, 12), seed=1, variables=names)
    opts.update(variables=" ".join(names), in_channels_dynamic="3")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_tree

    v = ["--variables", *names]
    if kind == "era5_land":
        assert check_tree.main(["era5_land", "--root", opts["root_ERA5_Land"], *v]) == 0
        assert check_tree.main(["era5_land", "--root", opts["root_ERA5_Land"]]) == 1  # 'd2m' etc. missing
        assert check_tree.main(["noaa_era5_land", "--root", opts["root_NOAA"]]) == 0
        import test_ERA5_Land as test_mod
        import train_ERA5_Land as train_mod
    else:
        assert check_tree.main(["cerra", "--root", opts["root_CERRA"], *v]) == 0
        assert check_tree.main(["noaa_cerra", "--root", opts["root_NOAA_CERRA"]]) == 0
        import test_CERRA as test_mod
        import train_CERRA as train_mod
    assert train_mod.main(_real_args(opts, tmp_path, "run")) == 0
    run = tmp_path / "run"
    assert (run / "last.pth").is_file() and (run / "best_F1_model.pth").is_file()
    assert test_mod.main(_real_args(opts, tmp_path, "run", "--save_predictions", "true")) == 0
    assert "no_drought" in capsys.readouterr().out
    m = json.loads((run / "metrics_test.json").read_text())
    for cls in ("drought", "no_drought", "mean"):
        assert set(m[cls]) == {"precision", "recall", "f1", "iou"}
    assert m["threshold"] == 0.35
    with xr.open_dataset(run / "drivers_test.nc") as nc:
        ydim, xdim = ("rlat", "rlon") if kind == "era5_land" else ("y", "x")
        assert nc["driver"].dims == ("week", "var", "lag", ydim, xdim) and nc["driver"].dtype == np.uint8
        assert nc.sizes["week"] == 2 and nc.sizes["lag"] == 8  # max_eval_batches 1 x batch_size 2
        assert str(nc["week"].values[0]).startswith("2017")
        for v in ("drought", "drought_true", "valid"):
            assert nc[v].dims == ("week", ydim, xdim) and nc[v].dtype == np.uint8
        assert nc["drought_prob"].dtype == np.float32
        assert {"lat", "lon"} <= set(nc.coords)  # xarray opens them as coordinates (CF 'coordinates')
        check_cf(nc, ("lat", "lon"))
        if kind == "era5_land":  # rotated grid: the CORDEX EUR-11 pole (the sample tree carries none)
            assert nc.cf.grid_mapping_names == {"rotated_latitude_longitude": ["rotated_pole"]}
            assert nc["driver"].attrs["grid_mapping"] == "rotated_pole"
        from dataset.families import dataset_family

        cfg = load_config(run / "config_test_test.yaml")
        ds = dataset_family(cfg.dataset).load(cfg, "test")
        np.testing.assert_array_equal(nc["drought_true"].values[0], ds[0]["mask_extreme"].numpy())


@pytest.mark.parametrize(("kind", "method"), [
    ("era5_land", "arnet"), ("cerra", "stealnet"), ("era5_land", "iforest"), ("era5_land", "deepmil"),
    ("cerra", "rtfm"), ("era5_land", "mgfn"), ("cerra", "uniad"), ("era5_land", "ocsvm"), ("cerra", "ig1"),
    ("era5_land", "ig2"), ("cerra", "simplenet"),
])
def test_baselines_on_sample_trees(kind, method, tmp_path, capsys):
    """Any registered method trains and tests on real data and writes the same files as IDE."""
    pytest.importorskip("models.build")
    import xarray as xr

    names = ["t2m", "tp", "swvl1"] if kind == "era5_land" else ["t2m", "tp", "vsw"]
    opts = make_tree(kind, tmp_path / "data", [2016, 2017], shape=(12, 12), seed=1, variables=names)
    opts.update(variables=" ".join(names), in_channels_dynamic="3")
    if kind == "era5_land":
        import test_ERA5_Land as test_mod
        import train_ERA5_Land as train_mod
    else:
        import test_CERRA as test_mod
        import train_CERRA as train_mod
    extra = ["--method", method, "--mil_hidden", "16", "8", "--oneclass_n_fit", "200", "--iforest_n_estimators", "5",
             "--mgfn_dims", "16", "8", "--mgfn_heads", "2", "1", "--uniad_hidden", "12", "--ig_n_steps", "2",
             "--simplenet_proj_dim", "16"]
    if method == "simplenet":  # its frozen encoder: a trained IDE of the same encoder
        assert train_mod.main(_real_args(opts, tmp_path, "ide")) == 0
        extra += ["--simplenet_backbone", str(tmp_path / "ide" / "last.pth")]
    assert train_mod.main(_real_args(opts, tmp_path, "run", *extra)) == 0
    state = torch.load(tmp_path / "run" / "last.pth", map_location="cpu", weights_only=True)
    assert state["config"]["method"] == method
    assert test_mod.main(_real_args(opts, tmp_path, "run", *extra, "--save_predictions", "true")) == 0
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "run" / "metrics_test.json").read_text())
    assert m["method"] == method and m["n_samples"] > 0
    if method in ("stealnet", "iforest", "uniad", "ocsvm", "simplenet"):  # scoring, no extreme map
        assert m["driver_threshold"]["rule"] == "normal_percentile" and "predicts no drought map" in out
    if method.startswith("ig"):  # scoring with an extreme map
        assert m["driver_threshold"]["rule"] == "normal_percentile" and set(m["drought"]) >= {"f1", "iou"}
    with xr.open_dataset(tmp_path / "run" / "drivers_test.nc") as nc:
        assert nc["driver"].dtype == np.uint8 and list(nc["var"].values) == names
