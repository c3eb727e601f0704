"""The synthetic benchmark generator: format, coverage, drivers, values, statistics, determinism."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

from dataset import synthetic_events as se
from dataset.generate_synthetic import (
    build,
    generate,
    halo_classes,
    main,
    resolve,
    var_name,
)
from dataset.generator_params import EXTREME_COLUMN, WEEKS


@pytest.fixture(scope="module")
def tiny_cube():
    return build(resolve("tiny", seed=3), keep_noise=True)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return generate("tiny", tmp_path_factory.mktemp("gen") / "tiny", seed=3)


def _open(path):
    return xr.open_dataset(path, decode_times=False)


# ---------------------------------------------------------------------------- format


def test_var_names():
    assert [var_name(i) for i in (1, 9, 10, 11)] == ["var_01", "var_09", "var10", "var11"]


def test_file_format(tiny_dir):
    p = resolve("tiny")
    names = [f"var_0{i}" for i in range(1, 7)]
    assert sorted(f.name for f in tiny_dir.iterdir()) == [
        "climatology_tiny.nc",
        "coupling_matrix_tiny.npy",
        "datacube_tiny.nc",
        "statistic_tiny.json",
    ]
    with _open(tiny_dir / "datacube_tiny.nc") as ds:
        assert dict(ds.sizes) == {"time": p.n_weeks, "y": p.height, "x": p.width, "var": 6}
        assert ds.time.dtype == np.int32 and ds.time.values[0] == 1 and ds.time.values[-1] == p.n_weeks
        assert "units" not in ds.time.attrs
        assert [str(v) for v in ds["var"].values] == names
        for n in names:
            assert ds[n].dims == ("time", "y", "x") and ds[n].dtype == np.float32
        for n in ("anomaly", "anomaly_extreme"):
            assert ds[n].dims == ("var", "time", "y", "x") and ds[n].dtype == np.uint8
        assert ds.extreme.dims == ("time", "y", "x") and set(np.unique(ds.extreme.values)) == {0, 1, 2, 3}
        for n in ("latitude", "longitude"):
            assert ds[n].dims == ("y", "x") and ds[n].dtype == np.float32
        assert (ds.attrs["times_train"], ds.attrs["times_val"], ds.attrs["times_test"]) == (
            "1 104",
            "105 130",
            "131 156",
        )
        assert ds.attrs["seed"] == "3"
    with netCDF4.Dataset(tiny_dir / "datacube_tiny.nc") as nc:  # raw: no fill value or scaling on masks
        assert nc.data_model == "NETCDF4"
        for n in ("anomaly", "anomaly_extreme", "extreme"):
            assert nc[n].dtype == np.uint8 and not set(nc[n].ncattrs()) & {"_FillValue", "scale_factor"}
    with _open(tiny_dir / "climatology_tiny.nc") as cl:
        assert [str(v) for v in cl.climatology.values] == ["min", "max", "mean", "median", "std"]
        assert list(cl.time.values) == list(range(1, 53))
        assert cl["var_01"].dims == ("climatology", "time", "y", "x") and cl["var_01"].dtype == np.float32
    cm = np.load(tiny_dir / "coupling_matrix_tiny.npy")
    assert cm.dtype == np.uint8 and cm.shape == (6, 14)


def test_eleven_variables_naming(tmp_path):
    out = generate("tiny", tmp_path / "eleven", n_vars=11, n_independent=4, var_drop=(1,), height=6, width=6)
    with _open(out / "datacube_eleven.nc") as ds:
        assert [str(v) for v in ds["var"].values][8:] == ["var_09", "var10", "var11"]
        assert "var10" in ds.data_vars and ds.anomaly.sizes["var"] == 11


# ---------------------------------------------------------------------------- structure


def test_extreme_coverage_at_paper_density():
    """Mean over seeds on a mid-size cube: class 1 ~1.0-1.3 %, each halo class ~0.4 %."""
    grid = se.Grid(520, 100, 100)
    cov = []
    for seed in range(3):
        ext1 = np.zeros((grid.T, grid.H, grid.W), np.uint8)
        se.paint_set(ext1, se.EXTREMES, grid, 1.0, np.random.default_rng(seed))
        cls = halo_classes(ext1)
        cov.append([100 * np.mean(cls == c) for c in (1, 2, 3)])
    c1, c2, c3 = np.mean(cov, axis=0)
    assert 0.95 <= c1 <= 1.35, cov
    assert 0.33 <= c2 <= 0.48 and 0.33 <= c3 <= 0.48, cov


@pytest.mark.parametrize("sset,target", [(0, 1.9), (1, 0.45), (2, 1.8)])
def test_random_anomaly_coverage(sset, target):
    grid = se.Grid(520, 100, 100)
    cov = []
    for seed in range(2):
        m = np.zeros((grid.T, grid.H, grid.W), np.uint8)
        se.paint_set(m, se.ANOMALY_SETS[sset], grid, 1.0, np.random.default_rng(seed))
        cov.append(100 * m.mean())
    assert abs(np.mean(cov) - target) <= 0.3 * target, cov


def test_halo_classes_are_temporal_dilation():
    ext1 = np.zeros((9, 2, 1), np.uint8)
    ext1[4, 0, 0] = 1
    ext1[0, 1, 0] = 1
    cls = halo_classes(ext1)
    assert cls[:, 0, 0].tolist() == [0, 0, 3, 2, 1, 2, 3, 0, 0]
    assert cls[:, 1, 0].tolist() == [1, 2, 3, 0, 0, 0, 0, 0, 0]


def test_coupling_matrix(tiny_cube):
    cm = tiny_cube.coupling
    assert not cm[0].any() and not cm[4].any()  # var_drop 1 and 5 (1-based)
    for v in (1, 2, 3, 5):
        ones = np.flatnonzero(cm[v])
        assert 2 <= len(ones) <= 14 and np.all(np.diff(ones) == 1)


def test_drivers_only_at_coupled_offsets(tiny_cube):
    c = tiny_cube
    T = c.extreme.shape[0]
    tt, yy, xx = np.nonzero(c.extreme == 1)
    for v in range(c.coupling.shape[0]):
        want = np.zeros_like(c.drivers[v])
        for k in np.flatnonzero(c.coupling[v]):
            t = tt + k - EXTREME_COLUMN
            ok = (t >= 0) & (t < T)
            want[t[ok], yy[ok], xx[ok]] = 1
        np.testing.assert_array_equal(c.drivers[v], want, err_msg=f"variable {v + 1}")
    assert not c.drivers[0].any() and not c.drivers[4].any()


def test_every_split_has_extremes_and_drivers(tiny_cube):
    p = tiny_cube.params
    for a, b in (p.times_train, p.times_val, p.times_test):
        assert (tiny_cube.extreme[a - 1 : b] == 1).any()
        assert tiny_cube.drivers[:, a - 1 : b].any()


def test_random_anomalies(tiny_cube):
    c = tiny_cube
    assert not (c.anomaly & c.drivers).any()  # a driver is never also a random anomaly
    ind = c.anomaly[0] | c.anomaly[1] | c.anomaly[2]
    ind_or_drv = ind | c.drivers[0] | c.drivers[1] | c.drivers[2]
    for v in (3, 4, 5):  # dependent variables: union of the independent ones (less their own drivers)
        lower, upper = ind & (1 - c.drivers[v]), ind_or_drv & (1 - c.drivers[v])
        assert np.all(c.anomaly[v] >= lower) and np.all(c.anomaly[v] <= upper)
        assert c.anomaly[v].any()


def test_value_formula(tiny_cube):
    c = tiny_cube
    p = c.params
    T, H, W = p.shape
    week = np.arange(T) % WEEKS
    kb = kn = ks = (0.35, 0.35, 0.9, 0.35, 0.35, 0.35)
    sign = (1, 1, -1, -1, -1, -1)
    for v in range(6):
        B = np.broadcast_to(c.bases[v], (WEEKS, H, W))[week].astype(np.float64)
        N = c.noise[v].astype(np.float64)
        sd = N.std()
        assert c.noise_std[v] == pytest.approx(sd, rel=1e-6)
        X = c.values[v].astype(np.float64)
        an, dr = c.anomaly[v] == 1, c.drivers[v] == 1
        normal = ~an & ~dr
        theta = B * (2 ** kb[v] - 1) + N * 2 ** kn[v] + sd * ks[v]
        np.testing.assert_allclose(X[normal], (B + N)[normal], atol=1e-5)
        np.testing.assert_allclose(X[an], (2 ** kb[v] * B + 2 ** kn[v] * N + ks[v] * sd)[an], atol=1e-5)
        np.testing.assert_allclose(X[dr], (B + sign[v] * np.abs(theta))[dr], atol=1e-5)


def test_bases_and_noise_levels(tiny_cube):
    c = tiny_cube
    H = c.params.height
    grad = np.arange(H) / H - 0.5
    t = np.arange(WEEKS)
    np.testing.assert_allclose(c.bases[0][:, :, 0], 3 * np.sin(2 * np.pi * t / 52)[:, None] + grad, atol=1e-6)
    np.testing.assert_allclose(c.bases[1][:, :, 0], 3 * np.cos(2 * np.pi * t / 52)[:, None] + grad, atol=1e-6)
    np.testing.assert_allclose(c.bases[2][:, :, 0], np.broadcast_to(grad, (WEEKS, H)), atol=1e-6)
    for v, sigma in enumerate((0.2, 0.08, 0.07, 0.065, 0.065, 0.065)):
        assert c.noise[v].std() == pytest.approx(sigma, rel=0.05)
    red = c.noise[0][:, 0, 0].astype(np.float64)  # 1/f: low frequencies carry more power
    spec = np.abs(np.fft.rfft(red)) ** 2
    assert spec[1:8].mean() > 3 * spec[-20:].mean()


def test_file_values_match_cube(tiny_cube, tiny_dir):
    with _open(tiny_dir / "datacube_tiny.nc") as ds:
        for v, n in enumerate(tiny_cube.params.names):
            np.testing.assert_array_equal(ds[n].values, tiny_cube.values[v])
        np.testing.assert_array_equal(ds.anomaly_extreme.values, tiny_cube.drivers)
        np.testing.assert_array_equal(ds.anomaly.values, tiny_cube.anomaly)
        np.testing.assert_array_equal(ds.extreme.values, tiny_cube.extreme)


# ---------------------------------------------------------------------------- statistics


def test_climatology_and_statistics(tiny_dir):
    a, b = 1, 104
    stats = json.loads((tiny_dir / "statistic_tiny.json").read_text())
    assert set(stats) == {"min", "max", "mean", "median", "std"}
    with _open(tiny_dir / "datacube_tiny.nc") as ds, _open(tiny_dir / "climatology_tiny.nc") as cl:
        for n in ("var_01", "var_04"):
            x = ds[n].sel(time=slice(a, b)).values.astype(np.float64)
            for s, fn in (
                ("min", np.min),
                ("max", np.max),
                ("mean", np.mean),
                ("median", np.median),
                ("std", np.std),
            ):
                assert float(stats[s][n]) == pytest.approx(fn(x), rel=1e-6, abs=1e-6)
            times = np.arange(a, b + 1)
            for w in (0, 17, 51):
                sel = x[(times - 1) % 52 == w]
                for s, fn in (
                    ("min", np.min),
                    ("max", np.max),
                    ("mean", np.mean),
                    ("median", np.median),
                    ("std", np.std),
                ):
                    np.testing.assert_allclose(
                        cl[n].sel(climatology=s).isel(time=w).values, fn(sel, axis=0), rtol=1e-5, atol=1e-5
                    )


# ---------------------------------------------------------------------------- determinism, options


def test_same_seed_same_bytes():
    p = resolve("tiny", seed=11, n_weeks=104, times_train=(1, 52), times_val=(53, 78), times_test=(79, 104))
    c1, c2 = build(p), build(p)
    for a1, a2 in [
        (c1.extreme, c2.extreme),
        (c1.anomaly, c2.anomaly),
        (c1.drivers, c2.drivers),
        (c1.coupling, c2.coupling),
        *zip(c1.values, c2.values),
    ]:
        assert a1.tobytes() == a2.tobytes()
    c3 = build(resolve(p, seed=12))
    assert c3.values[0].tobytes() != c1.values[0].tobytes()


def test_base_climatology_option(tiny_dir):
    clim = tiny_dir / "climatology_tiny.nc"
    p = resolve(
        "tiny",
        n_vars=3,
        var_drop=(),
        height=8,
        width=8,
        base_climatology=str(clim),
        base_variables=("var_01", "var_03"),
    )
    c = build(p)
    assert c.params.n_independent == 2 and len(c.values) == 3
    with _open(clim) as cl:
        src = cl["var_03"].sel(climatology="mean").values.astype(np.float64)[:, 1::2, 1::2]  # nearest 16 -> 8
    np.testing.assert_allclose(c.bases[1], (src - src.mean()) / src.std(), atol=1e-5)
    assert "climatology:var_03" in c.attrs["bases"]


def test_cli_errors(tmp_path, capsys):
    assert main(["--preset", "tiny", "--out", str(tmp_path / "x"), "--var_drop", "9"]) == 2
    assert "--var_drop" in capsys.readouterr().err
    assert main(["--preset", "tiny", "--out", str(tmp_path / "x"), "--times_test", "131", "999"]) == 2
    assert main(["--preset", "tiny", "--out", str(tmp_path / "x"), "--base_climatology", "nope.nc"]) == 2


def test_scaling_keeps_at_least_one_pixel():
    grid = se.Grid(52, 2, 2)
    m = np.zeros((52, 2, 2), np.uint8)
    se.paint_cubes(m, 5, se.EXTREMES, grid, np.random.default_rng(0))
    se.paint_gaussians(m, 5, se.EXTREMES, grid, np.random.default_rng(1))
    assert m.any()
    assert se.event_counts(se.EXTREMES, se.Grid(2392, 200, 200), 1.0, np.random.default_rng(0)) == {
        "cubes": 200,
        "walks": 1100,
        "local": 2600,
        "gaussian": 340,
        "onset": 25,
    }


def test_event_scale_window_keeps_paper_sizes_and_coverage(tmp_path, capsys):
    """event_scale 1.0: a 32 x 32 window of a paper-size field, not the paper field shrunk to 32 px."""
    shrunk, window = se.Grid(1040, 32, 32), se.Grid(1040, 32, 32, 1.0)
    assert shrunk.space_scale == pytest.approx(0.16) and shrunk.window_pad() == 0
    assert window.space_scale == 1.0 and window.window_pad() == 17  # the widest half-size, cube_half_px 17
    widest: dict[float | None, int] = {}
    cov = []
    for grid in (shrunk, window):
        rng, widest[grid.scale] = np.random.default_rng(0), 0
        for _ in range(20):  # one cube at a time; its longest painted row is its width
            m = np.zeros((grid.T, grid.H, grid.W), np.uint8)
            se.paint_cubes(m, 1, se.EXTREMES, grid, rng)
            widest[grid.scale] = max(widest[grid.scale], int(m.reshape(-1, grid.W).sum(axis=1).max()))
    assert widest[None] <= 2 * round(17 * 0.16) + 1 < widest[1.0]
    for seed in range(6):  # shapes cut by the window's edge still count: coverage stays the paper's
        ext1 = np.zeros((window.T, window.H, window.W), np.uint8)
        se.paint_set(ext1, se.EXTREMES, window, 1.0, np.random.default_rng(seed))
        cov.append(100 * ext1.mean())
    assert 0.8 <= np.mean(cov) <= 1.7, cov
    cube = build(resolve("tiny", seed=1, event_scale=1.0))
    assert cube.attrs["event_scale"].startswith("1 (window")
    assert main(["--preset", "tiny", "--out", str(tmp_path / "x"), "--event_scale", "0"]) == 2
    assert "--event_scale" in capsys.readouterr().err


def test_mismatch_names_the_changed_setting(tiny_dir):
    """The quick start refuses a stale benchmark folder instead of training on other data."""
    from dataset.generate_synthetic import mismatch

    assert mismatch(tiny_dir, resolve("tiny", seed=3)) is None
    msg = mismatch(tiny_dir, resolve("tiny", seed=3, event_scale=0.5))
    assert msg is not None and "event_scale" in msg and "datacube_tiny.nc" in msg
    assert "seed" in mismatch(tiny_dir, resolve("tiny", seed=4))


# ---------------------------------------------------------------------------- published regime


_SPLITS_156 = {"times_train": (1, 104), "times_val": (105, 130), "times_test": (131, 156)}


@pytest.fixture(scope="module")
def published_cube():
    return build(resolve("paper-exp1", seed=2, n_weeks=156, height=24, width=24, **_SPLITS_156), keep_noise=True)


def test_paper_exp1_preset_is_the_published_regime_at_paper_size(published_cube):
    p = resolve("paper-exp1")
    assert (p.event_scale, p.regime, p.base_oscillations) == (1.0, "published", 46.0)
    c = published_cube
    assert c.attrs["regime"] == "published" and c.attrs["base_oscillations"] == "46"
    t = np.arange(156)  # 46 periods over the cube, not a 52-week year
    grad = np.arange(24) / 24 - 0.5
    np.testing.assert_allclose(c.bases[0][:, :, 0], 3 * np.sin(2 * np.pi * t * 46 / 155)[:, None] + grad, atol=1e-5)
    for v in (1, 2, 3, 5):  # published coupling: one block of 2..14 offsets
        ones = np.flatnonzero(c.coupling[v])
        assert 2 <= len(ones) <= 14 and np.all(np.diff(ones) == 1)
    assert abs(float(c.noise[0].std()) - 0.2) < 1e-3  # 3-D red noise, scaled over the whole cube


def test_published_shapes_have_the_published_extents():
    g = se.Grid(60, 80, 80, 1.0)
    rng = np.random.default_rng(0)
    for _ in range(10):  # a box spans [c - h, c + h): even extents 2..34 px, 2..24 weeks
        m = np.zeros((g.T, g.H, g.W), np.uint8)
        se.pub_cubes(m, 1, se.PUBLISHED_EXTREMES, g, rng)
        t, y, x = (np.flatnonzero(m.any(axis=a)) for a in ((1, 2), (0, 2), (0, 1)))
        assert len(t) <= 24 and len(y) <= 34 and len(x) <= 34
    m = np.zeros((g.T, g.H, g.W), np.uint8)
    se.pub_walks(m, 1, se.PUBLISHED_EXTREMES, g, rng)
    assert m.sum() == 126  # start + 125 moves, never revisiting a voxel (room to move in 60 x 80 x 80)
    m[:] = 0
    se.pub_local(m, 5, se.PUBLISHED_EXTREMES, g, rng)
    runs = m.sum(axis=0)
    assert set(np.unique(runs[runs > 0]).tolist()) <= set(range(1, 17))


def test_regime_statistics_by_hand():
    from scripts import compare_generators as cg

    ext = np.zeros((4, 3, 20), np.uint8)
    ext[0:2, 0, 0] = 1  # event 1: 1 px, 2 weeks, 2 voxels
    ext[1, 2, 2:20] = 1  # event 2: 18 px wide, 1 week, 18 voxels
    ext[3, 1, 5] = 2  # a halo voxel is no extreme
    s = cg.event_sizes(ext == 1)
    assert s["events"] == 2 and s["width med"] == 9.5 and s["weeks med"] == 1.5
    assert s[">16px %"] == pytest.approx(100 * 18 / 20)
    anomaly = np.zeros((2, 4, 3, 20), np.uint8)
    drivers = np.zeros_like(anomaly)
    drivers[1, 0, 0, :6] = 1  # variable 2: 6 driver voxels, one of them also in its anomaly mask
    anomaly[1, 0, 0, 5:9] = 1
    z = np.ones((2, 4, 3, 20), np.float32)
    z[1, 0, 0, :6] = -3.0
    r = cg.regime_stats(ext, anomaly, drivers, z, ["a", "b"])
    assert r["ext1 %"] == pytest.approx(100 * 20 / 240) and r["ext1-3 %"] == pytest.approx(100 * 21 / 240)
    assert r["drivers % a"] == 0 and r["drivers % b"] == pytest.approx(100 * 6 / 240)
    assert r["drivers % pooled"] == pytest.approx(100 * 6 / 240)  # only variable b has drivers
    assert r["random % b"] == pytest.approx(100 * 3 / 240)
    assert r["|z| drv b"] == 3.0 and r["|z| rnd b"] == 1.0 and r["|z| nrm b"] == 1.0
    assert np.isnan(r["|z| drv a"])
    med, std = np.zeros((52, 1, 1), np.float32), np.full((52, 1, 1), 2.0, np.float32)
    med[1] = 1.0
    x = np.array([3.0, 3.0, 3.0], np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(cg.normalise(x, np.array([1, 2, 53]), med, std).ravel(), [1.5, 1.0, 1.5])


def test_grid_shared_share_and_driver_effect_sizes_by_hand():
    from scripts import compare_generators as cg

    # 2 weeks on a 1 x 4 grid: week 0 all +1, week 1 all -1 (a signal the whole grid shares) plus
    # one driver voxel of +2 at pixel 0 of week 1
    z = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, -1.0, -1.0]], np.float32).reshape(1, 2, 1, 4)
    drivers = np.zeros((1, 2, 1, 4), np.uint8)
    drivers[0, 1, 0, 0] = 1
    ext = np.zeros((2, 1, 4), np.uint8)
    r = cg.regime_stats(ext, np.zeros_like(drivers), drivers, z, ["v"])
    means = np.array([1.0, -0.5])  # per-week grid means; var(z) = 1 - 0.25^2 (mean 0.25, E z^2 = 1)
    assert r["shared % v"] == pytest.approx(100 * means.var() / 0.9375)  # 60 %
    rest = np.array([1, 1, 1, 1, -1, -1, -1], float)  # z elsewhere
    assert r["d z v"] == pytest.approx((1 - rest.mean()) / rest.std())
    # minus the week's median (1 in week 0, -1 in week 1): the driver is +2, everything else 0
    assert r["d z-med v"] > 1e6  # nothing varies elsewhere: the driver stands out without bound


def test_n_vars_restricts_the_presets_dropped_variables(tmp_path, capsys):
    """--n_vars N without --var_drop: the preset's dropped variables are kept where they exist (1..N)."""
    from dataset.generate_synthetic import main, resolve

    notes: list[str] = []
    p = resolve("tiny", n_vars=4, notes=notes)
    assert p.var_drop == (1,) and p.n_independent == 3
    assert notes == ["--n_vars 4: the preset's var_drop [1, 5] restricted to [1]"]
    p = resolve("tiny", n_vars=2)
    assert p.var_drop == (1,) and p.n_independent == 2
    assert resolve("tiny", n_vars=8).var_drop == (1, 5)
    with pytest.raises(ValueError, match=r"option --var_drop has \[5\]"):  # explicit: still an error
        resolve("tiny", n_vars=4, var_drop=(5,))
    assert main(["--preset", "tiny", "--n_vars", "4", "--out", str(tmp_path / "tiny4")]) == 0
    assert "var_drop [1, 5] restricted to [1]" in capsys.readouterr().out
    with xr.open_dataset(tmp_path / "tiny4" / "datacube_tiny4.nc") as ds:
        assert ds.sizes["var"] == 4
        assert not ds["anomaly_extreme"].isel(var=0).any()  # variable 1 still drives nothing
    assert main(["--preset", "tiny", "--n_vars", "4", "--var_drop", "5", "--out", str(tmp_path / "bad")]) == 2
