"""Your own datacube: a cube in another layout trains and tests with IDE and a baseline, and reads
the same samples as the synthetic loader reads from the published layout."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

START = pd.Timestamp("2000-01-03")
# zarr 3 warns about the string coordinate of the test cube and about consolidated metadata
pytestmark = [pytest.mark.filterwarnings("ignore:The data type"),
              pytest.mark.filterwarnings("ignore:Consolidated metadata")]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


def _as_datacube(root, out, *, zarr: bool, ascending_lat: bool, start: pd.Timestamp = START):
    """The ``tiny`` benchmark rewritten: other names, a date axis, latitude either way, zarr or netCDF,
    and a mask ``land`` whose east-most column is invalid."""
    with xr.open_dataset(root / f"datacube_{root.name}.nc", decode_times=False) as src:
        src = src.load()
    names = [str(v) for v in src["var"].values]
    n_t, h, w = src.sizes["time"], src.sizes["y"], src.sizes["x"]
    lat = np.linspace(60.0, 45.0, h)  # row 0 = north in the benchmark
    lon = np.linspace(5.0, 20.0, w)
    coords = {"valid_time": pd.date_range(start, periods=n_t, freq="7D"), "latitude": lat, "longitude": lon}
    data = {f"field_{v}": (("valid_time", "latitude", "longitude"), src[v].values) for v in names}
    data["heat"] = (("valid_time", "latitude", "longitude"), (src["extreme"].values == 1).astype(np.int8))
    dims4 = ("name", "valid_time", "latitude", "longitude")
    data["true_drivers"] = (dims4, src["anomaly_extreme"].values.astype(np.int8))
    land = np.ones((h, w), dtype=np.int8)
    land[:, -1] = 0
    data["land"] = (("latitude", "longitude"), land)
    cube = xr.Dataset(data, coords={**coords, "name": [f"field_{v}" for v in names]})
    cube["latitude"].attrs = {"standard_name": "latitude", "units": "degrees_north"}
    cube["longitude"].attrs = {"standard_name": "longitude", "units": "degrees_east"}
    if ascending_lat:
        cube = cube.isel(latitude=slice(None, None, -1))
    if zarr:
        cube.to_zarr(out, mode="w")
    else:
        cube.to_netcdf(out)
    return out, [f"field_{v}" for v in names]


def _opts(path, names, *extra, start: pd.Timestamp = START):
    def week(k: int) -> str:
        return str((start + pd.Timedelta(weeks=k)).date())

    return ["--data", str(path), "--variables", *names, "--target", "heat", "--truth_drivers", "true_drivers",
            "--period_train", week(0), week(103), "--period_val", week(104), week(129),
            "--period_test", week(130), week(155), *extra]


@pytest.mark.parametrize(("zarr", "ascending"), [(True, True), (False, False)])
def test_same_samples_as_the_synthetic_loader(tiny_root, tmp_path, zarr, ascending):
    """Raw values (is_norm false), labels, loss masks and true drivers equal the synthetic loader's."""
    from config import load_config
    from dataset.families import dataset_family

    path, names = _as_datacube(tiny_root, tmp_path / ("cube.zarr" if zarr else "cube.nc"), zarr=zarr,
                               ascending_lat=ascending)
    from config import parse_overrides

    cube_cfg = load_config(overrides={**parse_overrides(_opts(path, names)), "dataset": "datacube", "is_norm": False})
    syn_cfg = load_config("configs/synthetic_tiny.yaml", {"root_synthetic": str(tiny_root), "is_norm": False})
    for split in ("train", "test"):
        ours = dataset_family("datacube").load(cube_cfg, split)
        ref = dataset_family("synthetic").load(syn_cfg, split)
        assert len(ours) == len(ref) > 0
        for i in (0, len(ref) // 2, len(ref) - 1):
            a, b = ours[i], ref[i]
            np.testing.assert_allclose(a["x"].numpy(), b["x"].numpy(), rtol=0, atol=0)
            for key in ("mask_extreme", "mask_anomaly"):
                np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
            # the loss mask is the target in any week of the window (the benchmark's also counts its
            # halo classes 2 and 3, which a 0/1 target does not carry)
            window = ours.extremes_truth()[i : i + ours.delta_t].any(0)
            np.testing.assert_array_equal(a["mask_extreme_loss"].numpy(), window)
        np.testing.assert_array_equal(ours.drivers_truth(), ref.drivers_truth())


def test_driver_scores_count_the_valid_pixels_only(tiny_root, tmp_path):
    """With --mask, driver scores (the method's and Naive's) leave the invalid pixels out, as the
    extreme scores do."""
    from config import load_config, parse_overrides
    from dataset.families import dataset_family
    from dataset.families.synthetic import naive_reference
    from utils.metrics import DriverCollector

    path, names = _as_datacube(tiny_root, tmp_path / "cube.nc", zarr=False, ascending_lat=False)
    cfg = load_config(overrides={**parse_overrides(_opts(path, names, "--mask", "land")), "dataset": "datacube"})
    data = dataset_family("datacube").load(cfg, "test")
    truth = data.drivers_truth()
    valid = data.valid_pixels > 0.5
    assert valid.shape == truth.shape[2:] and not valid[:, -1].any() and valid[:, :-1].all()
    collector = DriverCollector(data, cfg.delta_t)
    for i in range(len(data)):  # a model that flags everything: recall 1, every valid negative a false positive
        sample = data[i]
        flags = torch.ones(1, len(names), cfg.delta_t, *valid.shape)
        collector.update({"timestep": torch.tensor([int(sample["timestep"])])}, SimpleNamespace(anomaly=flags))
    pooled = collector.result()["pooled"]
    n_valid = int(valid.sum()) * truth.shape[0] * truth.shape[1]
    assert pooled["tp"] + pooled["fn"] == int(truth[..., valid].sum()) > 0
    assert pooled["tp"] + pooled["fp"] + pooled["fn"] + pooled["tn"] == n_valid
    naive = naive_reference(data, cfg.delta_t)["pooled"]
    assert naive["tp"] + naive["fp"] + naive["fn"] + naive["tn"] == n_valid


def test_ide_and_a_baseline_train_and_test_on_a_datacube(tiny_root, tmp_path, capsys):
    import test_datacube
    import train_datacube

    path, names = _as_datacube(tiny_root, tmp_path / "cube.zarr", zarr=True, ascending_lat=True)
    common = ["--x_max", "8", "--y_max", "8", "--encoder", "CNN_3D", "--n_epochs", "1", "--batch_size", "2",
              "--max_train_batches", "1", "--max_eval_batches", "2", "--device", "cpu", "--dir_log", str(tmp_path)]
    for method in ("ide", "stealnet"):
        args = [*_opts(path, names), *common, "--method", method, "--name", method]
        assert train_datacube.main(args) == 0
        assert test_datacube.main([*args, "--save_predictions", "true"]) == 0
        m = json.loads((tmp_path / method / "metrics_test.json").read_text())
        assert m["method"] == method and set(m["drivers"]["per_variable"]) == set(names) and "naive" in m
        with xr.open_dataset(tmp_path / method / "drivers_test.nc") as nc:
            assert nc["driver"].dtype == np.uint8 and list(nc["var"].values) == names
            assert float(nc["latitude"][0, 0]) == pytest.approx(60.0)  # north-up on the source grid
    assert "Naive" in capsys.readouterr().out
    from vis import driver_maps, regional_frequency

    driver_maps.main(["--run", str(tmp_path / "ide"), "--n", "1", "--out", str(tmp_path / "figs")])
    regional_frequency.main(["--run", str(tmp_path / "ide"), "--out", str(tmp_path / "figs")])
    assert list((tmp_path / "figs").glob("drivers_test_*.png")) and list((tmp_path / "figs").glob("frequency_*"))


def test_threshold_target_daily_data_and_errors(tmp_path, capsys):
    """A continuous index as the target, daily data aggregated to weeks, and one-line errors."""
    import train_datacube

    rng = np.random.default_rng(0)
    days = pd.date_range("2001-01-01", periods=3 * 365, freq="D")
    shape = (len(days), 6, 7)
    cube = xr.Dataset(
        {"tas": (("time", "lat", "lon"), rng.normal(size=shape).astype(np.float32)),
         "pr": (("time", "lat", "lon"), rng.gamma(1.0, size=shape).astype(np.float32)),
         "vhi": (("time", "lat", "lon"), rng.uniform(0, 100, size=shape).astype(np.float32))},
        coords={"time": days, "lat": np.arange(6.0), "lon": np.arange(7.0)},
    )
    cube.to_netcdf(tmp_path / "daily.nc")
    base = ["--data", str(tmp_path / "daily.nc"), "--variables", "tas", "pr", "--target", "vhi",
            "--period_train", "2001-01-01", "2002-06-30", "--period_val", "2002-07-01", "2002-12-31",
            "--period_test", "2003-01-01", "2003-12-31", "--step", "7D", "--encoder", "CNN_3D", "--n_epochs", "1",
            "--batch_size", "2", "--max_train_batches", "1", "--max_eval_batches", "1", "--device", "cpu",
            "--dir_log", str(tmp_path)]
    with pytest.raises(SystemExit) as err:  # a continuous target without a rule
        train_datacube.main([*base, "--name", "a"])
    assert err.value.code == 2 and "holds values other than 0 and 1" in capsys.readouterr().err
    assert train_datacube.main([*base, "--target_below", "10", "--statistics", "mean", "std", "--name", "b"]) == 0
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((tmp_path / "b" / "config.yaml").read_text())))
    assert cfg["in_channels"] == 2 and cfg["in_channels_dynamic"] == 2
    with pytest.raises(SystemExit) as err:
        train_datacube.main([*base, "--target_below", "10", "--variables", "tas", "snow", "--name", "c"])
    assert err.value.code == 2 and "has no variable snow" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        train_datacube.main([*base, "--target_below", "10", "--period_test", "2010-01-01", "2010-12-31", "--name", "d"])
    assert err.value.code == 2 and "option 'period_val'" not in (e := capsys.readouterr().err) and "holds 0 steps" in e
    with pytest.raises(SystemExit) as err:
        train_datacube.main([*base, "--target_below", "10", "--lat_min", "40", "--lat_max", "50", "--name", "e"])
    assert err.value.code == 2 and "the box holds no pixel" in capsys.readouterr().err


