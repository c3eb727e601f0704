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


# ------------------------------------------------------------------------------ the data behind the figures


def _target_run(tmp_path: Path, target: bool = True, prob: bool = True) -> Path:
    """A synthetic drivers file as the test script writes it: 12 weeks 131..142, delta_t 4."""
    from utils.predictions import write_driver_predictions

    T, H, W = 12, 4, 5
    ext_true = np.zeros((T, H, W), np.uint8)
    ext_true[1, :2] = 1  # a true extreme in week 132: no sample predicts it (not a target)
    ext_true[6, :, :3] = 1
    p = np.full((T, H, W), np.nan, np.float32)
    p[3:] = 0.1
    p[6, :, :2] = 0.9
    run = tmp_path / "targets"
    write_driver_predictions(
        run / "drivers_test.nc",
        driver=np.zeros((2, T, H, W)), driver_true=np.zeros((2, T, H, W)),
        extreme_prob=p if prob else None, extreme_true=ext_true, var_names=["var_01", "var_02"],
        time_labels=range(131, 131 + T), y=range(H), x=range(W),
        target=(np.arange(T) >= 3) if target else None,
    )
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "targets", "delta_t": 4, "encoder": "CNN_3D"}))
    return run


@pytest.mark.parametrize("variant", ["target", "prob_only", "drivers_only"])
def test_report_counts_only_target_weeks(tmp_path, figures, variant):
    """Item 1: the split's first delta_t - 1 weeks are never targets; they are neither drawn nor named."""
    run_dir = _target_run(tmp_path, target=variant == "target", prob=variant != "drivers_only")
    run = load_run(run_dir, "test")
    assert run.targets == list(range(3, 12))
    labels, pred, true = report.extreme_counts(run)
    assert labels == [str(t) for t in range(134, 143)]
    np.testing.assert_array_equal(true, [0, 0, 0, 12, 0, 0, 0, 0, 0])
    if variant == "drivers_only":
        assert pred is None
    else:
        np.testing.assert_array_equal(pred, [0, 0, 0, 8, 0, 0, 0, 0, 0])
    page = report.build_report(run_dir, "test", tmp_path / "r.html", n=1).read_text()
    assert "9 target weeks 134 .. 142" in page and "first 3 weeks 131..133 are not targets" in page
    counts = next(f for f in figures if f.axes[0].get_xlabel() == "target week")
    drawn = {line.get_label(): line for line in counts.axes[0].lines}
    np.testing.assert_array_equal(drawn["true"].get_ydata(), true)
    assert len(drawn["true"].get_xdata()) == 9
    assert report.pick_targets(run, 1) == [6]  # driver maps: a target week, not week 132


def test_pixel_legend_swatches_match_the_spans(tmp_path, figures):
    """Item 3: each legend swatch has the colour and alpha of the span it names."""
    from matplotlib.colors import to_rgba

    folder = make_cube(tmp_path / "syn")
    with xr.open_dataset(folder / "datacube_exp1.nc") as cube:  # a driver pixel with a random anomaly
        anomalies = cube["anomaly"].values[:, 2:14].any(axis=(0, 1))
    y, x = (int(v) + o for v, o in zip(np.argwhere(anomalies[2:5, 3:7])[0], (2, 3)))
    plot_synthetic.main(["--path", str(folder), "--times", "3", "14", "--n", "1", "--pixel", str(y), str(x),
                         "--out", str(tmp_path / "f")])
    fig = next(f for f in figures if "pixel" in f._suptitle.get_text())
    swatches = {h.get_label(): h.get_facecolor() for h in fig.axes[0].get_legend().legend_handles}
    spans: dict[str, tuple] = {}
    for ax in fig.axes:
        for patch in ax.patches:
            spans.setdefault(patch.get_label().lstrip("_"), patch.get_facecolor())
    assert {"extreme", "random anomaly", "driver"} <= set(spans)
    for kind, color in spans.items():
        np.testing.assert_allclose(swatches[kind], color)
        assert color[3] < 1  # the spans are translucent, and so are their swatches
    assert not np.allclose(to_rgba(swatches["driver"]), to_rgba(swatches["random anomaly"]))


def _image(ax) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)


