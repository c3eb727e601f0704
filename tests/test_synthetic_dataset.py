"""SyntheticDataset against hand-made tiny benchmark folders (tests/synthetic_files.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from config import load_config
from dataset import SyntheticDataset
from tests.synthetic_files import VARIABLES, Tiny, make_tiny, tiny_arrays, write_benchmark


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Tiny:
    return make_tiny(tmp_path_factory.mktemp("bench"))


def reference_x(tiny: Tiny, newest: int, T: int, clima: bool = True, clip: float = 10.0,
                fill: float = 0.0) -> np.ndarray:
    """Element by element in float64: [V, 1, T, H, W], newest-first."""
    V, H, W = len(VARIABLES), 3, 4
    out = np.zeros((V, 1, T, H, W))
    for v, name in enumerate(VARIABLES):
        for k in range(T):
            t = newest - k
            for y in range(H):
                for x in range(W):
                    val = float(tiny.values[name][t - 1, y, x])
                    if clima:
                        w = (t - 1) % 52
                        med, sd = float(tiny.median[name][w, y, x]), float(tiny.std[name][w, y, x])
                    else:
                        med, sd = float(tiny.stats["median"][name]), float(tiny.stats["std"][name])
                    val = (val - med) / (sd if sd != 0 else 1.0)
                    val = min(max(val, -clip), clip)
                    out[v, 0, k, y, x] = fill if math.isnan(val) else val
    return out


# ---------------------------------------------------------------------------- values
def test_sample_hand_computed(tiny):
    ds = SyntheticDataset(tiny.folder, times=(51, 57), variables=VARIABLES, delta_t=4)
    assert len(ds) == 4
    s = ds[2]  # weeks 53..56, newest 56 first
    assert set(s) == {"x", "mask_extreme", "mask_extreme_loss", "mask_anomaly", "timestep"}
    assert s["x"].shape == (3, 1, 4, 3, 4) and s["x"].dtype == torch.float32
    assert s["timestep"].dtype == torch.int64 and s["timestep"].shape == () and int(s["timestep"]) == 56
    x = s["x"][:, 0]
    # var_01, week 56 = week-of-year label 4 (median 4 + 52 = 56): (y + x) / (1 + y)
    assert x[0, 0, 1, 2].item() == pytest.approx(1.5)
    assert x[0, 0, 2, 3].item() == pytest.approx(5 / 3)
    assert x[0, 3, 0, 3].item() == pytest.approx(3.0)  # week 53 (week label 1), oldest of the window
    # var_02: std 0 at (0, 0) -> only centred; NaN at week 55 (t index 1) -> fill 0
    assert x[1, 0, 0, 0].item() == pytest.approx(-0.05 * 56)
    assert x[1, 0, 0, 3].item() == pytest.approx(-0.05 * 56 * 4 / 2)
    assert x[1, 1, 1, 2].item() == 0.0
    # var10 (stored (y, x, time)): median 0, std 1; clipped to +-10
    assert x[2, 0, 2, 0].item() == 10.0 and x[2, 0, 0, 3].item() == -10.0
    assert x[2, 0, 1, 0].item() == pytest.approx(5.5 + 0.56)
    assert x[2, 3, 1, 0].item() == pytest.approx(5.5 + 0.53)
    np.testing.assert_allclose(s["x"].numpy(), reference_x(tiny, 56, 4), rtol=1e-6, atol=1e-6)

    only_01 = np.zeros((3, 4), np.float32)
    only_01[0, 1] = 1
    assert s["mask_extreme"].dtype == torch.float32
    np.testing.assert_array_equal(s["mask_extreme"].numpy(), only_01)
    np.testing.assert_array_equal(s["mask_extreme_loss"].numpy(), only_01)
    anom = np.zeros((3, 4, 3, 4), np.float32)
    anom[1, 3, 0, 1] = anom[1, 1, 0, 1] = 1  # var_02 at weeks 53 and 55
    anom[2, 2, 2, 0] = 1  # var10 at week 54
    np.testing.assert_array_equal(s["mask_anomaly"].numpy(), anom)

    s0 = ds[0]  # weeks 51..54: no class 1 at 54; halos of both events are in the window
    assert int(s0["timestep"]) == 54 and s0["mask_extreme"].sum() == 0
    loss = np.zeros((3, 4), np.float32)
    loss[0, 1] = loss[2, 3] = 1
    np.testing.assert_array_equal(s0["mask_extreme_loss"].numpy(), loss)
    for i in range(len(ds)):
        np.testing.assert_allclose(ds[i]["x"].numpy(), reference_x(tiny, 54 + i, 4), rtol=1e-6, atol=1e-6)
    assert ds[-1]["timestep"] == 57
    with pytest.raises(IndexError):
        ds[4]


def test_global_normalisation_and_clip(tiny):
    ds = SyntheticDataset(tiny.folder, times=(1, 10), delta_t=2, is_clima_scale=False, clip_value=10.0)
    assert ds.variables == VARIABLES  # default: the file's variables in 'var' order
    x = ds[0]["x"][:, 0]  # weeks 1..2, newest 2
    assert x[0, 0, 1, 2].item() == pytest.approx((2 + 3 - 2) / 4)  # var_01: median "2.0", std "4"
    assert x[1, 0, 0, 0].item() == pytest.approx(-0.05 * 2 + 1)  # var_02: std 0 -> centred only
    assert x[2, 0, 1, 0].item() == 10.0  # var10: (5.5 + 0.02) / 0.5 clipped
    for i in range(len(ds)):
        np.testing.assert_allclose(ds[i]["x"].numpy(), reference_x(tiny, 2 + i, 2, clima=False),
                                   rtol=1e-6, atol=1e-6)
    small = SyntheticDataset(tiny.folder, times=(1, 10), delta_t=2, is_clima_scale=False, clip_value=1.0)
    assert small[0]["x"].abs().max().item() == 1.0


def test_no_norm_keeps_raw_values_and_fills_nan(tiny):
    ds = SyntheticDataset(tiny.folder, times=(52, 56), delta_t=4, is_norm=False, nan_fill=-7.0)
    x = ds[1]["x"][:, 0]  # weeks 53..56
    assert x[0, 0, 2, 3].item() == 56 + 2 + 3
    assert x[1, 1, 1, 2].item() == -7.0  # NaN at week 55
    assert x[2, 0, 0, 3].item() == pytest.approx(-16.5 + 0.56, abs=1e-5)  # not clipped


def test_sample_count_time_labels_and_truth(tiny):
    ds = SyntheticDataset(tiny.folder, times=(1, 60), delta_t=8)
    assert len(ds) == 53 and ds.t_first == 1 and ds.t_last == 60
    full = SyntheticDataset(tiny.folder, delta_t=8)  # times=None: whole file
    assert len(full) == 53
    ds = SyntheticDataset(tiny.folder, times=(41, 58), variables=["var10", "var_02"], delta_t=4)
    assert len(ds) == 15
    np.testing.assert_array_equal(ds.time_labels, np.arange(41, 59))
    assert ds.variables == ["var10", "var_02"] and ds.n_vars == 2
    truth = ds.drivers_truth()
    assert truth.dtype == np.uint8 and truth.shape == (2, 18, 3, 4)
    np.testing.assert_array_equal(truth, tiny.anomaly_extreme[[2, 1], 40:58])
    ext = ds.extremes_truth()
    assert ext.dtype == np.uint8 and ext.shape == (18, 3, 4)
    np.testing.assert_array_equal(ext, (tiny.extreme[40:58] == 1).astype(np.uint8))
    assert ext.sum() == 2
    # variable order follows the request; masks follow their variable
    s = ds[56 - 44]  # newest week 56 -> index 56 - 41 - 3
    assert int(s["timestep"]) == 56
    assert s["mask_anomaly"][0, 2, 2, 0] == 1 and s["mask_anomaly"][1, 1, 0, 1] == 1
    cm = np.load(tiny.folder / "coupling_matrix_tiny.npy")
    np.testing.assert_array_equal(ds.coupling_matrix(), cm[[2, 1]])


def test_crop(tiny):
    full = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4)
    ds = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4, x_min=1, x_max=3, y_min=1, y_max=3)
    assert (ds.height, ds.width) == (2, 2)
    np.testing.assert_array_equal(ds.y, [1, 2])
    np.testing.assert_array_equal(ds.x, [1, 2])
    np.testing.assert_array_equal(ds.latitude, [[49, 49], [48, 48]])
    np.testing.assert_array_equal(ds.longitude, [[11, 12], [11, 12]])
    a, b = ds[2], full[2]
    for key in ("x", "mask_extreme", "mask_extreme_loss", "mask_anomaly"):
        np.testing.assert_array_equal(a[key].numpy(), b[key][..., 1:3, 1:3].numpy())
    assert ds.drivers_truth().shape == (3, 7, 2, 2)


# ---------------------------------------------------------------------------- augmentation
def _transforms(t: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"id": t, "rot": t.flip(-2, -1), "fx": t.flip(-1), "fy": t.flip(-2)}


def test_augmentation_consistent_across_outputs(tiny):
    plain = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4)
    aug = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4, is_aug=True)
    ref = plain[2]
    # identifiable: the four transforms of this sample's x are all different
    xs = _transforms(ref["x"])
    assert all(not torch.equal(xs[a], xs[b]) for a in xs for b in xs if a < b)
    torch.manual_seed(0)
    seen = set()
    for _ in range(24):
        s = aug[2]
        kind = [k for k, v in xs.items() if torch.equal(v, s["x"])]
        assert len(kind) == 1
        seen.add(kind[0])
        for key in ("mask_extreme", "mask_extreme_loss", "mask_anomaly"):
            assert torch.equal(s[key], _transforms(ref[key])[kind[0]]), key
        assert s["timestep"] == ref["timestep"]
    assert seen == {"id", "rot", "fx", "fy"}
    torch.manual_seed(3)
    first = [aug[1]["x"] for _ in range(6)]
    torch.manual_seed(3)
    assert all(torch.equal(a, aug[1]["x"]) for a in first)


@pytest.mark.parametrize(
    "draws, expected",
    [
        ((0.1, 0.1, 0.1), "fy"),  # rot180 then flip x = flip y
        ((0.1, 0.1, 0.9), "fx"),  # rot180 then flip y = flip x
        ((0.1, 0.9, 0.1), "rot"),
        ((0.9, 0.1, 0.1), "fx"),
        ((0.9, 0.1, 0.9), "fy"),
        ((0.9, 0.9, 0.9), "id"),
    ],
)
def test_rotation_then_flip(tiny, monkeypatch, draws, expected):
    plain = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4)
    aug = SyntheticDataset(tiny.folder, times=(51, 57), delta_t=4, is_aug=True)
    ref = plain[2]
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(draws))
    s = aug[2]
    for key in ("x", "mask_extreme", "mask_extreme_loss", "mask_anomaly"):
        assert torch.equal(s[key], _transforms(ref[key])[expected]), key


# ---------------------------------------------------------------------------- config / loader
def test_from_config_and_dataloader(tiny):
    cfg = load_config(overrides={
        "root_synthetic": str(tiny.folder), "variables": VARIABLES, "in_channels_dynamic": 3,
        "delta_t": 4, "times_train": [1, 40], "times_val": [41, 50], "times_test": [51, 60],
        "x_min": 0, "x_max": 4, "y_min": 1, "y_max": 3, "is_aug": True, "clip_value": 5.0,
    })
    train = SyntheticDataset.from_config(cfg, "train")
    val = SyntheticDataset.from_config(cfg, "val")
    test = SyntheticDataset.from_config(cfg, "test")
    assert train.is_aug and not val.is_aug and not test.is_aug
    assert (len(train), len(val), len(test)) == (37, 7, 7)
    assert (test.t_first, test.t_last, test.height, test.width) == (51, 60, 2, 4)
    assert test.clip_value == 5.0 and float(test[0]["x"].abs().max()) <= 5.0
    with pytest.raises(ValueError, match="split"):
        SyntheticDataset.from_config(cfg, "holdout")

    batch = next(iter(DataLoader(test, batch_size=3, shuffle=False)))
    assert batch["x"].shape == (3, 3, 1, 4, 2, 4) and batch["x"].dtype == torch.float32
    assert batch["mask_extreme"].shape == (3, 2, 4)
    assert batch["mask_extreme_loss"].shape == (3, 2, 4)
    assert batch["mask_anomaly"].shape == (3, 3, 4, 2, 4)
    assert batch["timestep"].dtype == torch.int64
    assert batch["timestep"].tolist() == [54, 55, 56]


# ---------------------------------------------------------------------------- errors
def _fresh(tmp_path, name="bad", **kwargs) -> Tiny:
    return make_tiny(tmp_path, exp=name, **kwargs)


def test_missing_folder_and_files(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SyntheticDataset(tmp_path / "nope")
    t = _fresh(tmp_path, "nocube", skip=("datacube",))
    with pytest.raises(FileNotFoundError, match="datacube_nocube.nc"):
        SyntheticDataset(t.folder, delta_t=4)
    t = _fresh(tmp_path, "noclim", skip=("climatology", "statistic"))
    with pytest.raises(FileNotFoundError, match="climatology_noclim.nc"):
        SyntheticDataset(t.folder, delta_t=4)
    with pytest.raises(FileNotFoundError, match="statistic_noclim.json"):
        SyntheticDataset(t.folder, delta_t=4, is_clima_scale=False)
    assert len(SyntheticDataset(t.folder, delta_t=4, is_norm=False)) == 57  # statistics not needed


def test_bad_selection_messages(tiny):
    with pytest.raises(ValueError, match=r"var_03 not in the file; it has var_01, var_02, var10"):
        SyntheticDataset(tiny.folder, variables=["var_01", "var_03"], delta_t=4)
    with pytest.raises(ValueError, match=r"option 'times' = 50 61 is outside the weeks of .*tiny\.nc, 1\.\.60"):
        SyntheticDataset(tiny.folder, times=(50, 61), delta_t=4)
    with pytest.raises(ValueError, match=r"option 'times' = 0 10 is outside the weeks of .*, 1\.\.60"):
        SyntheticDataset(tiny.folder, times=(0, 10), delta_t=4)
    with pytest.raises(ValueError, match="reversed"):
        SyntheticDataset(tiny.folder, times=(10, 5), delta_t=4)
    with pytest.raises(ValueError, match=r"fewer than delta_t = 8"):
        SyntheticDataset(tiny.folder, times=(1, 5), delta_t=8)
    with pytest.raises(ValueError, match=r"'x_max' = 5 cut outside the grid of .*\(\(y, x\) = \(3, 4\)\).*--x_max 4"):
        SyntheticDataset(tiny.folder, delta_t=4, x_max=5)
    with pytest.raises(ValueError, match=r"'y_min' = 2, 'y_max' = 2 cut outside"):
        SyntheticDataset(tiny.folder, delta_t=4, y_min=2, y_max=2)


def test_wrong_dims_and_bad_statistics(tmp_path):
    a = tiny_arrays()
    folder = write_benchmark(tmp_path / "dims", dims={"var_02": ("time", "lat", "lon")}, **a)
    msg = r"datacube_dims\.nc: variable 'var_02' has dims \('time', 'lat', 'lon'\)"
    with pytest.raises(ValueError, match=msg):
        SyntheticDataset(folder, variables=["var_02"], delta_t=4, is_norm=False)
    # the other variables of that file still load
    assert SyntheticDataset(folder, variables=["var_01"], delta_t=4).n_vars == 1

    a = tiny_arrays()
    a["stats"]["std"]["var_01"] = "n/a"
    folder = write_benchmark(tmp_path / "stats", **a)
    with pytest.raises(ValueError, match=r"statistic_stats\.json: 'std' of 'var_01' is not a number"):
        SyntheticDataset(folder, delta_t=4, is_clima_scale=False)
    (folder / "statistic_stats.json").write_text(json.dumps({"median": {}, "std": {}}))
    with pytest.raises(ValueError, match=r"no 'median' value for variable 'var_01'"):
        SyntheticDataset(folder, delta_t=4, is_clima_scale=False)


def test_package_export():
    import dataset

    assert "SyntheticDataset" in dataset.__all__ and dataset.SyntheticDataset is SyntheticDataset
    with pytest.raises(AttributeError):
        dataset.NoSuchDataset  # noqa: B018
