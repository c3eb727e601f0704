"""vis/: every script writes its files on tiny fabricated inputs; regional frequency by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from vis import driver_maps, plot_cerra, plot_era5_land, plot_noaa, plot_synthetic, regional_frequency, report
from vis.regional_frequency import Region, box_region, polygon_region
from vis.runs import load_run

# ------------------------------------------------------------------------------ fabricators


def make_cube(root: Path, exp: str = "exp1", T: int = 16, H: int = 8, W: int = 10, V: int = 3) -> Path:
    """A datacube_<exp>.nc + climatology_<exp>.nc in the published synthetic layout."""
    rng = np.random.default_rng(0)
    folder = root / exp
    folder.mkdir(parents=True)
    names = [f"var_0{i}" for i in range(1, V + 1)]
    ext = np.zeros((T, H, W), np.uint8)
    ext[T // 2, 2:5, 3:7] = 1
    ext[T // 2 - 1, 2:5, 3:7] = 2
    drv = np.zeros((V, T, H, W), np.uint8)
    drv[1, T // 2 - 3 : T // 2, 2:5, 3:7] = 1
    anom = (rng.random((V, T, H, W)) < 0.05).astype(np.uint8)
    lat, lon = np.meshgrid(np.linspace(50, 43, H), np.linspace(2, 11, W), indexing="ij")
    data = {n: (("time", "y", "x"), rng.normal(size=(T, H, W)).astype(np.float32)) for n in names}
    data.update(
        anomaly=(("var", "time", "y", "x"), anom),
        anomaly_extreme=(("var", "time", "y", "x"), drv),
        extreme=(("time", "y", "x"), ext),
    )
    ds = xr.Dataset(
        data,
        coords={
            "time": np.arange(1, T + 1, dtype=np.int32),
            "var": names,
            "latitude": (("y", "x"), lat.astype(np.float32)),
            "longitude": (("y", "x"), lon.astype(np.float32)),
        },
    )
    ds.to_netcdf(folder / f"datacube_{exp}.nc")
    clim = xr.Dataset(
        {
            n: (("climatology", "time", "y", "x"), rng.normal(size=(5, 52, H, W)).astype(np.float32))
            for n in names
        },
        coords={"climatology": ["min", "max", "mean", "median", "std"], "time": np.arange(1, 53)},
    )
    clim[names[0]].loc[{"climatology": "std"}] = 0.5
    clim.to_netcdf(folder / f"climatology_{exp}.nc")
    return folder


def make_synthetic_run(
    run: Path,
    driver: np.ndarray,
    extreme: np.ndarray,
    labels: list[int],
    delta_t: int,
    truth: np.ndarray | None = None,
    metrics: dict | None = None,
) -> Path:
    """drivers_test.nc in the synthetic layout: driver (var, time, y, x) re-assembled flags."""
    run.mkdir(parents=True, exist_ok=True)
    V, T, H, W = driver.shape
    names = [f"var_0{i}" for i in range(1, V + 1)]
    truth = driver if truth is None else truth
    prob = np.clip(extreme * 0.8 + 0.1, 0, 1).astype(np.float32)
    ds = xr.Dataset(
        {
            "driver": (("var", "time", "y", "x"), driver.astype(np.uint8)),
            "driver_true": (("var", "time", "y", "x"), truth.astype(np.uint8)),
            "extreme": (("time", "y", "x"), extreme.astype(np.uint8)),
            "extreme_prob": (("time", "y", "x"), prob),
            "extreme_true": (("time", "y", "x"), extreme.astype(np.uint8)),
        },
        coords={"var": names, "time": np.asarray(labels, np.int32), "y": np.arange(H), "x": np.arange(W)},
    )
    ds.to_netcdf(run / "drivers_test.nc")
    (run / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "name": run.name,
                "delta_t": delta_t,
                "encoder": "Swin_3D",
                "codebook": "LFQ",
                "dataset": "synthetic",
            }
        )
    )
    metrics = metrics or {
        "extremes": {"precision": 0.9, "recall": 0.8, "f1": 0.85, "iou": 0.74, "oa": 0.99},
        "drivers": {
            "pooled": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "iou": 0.48, "oa": 0.98},
            "per_variable": {
                n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "iou": 0.33, "fpr": 0.01} for n in names
            },
        },
        "naive": {"pooled": {"precision": 0.4, "recall": 0.6, "f1": 0.48, "iou": 0.31, "oa": 0.97}},
    }
    (run / "metrics_test.json").write_text(json.dumps(metrics))
    return run


def make_real_run(
    run: Path,
    driver: np.ndarray,
    drought: np.ndarray,
    valid: np.ndarray,
    weeks: list[str],
    latlon: bool = True,
) -> Path:
    """drivers_test.nc in the real-data layout: driver (week, var, lag, y, x), lag 0 = target week."""
    run.mkdir(parents=True, exist_ok=True)
    N, V, L, H, W = driver.shape
    coords = {
        "week": weeks,
        "var": ["t2m", "tp", "swvl1"][:V],
        "lag": np.arange(L),
        "y": np.arange(H),
        "x": np.arange(W),
    }
    if latlon:
        yy, xx = np.mgrid[0:H, 0:W]
        coords["lat"] = (("y", "x"), (45.0 - yy + 0.2 * xx).astype(np.float32))  # rotated-like grid
        coords["lon"] = (("y", "x"), (5.0 + xx + 0.1 * yy).astype(np.float32))
    ds = xr.Dataset(
        {
            "driver": (("week", "var", "lag", "y", "x"), driver.astype(np.uint8)),
            "drought": (("week", "y", "x"), drought.astype(np.uint8)),
            "drought_prob": (("week", "y", "x"), (0.2 + 0.6 * drought).astype(np.float32)),
            "drought_true": (("week", "y", "x"), drought.astype(np.uint8)),
            "valid": (("y", "x"), valid.astype(np.uint8)),
        },
        coords=coords,
    )
    ds.to_netcdf(run / "drivers_test.nc")
    (run / "config.yaml").write_text(yaml.safe_dump({"name": run.name, "dataset": "ERA5_Land", "delta_t": L}))
    (run / "metrics_test.json").write_text(
        json.dumps(
            {
                "drought": {"precision": 0.5, "recall": 0.4, "f1": 0.44, "iou": 0.29, "oa": 0.9},
                "no_drought": {"precision": 0.95, "recall": 0.96, "f1": 0.955, "iou": 0.91, "oa": 0.9},
            }
        )
    )
    return run


def make_weekly(
    root: Path, weeks: list[str], names: list[str], dims: tuple[str, str], H: int = 6, W: int = 7
) -> Path:
    """Weekly climate files <root>/<YYYY>/<YYYY><WWW>.nc with (statistic, <y>, <x>) variables."""
    rng = np.random.default_rng(1)
    for week in weeks:
        (root / week[:4]).mkdir(parents=True, exist_ok=True)
        lat, lon = np.meshgrid(np.linspace(40, 46, H), np.linspace(0, 8, W), indexing="ij")  # south-to-north
        ds = xr.Dataset(
            {
                n: (("statistic",) + dims, rng.normal(280, 5, size=(2, H, W)).astype(np.float32))
                for n in names
            },
            coords={
                "statistic": ["mean", "std"],
                dims[0]: np.linspace(-3, 3, H),
                dims[1]: np.linspace(-4, 4, W),
                "lat": (dims, lat),
                "lon": (dims, lon),
            },
        )
        ds.to_netcdf(root / week[:4] / f"{week}.nc")
    return root


def make_noaa(root: Path, week: str, H: int = 6, W: int = 7, n_files: int = 2) -> Path:
    rng = np.random.default_rng(2)
    (root / week[:4]).mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        vci = rng.uniform(0, 100, (H, W)).astype(np.float32)
        vci[0, 0] = -999.0  # fill value -> missing
        ds = xr.Dataset(
            {
                "VCI": (("rlat", "rlon"), vci),
                "TCI": (("rlat", "rlon"), rng.uniform(0, 60, (H, W)).astype(np.float32)),
                "VHI": (("rlat", "rlon"), rng.uniform(0, 100, (H, W)).astype(np.float32)),
                "mask_cold_surface": (("rlat", "rlon"), (rng.random((H, W)) < 0.1).astype(np.uint8)),
            },
            coords={"rlat": np.linspace(-3, 3, H), "rlon": np.linspace(-4, 4, W)},
        )
        ds.to_netcdf(root / week[:4] / f"VHP.G04.C07.n{k}.P{week}.VH.nc")
    masks = xr.Dataset(
        {
            "lsm": (("rlat", "rlon"), np.ones((H, W), np.float32)),
            "mask_no_vegetation": (("rlat", "rlon"), np.zeros((H, W), np.uint8)),
        }
    )
    masks["lsm"][:, -1] = 0.0
    masks.to_netcdf(root / "EUR-11_masks.nc")
    return root


def _pngs(paths) -> None:
    paths = list(paths)
    assert paths
    for p in paths:
        p = Path(p)
        assert p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p


# ------------------------------------------------------------------------------ hand-made frequency


def _hand_real_run(tmp_path: Path) -> Path:
    """4x4 grid, 2 vars, 2 lags, 3 weeks; region box rows 0-1, cols 0-1 with pixel (1,1) invalid."""
    drv = np.zeros((3, 2, 2, 4, 4), np.uint8)
    drought = np.zeros((3, 4, 4), np.uint8)
    valid = np.ones((4, 4), np.uint8)
    valid[1, 1] = 0
    drought[0, 0, 0] = drought[0, 0, 1] = 1  # week 0: 2 of 3 valid region pixels
    drought[0, 1, 1] = 1  # invalid: not counted
    drought[2, 1, 0] = 1  # week 2: 1 of 3
    drv[0, 0, 0, 0, 0] = drv[0, 0, 0, 0, 1] = drv[0, 0, 0, 1, 1] = 1  # var0 lag0: 2 valid + 1 invalid
    drv[0, 1, 0, 3, 3] = 1  # var1 lag0: outside the region
    drv[0, 1, 1, 0:2, 0:2] = 1  # var1 lag1: all region pixels
    drv[1] = 1  # week 1 never selected
    drv[2, 0, 0, 1, 0] = 1  # week 2 var0 lag0: 1 pixel
    return make_real_run(tmp_path / "hand", drv, drought, valid, ["2021001", "2021002", "2021003"])


def test_frequency_hand_made_real(tmp_path):
    run = load_run(_hand_real_run(tmp_path))
    region = box_region(run.shape, 0, 2, 0, 2)
    f = regional_frequency.regional_frequency(run, region, share=0.5)
    assert f.weeks == ["2021001"]
    np.testing.assert_allclose(f.table, [[2 / 3, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(f.per_variable, [2 / 6, 3 / 6])
    assert f.maps.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(f.maps[0, 0], [[1, 1], [0, np.nan]])  # invalid pixel: no data
    f = regional_frequency.regional_frequency(run, region, share=0.25)
    assert f.weeks == ["2021001", "2021003"]
    np.testing.assert_allclose(f.table, [[3 / 6, 0.0], [0.0, 3 / 6]])
    f = regional_frequency.regional_frequency(run, region, share=0.25, period=(2021002, 2021003))
    assert f.weeks == ["2021003"]
    # the convenience function and the CSV agree with the table
    table = regional_frequency.frequency_table(tmp_path / "hand", (0, 2, 0, 2), share=0.5)
    np.testing.assert_allclose(table, [[2 / 3, 0.0], [0.0, 1.0]])


def test_frequency_hand_made_synthetic(tmp_path):
    """Synthetic: lag k of target t = driver at t - k; lags before the split start are not counted."""
    drv = np.zeros((1, 4, 2, 2), np.uint8)
    drv[0, 0, 0, 0] = 1  # time 0: 1 flag
    drv[0, 1] = 1  # time 1: 4 flags (its target is not selected)
    drv[0, 2, 1, 1] = 1  # time 2: 1 flag
    drv[0, 3, 0, :] = 1  # time 3: 2 flags
    ext = np.zeros((4, 2, 2), np.uint8)
    ext[0] = ext[3] = 1
    path = make_synthetic_run(tmp_path / "syn", drv, ext, [101, 102, 103, 104], delta_t=2)
    run = load_run(path)
    f = regional_frequency.regional_frequency(run, Region(np.ones((2, 2), bool), "all"), share=1.0)
    assert f.weeks == ["101", "104"]
    np.testing.assert_allclose(f.table, [[3 / 8, 1 / 4]])
    np.testing.assert_allclose(f.per_variable, [4 / 12])


def test_polygon_regions(tmp_path):
    run = load_run(_hand_real_run(tmp_path))
    grid_csv = tmp_path / "grid.csv"
    grid_csv.write_text("x,y\n-0.5,-0.5\n1.5,-0.5\n1.5,1.5\n-0.5,1.5\n")
    assert polygon_region(grid_csv, run.shape, run.lat, run.lon).mask.sum() == 4
    lat, lon = float(run.lat[0, 0]), float(run.lon[0, 0])
    gj = tmp_path / "p.geojson"
    ring = [[lon - 0.3, lat - 0.3], [lon + 0.3, lat - 0.3], [lon + 0.3, lat + 0.3], [lon - 0.3, lat + 0.3]]
    gj.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "Polygon", "coordinates": [ring + ring[:1]]},
                    }
                ],
            }
        )
    )
    mask = polygon_region(gj, run.shape, run.lat, run.lon).mask
    assert mask.sum() == 1 and mask[0, 0]


# ------------------------------------------------------------------------------ scripts end to end


def test_plot_synthetic(tmp_path):
    folder = make_cube(tmp_path / "syn")
    out = tmp_path / "figs"
    paths = plot_synthetic.main(["--path", str(folder), "--times", "3", "14", "--n", "2", "--out", str(out)])
    _pngs(paths)
    assert len(paths) == 3 and any("pixel" in p.name for p in paths)
    with pytest.raises(SystemExit):
        plot_synthetic.main(["--path", str(folder), "--variables", "var_99", "--out", str(out)])


def test_plot_era5_land_cerra_noaa(tmp_path):
    era = make_weekly(
        tmp_path / "ERA5-Land" / "EUR-11", ["2021001", "2021002"], ["t2m", "tp"], ("rlat", "rlon")
    )
    noaa = make_noaa(tmp_path / "NOAA" / "EUR-11", "2021001")
    out = tmp_path / "figs"
    _pngs(
        plot_era5_land.main(
            [
                "--root",
                str(era),
                "--weeks",
                "2021001",
                "--variables",
                "t2m",
                "tp",
                "--statistic",
                "mean",
                "std",
                "--noaa_root",
                str(noaa),
                "--out",
                str(out),
            ]
        )
    )
    cerra = make_weekly(tmp_path / "CERRA", ["2021005"], ["t2m", "vsw"], ("y", "x"))
    _pngs(plot_cerra.main(["--root", str(cerra), "--period", "2021", "2021", "--out", str(out)]))
    _pngs(plot_noaa.main(["--root", str(noaa), "--weeks", "2021001", "--out", str(out)]))
    with pytest.raises(SystemExit):
        plot_era5_land.main(["--root", str(era), "--weeks", "2020001", "--out", str(out)])


@pytest.fixture()
def synthetic_run(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    V, T, H, W = 3, 12, 8, 9
    truth = np.zeros((V, T, H, W), np.uint8)
    truth[1, 3:7, 2:5, 2:6] = 1
    drv = truth.copy()
    drv[1, 3, 2:5, 2:4] = 0
    drv |= (rng.random((V, T, H, W)) < 0.03).astype(np.uint8)
    ext = np.zeros((T, H, W), np.uint8)
    ext[7, 2:5, 2:6] = 1
    return make_synthetic_run(
        tmp_path / "run_syn", drv, ext, list(range(100, 100 + T)), delta_t=3, truth=truth
    )


@pytest.fixture()
def real_run(tmp_path) -> Path:
    rng = np.random.default_rng(4)
    N, V, L, H, W = 4, 2, 3, 7, 8
    drv = (rng.random((N, V, L, H, W)) < 0.2).astype(np.uint8)
    drought = np.zeros((N, H, W), np.uint8)
    drought[1, 1:4, 1:5] = 1
    valid = np.ones((H, W), np.uint8)
    valid[:, -1] = 0
    return make_real_run(tmp_path / "run_real", drv, drought, valid, [f"2021{w:03d}" for w in range(20, 24)])


def test_driver_maps_and_frequency_cli(synthetic_run, real_run, tmp_path):
    out = tmp_path / "out"
    _pngs(driver_maps.main(["--run", str(synthetic_run), "--n", "1", "--out", str(out)]))
    _pngs(
        driver_maps.main(
            ["--run", str(real_run), "--weeks", "2021021", "--variables", "tp", "--out", str(out)]
        )
    )
    files = regional_frequency.main(
        ["--run", str(synthetic_run), "--box", "2", "5", "2", "6", "--out", str(out)]
    )
    _pngs([files["bars"], files["maps"]])
    assert files["csv"].read_text().splitlines()[0].startswith("variable,lag_0")
    assert files["csv_true"].is_file()
    files = regional_frequency.main(
        [
            "--run",
            str(real_run),
            "--lat_min",
            "40",
            "--lat_max",
            "46",
            "--lon_min",
            "5",
            "--lon_max",
            "10",
            "--share",
            "0.2",
            "--out",
            str(out),
        ]
    )
    _pngs([files["bars"], files["maps"]])
    rows = files["csv"].read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("t2m,")


def test_report(synthetic_run, real_run, tmp_path):
    html_syn = report.main(
        [
            "--run",
            str(synthetic_run),
            "--n",
            "1",
            "--box",
            "2",
            "5",
            "2",
            "6",
            "--out",
            str(tmp_path / "syn.html"),
        ]
    )
    text = html_syn.read_text()
    assert "data:image/png;base64," in text and "Naive" in text and "65.00" in text
    html_real = report.main(["--run", str(real_run), "--n", "0", "--out", str(tmp_path / "real.html")])
    assert "drought" in html_real.read_text()
    from scripts.render_report import find_browser, render

    if find_browser() is None:
        pytest.skip("chromium not installed: rendering not checked")
    png = render(html_syn, tmp_path / "syn.png", 1000, 1400)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_run_reader_variants(tmp_path):
    """rlat/rlon dims, per-week valid masks, latitude/longitude names, lag weeks wrapping the year."""
    N, V, L, H, W = 2, 2, 3, 4, 5
    ds = xr.Dataset(
        {
            "driver": (("week", "var", "lag", "rlat", "rlon"), np.ones((N, V, L, H, W), np.uint8)),
            "drought": (("week", "rlat", "rlon"), np.ones((N, H, W), np.uint8)),
            "valid": (("week", "rlat", "rlon"), np.ones((N, H, W), np.uint8)),
        },
        coords={
            "week": ["2022001", "2022002"],
            "var": ["t2m", "tp"],
            "latitude": (("rlat", "rlon"), np.zeros((H, W))),
            "longitude": (("rlat", "rlon"), np.zeros((H, W))),
        },
    )
    (tmp_path / "r").mkdir()
    ds.to_netcdf(tmp_path / "r" / "drivers_val.nc")
    run = load_run(tmp_path / "r", "val")
    assert run.kind == "real" and run.valid.shape == (N, H, W) and run.lat.shape == (H, W)
    assert run.lag_labels(0) == ["2022001", "2021052", "2021051"]
    assert run.window(1).shape == (V, L, H, W)
    with pytest.raises(FileNotFoundError, match="drivers_test.nc"):
        load_run(tmp_path / "r", "test")