def test_the_test_run_caches_the_training_climatology(tiny_root, tmp_path):
    """The climatology of the training period is computed once per run folder and reused while it fits."""
    from config import load_config, parse_overrides
    from dataset.families import dataset_family

    path, names = _as_datacube(tiny_root, tmp_path / "cube.nc", zarr=False, ascending_lat=False)
    over = {**parse_overrides(_opts(path, names)), "dataset": "datacube", "dir_log": str(tmp_path), "name": "run"}
    cfg = load_config(overrides=over)
    family = dataset_family("datacube")
    first = family.load(cfg, "test")  # no run folder yet: nothing cached
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    family.load(cfg, "test")
    cache = tmp_path / "run" / "datacube_climatology.nc"
    assert cache.is_file()
    again = family.load(cfg, "test")
    np.testing.assert_array_equal(first[3]["x"].numpy(), again[3]["x"].numpy())
    other = load_config(overrides={**over, "period_train": [str(START.date()), "2001-06-30"]})
    assert family.load(other, "test")[3]["x"].numpy().tolist() != again[3]["x"].numpy().tolist()
    # the data rewritten at the same path (the training weeks scaled): the cache is not reused
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    for name in names:
        ds[name][:52] = ds[name][:52] * 3
    ds.to_netcdf(path)
    rewritten = family.load(cfg, "test")[3]["x"].numpy()
    uncached = family.load(load_config(overrides={**over, "name": "elsewhere"}), "test")[3]["x"].numpy()
    np.testing.assert_array_equal(rewritten, uncached)
    assert rewritten.tolist() != again[3]["x"].numpy().tolist()


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_sample_cube_trains_with_the_options_it_prints(tmp_path, suffix, capsys):
    """``make_sample_tree --dataset datacube`` writes a daily cube whose printed options train and test."""
    import test_datacube
    import train_datacube
    from dataset.make_sample_tree import main as make

    assert make(["--dataset", "datacube", "--years", "2015", "2016", "2017", "2018", "--size", "12", "12",
                 "--out", str(tmp_path / f"cube{suffix}")]) == 0
    printed = capsys.readouterr().out.splitlines()[-1].split()
    with xr.open_dataset(tmp_path / "cube.nc") if suffix == ".nc" else xr.open_zarr(tmp_path / "cube.zarr") as ds:
        assert float(ds["lat"][0]) > float(ds["lat"][-1])  # north to south, as many archives store it
        assert 0.02 < float((ds["veg_index"] < 30).mean()) < 0.2
    args = [*printed, "--encoder", "CNN_3D", "--n_epochs", "1", "--max_train_batches", "2", "--batch_size", "4",
            "--device", "cpu", "--dir_log", str(tmp_path), "--name", "cube"]
    assert train_datacube.main(args) == 0
    assert test_datacube.main([*args, "--save_predictions", "true"]) == 0
    m = json.loads((tmp_path / "cube" / "metrics_test.json").read_text())
    assert m["n_samples"] == 52 - 8 + 1 and "drivers" not in m  # weekly 2018, no driver truth
    with xr.open_dataset(tmp_path / "cube" / "drivers_test.nc") as nc:
        assert list(nc["var"].values) == ["t2m_daily", "precip", "soil_water"]


