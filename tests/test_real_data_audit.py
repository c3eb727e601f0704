"""Bad real-data input found before training, and the drought scores on a hand-computed case.

Uses the hand-made ERA5-Land tree of ``test_real_data`` (4 x 5 pixels, 2 variables, 2015-2016).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_real_data import DIMS, VARS, H, W, _cfg, write_hand_tree

from dataset.era5_land import ERA5LandDataset
from dataset.real_common import DataLayoutError
from dataset.real_metrics import DroughtClassCollector, class_scores
from dataset.sample_tree import write_weekly
from dataset.zarr_store import open_store
from utils.errors import UserError


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    write_hand_tree(root)
    return root


@pytest.fixture
def copy(tree, tmp_path) -> Path:
    return Path(shutil.copytree(tree, tmp_path / "t"))


def _truncate(path: Path, keep: int = 2000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_truncated_weekly_file_is_a_one_line_error_before_training(copy):
    _truncate(copy / "ERA5-Land/EUR-11/2016/2016030.nc")  # not the first file: only a full check finds it
    with pytest.raises(UserError, match=r"option 'root_ERA5_Land'.*2016030\.nc .*truncated or damaged"):
        ERA5LandDataset(_cfg(copy), "train")


def test_truncated_noaa_file_is_an_error_before_training(copy):
    noaa = sorted((copy / "NOAA_CORDEX/EUR-11/2016").glob("*2016040.VH.nc"))[0]
    _truncate(noaa)
    with pytest.raises(DataLayoutError, match=r"option 'root_NOAA'.*2016040\.VH\.nc .*truncated"):
        ERA5LandDataset(_cfg(copy), "val")


def test_weekly_file_without_a_variable_is_an_error_before_training(copy):
    path = copy / "ERA5-Land/EUR-11/2016/2016031.nc"
    path.unlink()
    write_weekly(path, {"t2m": np.zeros((4, H, W), np.float32)}, DIMS)
    with pytest.raises(DataLayoutError, match=r"2016031\.nc: variable 'swvl1' is missing \(the file holds: .*t2m"):
        ERA5LandDataset(_cfg(copy), "train")


def test_a_file_that_breaks_during_a_run_is_a_user_error(copy):
    """Damaged after the check (or on another mount): the entry scripts still print one line."""
    ds = ERA5LandDataset(_cfg(copy), "test")
    _truncate(copy / "ERA5-Land/EUR-11/2016/2016020.nc")
    from dataset import mapped

    mapped.clear()
    with pytest.raises(UserError, match=r"cannot read .*2016020\.nc"):
        ds[ds.targets.index((2016, 20))]


def test_a_year_listed_twice_is_refused(tree):
    with pytest.raises(DataLayoutError, match=r"option 'years_val' lists \[2016\] more than once"):
        ERA5LandDataset(_cfg(tree, years_val=["2016", "2015", "2016"]), "val")
    assert len(ERA5LandDataset(_cfg(tree, years_val=["2016", "2015"]), "val")) == 51 + 49


STATS = "ERA5-Land/EUR-11/EUR-11_statistic_train.json"


@pytest.mark.parametrize(
    "text, error",
    [
        ('{"mean": {', r"is not valid JSON"),
        ("[1, 2]", r"expected a JSON object .* got list"),
        (json.dumps({"mean": {"t2m": "abc", "swvl1": 0}, "std": {"t2m": 1, "swvl1": 1}}),
         r"'mean' of variable 't2m' is 'abc', not a finite number"),
        (json.dumps({"mean": {"t2m": 0, "swvl1": 0}, "std": {"t2m": 0, "swvl1": 1}}),
         r"'std' of variable 't2m' is 0; a std must be positive"),
        (json.dumps({"mean": {"t2m": {"mean": 1}, "swvl1": 0}, "std": {"t2m": {"mean": 1, "std": 1}, "swvl1": 1}}),
         r"'mean' of variable 't2m' \(statistic 'std'\) is missing"),
    ],
)
def test_damaged_statistics_json_names_the_file(copy, text, error):
    (copy / STATS).write_text(text)
    with pytest.raises(DataLayoutError, match=r"EUR-11_statistic_train\.json.*" + error):
        ERA5LandDataset(_cfg(copy, is_clima_scale=False), "train")


def test_numeric_strings_and_per_statistic_values_normalise_by_hand(copy):
    """mean channel (x - m_mean) / s_mean, std channel (x - m_std) / s_std; x from the hand tree."""
    stats = {v: {"mean": "2", "std": 4} for v in VARS}, {v: {"mean": "10", "std": 100} for v in VARS}
    (copy / STATS).write_text(json.dumps({"mean": stats[0], "std": stats[1]}))
    ds = ERA5LandDataset(_cfg(copy, is_clima_scale=False, clip_value=1e9), "train")
    x = ds[ds.targets.index((2016, 10))]["x"].numpy()
    # north-up row 0 is file row H-1; mean = week + 100 * file_row + col, std = 1000 + week
    np.testing.assert_allclose(x[0, 0, 0, 0, :], (10 + 100 * (H - 1) + np.arange(W) - 2) / 10, rtol=1e-6)
    np.testing.assert_allclose(x[0, 1, 0], np.full((H, W), (1010 - 4) / 100), rtol=1e-6)


def test_drought_class_scores_by_hand():
    """tp 3, fp 1, fn 2, tn 4; the pixel outside mask_valid counts nowhere."""
    probs = torch.tensor([[0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9]])
    true = torch.tensor([[1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0]], dtype=torch.float32)
    valid = torch.ones_like(true)
    valid[0, -1] = 0
    logits = torch.logit(probs)[:, None, None]  # [N, 1, 1, 11] as the model's [N, 1, H, W]
    collector = DroughtClassCollector(threshold=0.35)
    collector.update({"mask_extreme": true[:, None], "mask_valid": valid[:, None]},
                     type("Out", (), {"logits": logits})())
    res = collector.result()
    assert res["counts"] == {"tp": 3, "fp": 1, "fn": 2, "tn": 4}
    want = {"drought": (3 / 4, 3 / 5, 6 / 9, 3 / 6), "no_drought": (4 / 6, 4 / 5, 8 / 11, 4 / 7)}
    for cls, (p, r, f1, iou) in want.items():
        assert res[cls] == pytest.approx({"precision": p, "recall": r, "f1": f1, "iou": iou})
    assert res["mean"]["f1"] == pytest.approx((6 / 9 + 8 / 11) / 2)
    assert res["oa"] == pytest.approx(7 / 10)
    assert class_scores(0, 0, 0, 5)["drought"]["f1"] == 0.0  # no drought anywhere: 0/0 -> 0


def test_check_tree_reads_every_file(copy):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import check_tree

    root = str(copy / "ERA5-Land")
    assert check_tree.main(["era5_land", "--root", root, "--variables", *VARS]) == 0
    _truncate(copy / "ERA5-Land/EUR-11/2015/2015044.nc")
    rep = check_tree.check("era5_land", Path(root), "EUR-11", VARS)
    assert len(rep.problems) == 1 and "2015044.nc" in rep.problems[0] and "truncated" in rep.problems[0]
    noaa = sorted((copy / "NOAA_CORDEX/EUR-11/2016").glob("*2016012.VH.nc"))[0]
    _truncate(noaa)
    rep = check_tree.check("noaa_era5_land", copy / "NOAA_CORDEX", "EUR-11")
    assert len(rep.problems) == 1 and noaa.name in rep.problems[0]


def test_store_option_naming_a_missing_folder(tmp_path):
    with pytest.raises(DataLayoutError, match=r"option 'store': .*nowhere does not exist"):
        open_store(str(tmp_path / "nowhere"))
