"""Prediction files: one writer (utils.predictions) and one CF-1.8 scheme for the synthetic and real layouts."""

from __future__ import annotations

from types import SimpleNamespace

import netCDF4
import numpy as np
import pytest
import torch
import xarray as xr
from cf_checks import check_cf

from dataset.era5_land import rotated_pole
from utils.predictions import DroughtPredictionWriter, write_driver_predictions

pytest.importorskip("cf_xarray")

H, W, V, L = 4, 5, 2, 3


def _fake_real_dataset(dims=("rlat", "rlon"), grid_mapping=None, own_coords=True) -> SimpleNamespace:
    """What DroughtPredictionWriter reads of a RealDataset: names, grid, week labels, coordinates."""
    lat, lon = np.meshgrid(np.linspace(50, 47, H), np.linspace(5, 9, W), indexing="ij")
    coords = {"lat": lat, "lon": lon}
    if own_coords:
        coords.update({dims[0]: np.linspace(2, -1, H), dims[1]: np.linspace(-2, 2, W)})
    return SimpleNamespace(
        variables=["t2m", "tp"],
        crop=SimpleNamespace(shape=(H, W)),
        delta_t=L,
        dims=dims,
        week_labels=["2017010", "2017011", "2017012"],
        coords=coords,
        coord_attrs={dims[0]: {"units": "degrees", "bounds": "rlat_bnds"}} if own_coords else {},
        grid_mapping=grid_mapping,
    )


def _write_real(tmp_path, dataset, world: int = 1):
    """Three target weeks arriving out of order (as from several ranks); returns the flags written."""
    w = DroughtPredictionWriter(dataset, tmp_path, "test", 0.35, {"dataset": "ERA5_Land", "region": "EUR-11"})
    flags = {}
    for ts in (2, 0, 1):
        g = torch.Generator().manual_seed(ts)
        f = (torch.rand(1, V, L, H, W, generator=g) < 0.3).to(torch.uint8)
        flags[ts] = f[0].numpy()
        out = SimpleNamespace(anomaly=f, logits=torch.full((1, 1, H, W), float(ts) - 1.0))
        batch = {"timestep": torch.tensor([ts]), "mask_extreme": torch.ones(1, H, W),
                 "mask_valid": torch.ones(1, H, W)}
        w.update(batch, out)
    w.all_reduce()
    return w.save(tmp_path, "test"), flags


def test_real_data_file_is_cf_with_latlon_coordinates_and_rotated_pole(tmp_path):
    path, flags = _write_real(tmp_path, _fake_real_dataset(grid_mapping=rotated_pole("EUR-11")))
    with xr.open_dataset(path) as ds:
        check_cf(ds, ("lat", "lon"))
        assert ds.cf.grid_mapping_names == {"rotated_latitude_longitude": ["rotated_pole"]}
        gm = ds["rotated_pole"].attrs
        assert (gm["grid_north_pole_latitude"], gm["grid_north_pole_longitude"]) == (39.25, -162.0)
        for name in ("driver", "drought", "drought_prob", "drought_true", "valid"):
            assert ds[name].attrs["grid_mapping"] == "rotated_pole"
        assert ds["rlat"].attrs["standard_name"] == "grid_latitude" and ds["rlat"].attrs["units"] == "degrees"
        assert "bounds" not in ds["rlat"].attrs  # the weekly files' bounds variable is not in this file
        assert list(ds["week"].values) == ["2017010", "2017011", "2017012"]  # split order
        for j in range(3):
            np.testing.assert_array_equal(ds["driver"].values[j], flags[j])
        np.testing.assert_array_equal(ds["drought"].values[:, 0, 0], [0, 1, 1])  # sigmoid(-1/0/1) >= 0.35
        assert ds["drought_prob"].dtype == np.float32 and ds["driver"].dtype == np.uint8
        assert ds["drought"].attrs["flag_meanings"] == "no_drought drought"
        assert ds.attrs["region"] == "EUR-11" and "coordinates" not in ds.attrs
    with netCDF4.Dataset(path) as nc:  # what CF tools see: the attribute on the variable itself
        assert nc["driver"].coordinates == "lat lon" and "coordinates" not in nc.ncattrs()


def test_real_data_file_without_grid_mapping_or_own_coordinates(tmp_path):
    """CERRA-like: y/x grid without a grid mapping; rows and columns become grid indices."""
    path, _ = _write_real(tmp_path, _fake_real_dataset(dims=("y", "x"), own_coords=False))
    with xr.open_dataset(path) as ds:
        check_cf(ds, ("lat", "lon"))
        assert "grid_mapping" not in ds["driver"].attrs and ds.cf.grid_mapping_names == {}
        np.testing.assert_array_equal(ds["y"].values, np.arange(H))
        assert ds["y"].attrs["axis"] == "Y" and "north" in ds["y"].attrs["long_name"]


def test_synthetic_file_is_cf_and_marks_target_weeks(tmp_path):
    T = 6
    prob = np.full((T, H, W), np.nan, np.float32)
    prob[2:] = 0.7
    lat, lon = np.meshgrid(60.0 - 0.1 * np.arange(H), np.arange(W) * 0.1, indexing="ij")
    path = write_driver_predictions(
        tmp_path / "drivers_test.nc",
        driver=np.ones((V, T, H, W)),
        driver_true=np.zeros((V, T, H, W)),
        extreme_prob=prob,
        extreme_true=np.full((T, H, W), 2),
        var_names=["var_01", "var_02"],
        time_labels=range(131, 131 + T),
        y=range(H),
        x=range(W),
        target=np.arange(T) >= 2,
        coverage=np.full(T, 3),
        latitude=lat,
        longitude=lon,
        attrs={"encoder": "CNN_3D"},
    )
    with xr.open_dataset(path) as ds:
        check_cf(ds, ("latitude", "longitude"))
        np.testing.assert_array_equal(ds["target"].values, [0, 0, 1, 1, 1, 1])
        assert ds["target"].attrs["flag_meanings"] == "not_target target"
        np.testing.assert_array_equal(ds["extreme"].values[:, 0, 0], [0, 0, 1, 1, 1, 1])
        assert not ds["extreme_true"].values.any()  # class 2 (a week before an extreme) is not class 1
        assert ds["extreme_prob"].attrs["units"] == "1" and ds.attrs["encoder"] == "CNN_3D"


def test_both_layouts_share_one_attribute_scheme(tmp_path):
    """The same variable kind carries the same attributes in either layout (one scheme, one writer)."""
    real, _ = _write_real(tmp_path, _fake_real_dataset())
    syn = write_driver_predictions(
        tmp_path / "syn.nc", driver=np.zeros((V, 2, H, W)), driver_true=None, extreme_prob=None,
        extreme_true=None, var_names=["a", "b"], time_labels=[1, 2], y=range(H), x=range(W),
    )
    with xr.open_dataset(real) as r, xr.open_dataset(syn) as s:
        strip = {"grid_mapping"}
        assert {k: str(v) for k, v in r["driver"].attrs.items() if k not in strip} == {
            k: str(v) for k, v in s["driver"].attrs.items()
        }
        for key in ("Conventions", "source", "rows"):
            assert r.attrs[key] == s.attrs[key]