def test_with_the_benchmarks_own_climatology_the_normalised_samples_match(tiny_root, tmp_path):
    """Given the benchmark's climatology (``--climatology``), the datacube's normalised samples are the synthetic
    loader's: inputs, labels and true drivers."""
    from config import load_config, parse_overrides
    from dataset.datacube import step_of_year
    from dataset.families import dataset_family

    # weeks from 2001-01-05: over three 365-day years their step of the year is the benchmark's week of year
    start = pd.Timestamp("2001-01-05")
    path, names = _as_datacube(tiny_root, tmp_path / "cube.zarr", zarr=True, ascending_lat=True, start=start)
    weeks = pd.date_range(start, periods=156, freq="7D")
    assert (step_of_year(weeks, pd.Timedelta(days=7)) == np.arange(156) % 52).all()
    with xr.open_dataset(tiny_root / f"climatology_{tiny_root.name}.nc") as c:
        stats = [str(s) for s in c["climatology"].values]
        pick = {s: np.stack([c[v].values[stats.index(s)] for v in (n[len("field_"):] for n in names)])[:, None]
                for s in ("median", "std")}
    dims = ("variable", "statistic", "step_of_year", "y", "x")
    xr.Dataset({s: (dims, a) for s, a in pick.items()}).to_netcdf(tmp_path / "clim.nc")
    cube_cfg = load_config(overrides={**parse_overrides(_opts(path, names, start=start)), "dataset": "datacube",
                                      "climatology": str(tmp_path / "clim.nc")})
    syn_cfg = load_config("configs/synthetic_tiny.yaml", {"root_synthetic": str(tiny_root)})
    assert syn_cfg.is_norm and syn_cfg.is_clima_scale
    for split in ("val", "test"):
        ours, ref = dataset_family("datacube").load(cube_cfg, split), dataset_family("synthetic").load(syn_cfg, split)
        assert len(ours) == len(ref)
        for i in range(len(ref)):
            np.testing.assert_array_equal(ours[i]["x"].numpy(), ref[i]["x"].numpy())
            np.testing.assert_array_equal(ours[i]["mask_extreme"].numpy(), ref[i]["mask_extreme"].numpy())
            np.testing.assert_array_equal(ours[i]["mask_anomaly"].numpy(), ref[i]["mask_anomaly"].numpy())