def test_every_map_counts_rows_from_the_north(tmp_path, figures):
    """Item 4: files stored south-to-north are drawn with row 0 = north, like --box and the run files."""
    from dataset.real_common import rows_south_to_north
    from vis.common import COL_LABEL, ROW_LABEL

    H, W = 6, 7
    root = tmp_path / "ERA5-Land" / "EUR-11" / "2021"
    root.mkdir(parents=True)
    lat = np.linspace(40, 46, H)  # south-to-north, the published order
    t2m = np.zeros((2, H, W), np.float32)
    t2m[0, -1, :] = 1.0  # the northernmost row (last in the file)
    xr.Dataset(
        {"t2m": (("statistic", "rlat", "rlon"), t2m)},
        coords={"statistic": ["mean", "std"], "rlat": lat - 43, "rlon": np.arange(W, dtype=float),
                "lat": (("rlat", "rlon"), np.repeat(lat[:, None], W, 1)),
                "lon": (("rlat", "rlon"), np.repeat(np.arange(W, dtype=float)[None], H, 0))},
    ).to_netcdf(root / "2021001.nc")
    noaa = make_noaa(tmp_path / "NOAA" / "EUR-11", "2021001", H, W, n_files=1)
    vci = xr.open_dataset(next((noaa / "2021").glob("*.VH.nc")))["VCI"].values
    plot_era5_land.main(["--root", str(root.parent), "--variables", "t2m", "--out", str(tmp_path / "f")])
    plot_noaa.main(["--root", str(noaa), "--out", str(tmp_path / "f")])
    era_ax, noaa_ax = figures[0].axes[0], figures[1].axes[0]
    np.testing.assert_array_equal(_image(era_ax)[0], 1.0)  # row 0 of the map = northernmost row
    assert era_ax.images[0].origin == "upper" and era_ax.get_ylim()[0] > era_ax.get_ylim()[1]
    assert era_ax.get_ylabel() == ROW_LABEL and era_ax.get_xlabel().startswith(COL_LABEL)
    assert rows_south_to_north(np.linspace(-3, 3, H))  # the NOAA file's rlat increases: flipped too
    expected = vci[::-1].astype(float)
    expected[(expected < 0) | (expected > 100)] = np.nan
    shown = _image(noaa_ax)
    ok = np.isfinite(shown)
    np.testing.assert_allclose(shown[ok], expected[ok], rtol=1e-6)
    assert noaa_ax.get_ylabel() == ROW_LABEL


def _shown_ticks(axis) -> list[str]:
    """Tick labels inside the view (matplotlib keeps a few outside it, undrawn)."""
    lo, hi = sorted(axis.get_view_interval())
    return [t.get_text() for t in axis.get_ticklabels() if lo <= t.get_position()[axis.axis_name == "y"] <= hi]


def test_box_maps_have_integer_ticks_of_the_full_grid(synthetic_run, tmp_path, figures):
    """Items 4 and 5: a --box map is labelled with the rows/columns --box took, as integers."""
    regional_frequency.main(["--run", str(synthetic_run), "--box", "2", "4", "2", "6", "--out", str(tmp_path)])
    fig = figures[-1]  # the per-pixel maps (after the bar chart)
    assert len([ax for ax in fig.axes if ax.images]) >= 3 * 3
    for ax in fig.axes:
        if not ax.images or ax.get_label() == "<colorbar>":
            continue
        rows, cols = _shown_ticks(ax.yaxis), _shown_ticks(ax.xaxis)
        assert rows and all(r.isdigit() for r in rows), rows  # no 0.0, 2.5, ...
        assert {int(r) for r in rows} <= {2, 3} and {int(c) for c in cols} <= {2, 3, 4, 5}


def test_driver_map_lag_columns_are_evenly_spaced(synthetic_run, tmp_path, figures):
    """Item 6: lag 0 and lag 1 have the same width and spacing as every other lag column."""
    import yaml as _yaml

    cfg = _yaml.safe_load((synthetic_run / "config.yaml").read_text())
    cfg["delta_t"] = 8
    (synthetic_run / "config.yaml").write_text(_yaml.safe_dump(cfg))
    driver_maps.main(["--run", str(synthetic_run), "--times", "108", "--out", str(tmp_path)])
    fig = figures[0]
    grid = [ax for ax in fig.axes if ax.get_title().startswith("lag ")]
    assert len(grid) == 8
    boxes = sorted((ax.get_position().x0, ax.get_position().x1) for ax in grid)
    widths = [x1 - x0 for x0, x1 in boxes]
    gaps = [b[0] - a[1] for a, b in zip(boxes, boxes[1:])]
    assert max(widths) - min(widths) < 1e-3 and max(gaps) - min(gaps) < 1e-3, (widths, gaps)


