"""Bad generator options, loader inputs that would silently lose data, crops and the comparison script.

Each case is one of the defects found in the audit of the synthetic path: the message must name the
option or file and say what to do, and nothing may be generated or loaded wrongly first.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from dataset.crops import draw_windows
from dataset.generate_synthetic import generate, main
from dataset.synthetic import SyntheticDataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


def _copy(tiny_root, tmp_path, name: str):
    out = tmp_path / name
    shutil.copytree(tiny_root, out)
    for f in out.iterdir():  # file names follow the folder name
        f.rename(out / f.name.replace("_tiny.", f"_{name}."))
    return out


# ---------------------------------------------------------------------------- generator options
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--times_train", "1", "110", "--times_val", "100", "130"],
         "options --times_train = 1 110 and --times_val = 100 130 share weeks 100-110; give disjoint splits"),
        (["--times_val", "105", "140"], "--times_val = 105 140 and --times_test = 131 156 share weeks 131-140"),
        (["--n_weeks", "10"], "option --times_train = 1 104 does not fit --n_weeks 10"),
        (["--times_test", "131", "131"], "option --times_test = 131 131 holds 1 week; a sample needs at least"),
        (["--extreme_density", "nan"], "option --extreme_density is nan; must be a finite number > 0"),
        (["--event_scale", "inf"], "option --event_scale is inf; must be a finite number > 0 (or 'grid')"),
        (["--base_oscillations", "nan"], "option --base_oscillations is nan; must be a finite number > 0"),
        (["--seed", "-1"], "option --seed is -1; must be >= 0"),
        (["--height", "0"], "option --height is 0; must be >= 1"),
    ],
)
def test_generator_refuses_options_that_make_no_sense(tmp_path, capsys, args, message):
    out = tmp_path / "bench"
    assert main(["--preset", "tiny", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()  # refused before anything is generated


# ---------------------------------------------------------------------------- loader: silent data loss
def test_climatology_without_the_weeks_a_split_needs_is_an_error(tmp_path):
    """A training period shorter than a year leaves climatology weeks NaN: the split's values would all be 0."""
    root = generate("tiny", tmp_path / "short", n_weeks=80, times_train=(1, 30), times_val=(31, 60),
                    times_test=(61, 80))
    assert len(SyntheticDataset(root, times=(1, 30), delta_t=8)) == 23  # the training weeks are covered
    with pytest.raises(ValueError) as err:
        SyntheticDataset(root, times=(31, 60), delta_t=8, times_option="times_val")
    msg = str(err.value)
    assert "climatology_short.nc: no statistics (NaN median or std) of 'var_01' for week(s) of year 31-52" in msg
    assert "option 'times_val' = 31 60" in msg and "--is_clima_scale false" in msg and "\n" not in msg
    raw = SyntheticDataset(root, times=(31, 60), delta_t=8, is_clima_scale=False)  # the way out it names
    assert np.count_nonzero(raw.normalised_inputs()) > 0.99 * raw.normalised_inputs().size


def test_climatology_nan_at_some_pixels_is_a_warning_with_its_share(tiny_root, tmp_path):
    root = _copy(tiny_root, tmp_path, "seam")
    path = root / "climatology_seam.nc"
    with xr.open_dataset(path) as ds:
        ds = ds.load()
    v = ds["var_02"].values.copy()
    v[:, :, 0, :] = np.nan  # row 0 of 16: 6.25 % of the voxels
    v[:, :, 1, 0] = np.nan  # one more pixel: 1/256 = 0.39 %
    ds["var_02"] = (ds["var_02"].dims, v)
    path.unlink()
    ds.to_netcdf(path)
    ds_ = SyntheticDataset(root, times=(1, 104), delta_t=8, times_option="times_train")
    assert ds_.warnings == [
        f"{path}: 'var_02' has values but no climatology at 6.6 % of the voxels of 'times_train' = 1 104; "
        "they become nan_fill = 0"
    ]
    assert (ds_.normalised_inputs()[1, :, 0, :] == 0).all()
    only_pixel = SyntheticDataset(root, times=(1, 104), delta_t=8, y_min=1)  # 1/240 of the crop: no warning
    assert only_pixel.warnings == []


def test_global_statistics_that_are_not_finite_are_refused(tiny_root, tmp_path):
    root = _copy(tiny_root, tmp_path, "stats")
    path = root / "statistic_stats.json"
    stats = json.loads(path.read_text())
    stats["std"]["var_03"] = float("nan")
    path.write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=r"statistic_stats\.json: median .* std nan of 'var_03' are not finite"):
        SyntheticDataset(root, delta_t=8, is_clima_scale=False)


# ---------------------------------------------------------------------------- loader: the other preset
def test_options_of_another_preset_name_the_option_and_the_cubes_own_splits(tiny_root):
    from config import load_config

    cfg = load_config("configs/synthetic_small.yaml", overrides={"root_synthetic": str(tiny_root)})
    with pytest.raises(ValueError) as err:
        SyntheticDataset.from_config(cfg, "train")
    assert str(err.value) == (
        f"option 'times_train' = 1 520 is outside the weeks of {tiny_root}/datacube_tiny.nc, 1..156 (it was "
        "generated with times_train 1 104, times_val 105 130, times_test 131 156): give weeks inside the cube; "
        "a benchmark of another preset than the configuration's has other weeks"
    )
    import dataclasses

    cfg = dataclasses.replace(cfg, times_train=[1, 104])
    with pytest.raises(ValueError, match=r"options 'x_min' = 0, 'x_max' = 32 cut outside the grid .*--x_max 16"):
        SyntheticDataset.from_config(cfg, "train")


def test_renamed_folder_names_the_cube_it_holds(tiny_root, tmp_path):
    moved = tmp_path / "tiny_copy"
    shutil.copytree(tiny_root, moved)
    with pytest.raises(FileNotFoundError, match=r"holds datacube_tiny\.nc: .* rename the folder back to 'tiny'"):
        SyntheticDataset(moved, delta_t=8)


# ---------------------------------------------------------------------------- crops
def test_windows_cover_every_valid_position_and_stay_inside_the_grid():
    torch.manual_seed(0)
    y0, x0, sh, sw = draw_windows(3000, 7, 4, 5)  # taller than the crop, narrower: width kept whole
    assert (sh, sw) == (5, 4) and set(x0.tolist()) == {0}
    counts = torch.bincount(y0, minlength=3)
    assert len(counts) == 3 and counts.min() > 900  # y0 in 0..2, each about 1000 times
    target = torch.zeros(7 * 4)
    target[6 * 4 + 3] = 1  # the bottom-right corner
    y0, x0, sh, sw = draw_windows(200, 7, 4, 5, focus=1.0, target=lambda i: target)
    assert (y0 == 2).all() and (x0 == 0).all()  # the only window of 5 rows holding row 6


# ---------------------------------------------------------------------------- compare_generators
@pytest.mark.parametrize(
    ("args", "message"),
    [(["--times", "200", "300"], "--times 200 300: need 1 <= A <= B <= 156"),
     (["--times", "30", "20"], "--times 30 20: need 1 <= A <= B <= 156"),
     (["--window", "0", "40", "0", "8"], "--window 0 40 0 8: need 0 <= Y0 < Y1 <= 16 and 0 <= X0 < X1 <= 16")],
)
def test_compare_generators_refuses_an_empty_selection(tiny_root, capsys, args, message):
    from scripts import compare_generators

    assert compare_generators.main([str(tiny_root), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