def test_vhi_rule_is_the_labels(tmp_path):
    """Item 7: the NOAA figures and the labels compute a week's VHI the same way (per file, then nanmean)."""
    from dataset.noaa import read_noaa_week as label_week
    from dataset.real_samples import Crop
    from dataset.sample_tree import noaa_name, write_noaa
    from vis.weekly import read_noaa_week as figure_week

    H, W = 3, 4
    folder = tmp_path / "2016"
    vci_a, tci_a = np.full((H, W), 50.0), np.full((H, W), 40.0)
    vci_b, tci_b = np.full((H, W), 20.0), np.full((H, W), 30.0)
    vci_a[0, 0] = -999.0  # missing in one file only
    cold = np.zeros((H, W), bool)
    files = [folder / noaa_name(2016, 10, "n19"), folder / noaa_name(2016, 10, "npp")]
    write_noaa(files[0], vci_a, tci_a, cold, ("rlat", "rlon"))
    write_noaa(files[1], vci_b, tci_b, cold, ("rlat", "rlon"))
    label = label_week(files, Crop.from_options((H, W), 0, W, 0, H, 1, True, "test"), 0.5).vhi
    figure = figure_week(files, 0.5)["VHI"]
    np.testing.assert_allclose(figure, label)
    assert figure[H - 1, 0] == pytest.approx(25.0)  # file b alone (file a has no VCI there); north-up row
    assert figure[0, 1] == pytest.approx(35.0)  # (45 + 25) / 2


def test_one_spatial_dimension_rule():
    """Item 7: run files and weekly files find their grid dimensions with the same function."""
    from vis import common, runs, weekly

    assert runs._spatial_dims is common.spatial_dims and weekly.spatial_dims is common.spatial_dims
    for dims in common.SPATIAL_DIMS:
        da = xr.DataArray(np.zeros((2, 3, 4)), dims=("week", *dims), name="v")
        assert common.spatial_dims(da) == dims
    with pytest.raises(ValueError, match="expected spatial dims"):
        common.spatial_dims(xr.DataArray(np.zeros((2, 2)), dims=("a", "b"), name="v"), "f.nc")


def test_paper_table_is_the_same_in_the_report_and_the_test_script(synthetic_run):
    """test_synthetic.py prints and vis.report renders the same rows (utils.tables)."""
    import re

    from dataset.families.synthetic import SyntheticFamily
    from utils.tables import method_label, paper_rows

    run = load_run(synthetic_run)
    rows = paper_rows(run.metrics, method_label(run.config))
    printed = SyntheticFamily().report(method_label(run.config), run.metrics).splitlines()
    html_rows = re.findall(r"<tr>(.*?)</tr>", report.paper_table(run))[1:]
    assert len(html_rows) == len(rows) == 2 and rows[0][0] == "Naive" and rows[1][0] == "IDE (Swin_3D)"
    for (label, values), line, cells in zip(rows, printed[2:], html_rows):
        expected = [f"{100 * v:.2f}" if v is not None else None for v in values]
        md = [c.strip() for c in line.strip("|").split("|")]
        td = re.findall(r"<td[^>]*>(.*?)</td>", cells)
        assert md[0] == td[0] == label
        for e, a, b in zip(expected, md[1:], td[1:]):
            assert (a == b == e) if e is not None else (a in "-–" and b in "-–")


def test_report_is_not_replaced_without_overwrite(synthetic_run, tmp_path, capsys):
    """A second ``vis.report`` into the same file stops with one line (exit 2) and keeps the old report;
    ``--overwrite`` replaces it."""
    out = tmp_path / "r.html"
    args = ["--run", str(synthetic_run), "--n", "0", "--out", str(out)]
    report.main(args)
    out.write_text("an earlier report")
    with pytest.raises(SystemExit) as ended:
        from vis.common import run_main

        run_main(lambda: report.main(args))
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: option 'out': {out} exists; pass --overwrite to replace it"
    assert out.read_text() == "an earlier report"
    assert "<!DOCTYPE html>" in report.main([*args, "--overwrite"]).read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_figures_are_redrawn_in_place_and_say_so(tmp_path, capsys):
    """Figures are regenerated in their folder (rerun a plot with other options), never silently."""
    import matplotlib.pyplot as plt

    from vis.common import save

    path = tmp_path / "f.png"
    save(plt.figure(), path)
    assert "replacing" not in capsys.readouterr().err
    save(plt.figure(), path)
    assert capsys.readouterr().err.strip() == f"replacing {path}"
