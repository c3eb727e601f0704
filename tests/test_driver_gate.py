"""The extreme gate (``--driver_gate extreme``): which flags it keeps, how its threshold is chosen,
and the errors that stop a run that cannot use it."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_run_args

from utils.driver_gate import GATE_GRID, ExtremeGate, GateSpec, followed_within
from utils.metrics import DriverCollector, driver_scores


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_mask_opens_the_weeks_up_to_weeks_before_a_predicted_extreme():
    gate = ExtremeGate(GateSpec(weeks=2), t_first=100, n_time=8, height=2, width=2)
    logits = torch.full((1, 1, 2, 2), _logit(0.1))
    logits[0, 0, 0, 1] = _logit(0.9)  # the window whose target is week 105 predicts an extreme at (0, 1)
    gate.update(logits, [105])
    mask = gate.mask(0.5)
    assert mask.shape == (8, 2, 2)
    assert np.argwhere(mask).tolist() == [[3, 0, 1], [4, 0, 1], [5, 0, 1]]  # weeks 103, 104, 105
    assert not gate.mask(0.95).any()
    flags = np.ones((3, 8, 2, 2), np.uint8)
    kept = gate.apply(flags, 0.5)
    assert kept.dtype == np.uint8 and kept.sum() == 3 * 3 and kept[:, 3:6, 0, 1].all()
    # threshold 0 opens weeks 103-105 at every pixel; weeks no window targets never open the gate
    assert gate.apply(flags, 0.0).sum() == 3 * 3 * 4 and not gate.apply(flags, 0.0)[:, :3].any()


def test_weeks_outside_the_split_and_the_maximum_over_windows():
    gate = ExtremeGate(GateSpec(weeks=0), t_first=10, n_time=3, height=1, width=1)
    gate.update(torch.tensor([[[[_logit(0.7)]]], [[[_logit(0.2)]]], [[[_logit(0.9)]]]]), [11, 11, 40])
    assert gate.prob[1, 0, 0] == pytest.approx(0.7)  # the larger of the two windows ending in week 11
    assert gate.mask(0.5)[:, 0, 0].tolist() == [False, True, False]  # week 40 lies outside the split


def test_gate_without_an_extreme_map_names_the_option():
    gate = ExtremeGate(GateSpec(weeks=7), t_first=0, n_time=8, height=1, width=1)
    with pytest.raises(ValueError, match="driver_gate"):
        gate.update(None, [7])
    with pytest.raises(ValueError, match="driver_gate_threshold"):
        ExtremeGate(GateSpec(weeks=7, threshold=1.5), 0, 8, 1, 1)


class _Split:
    """A split of 10 weeks (labels 1..10), 2 variables, 1 x 2 pixels: var 0 drives an extreme at pixel 0."""

    time_labels = np.arange(1, 11)
    variables = ["a", "b"]

    def drivers_truth(self):
        truth = np.zeros((2, 10, 1, 2), np.uint8)
        truth[0, 5:8, 0, 0] = 1  # weeks 6-8 at pixel 0 lead the extreme of week 9
        return truth


def _windows(prob_pixel0: float, prob_pixel1: float):
    """Windows of 4 weeks ending at weeks 4..10; every window flags var 0 everywhere in weeks 6-8, so
    pixel 1's flags are random anomalies; the windows ending at week 9 predict the given probabilities."""
    flags, logits, steps = [], [], []
    for end in range(4, 11):
        f = torch.zeros(1, 2, 4, 1, 2, dtype=torch.uint8)
        for k in range(4):  # newest first: k = 0 is week `end`
            if 6 <= end - k <= 8:
                f[0, 0, k] = 1
        p = (prob_pixel0, prob_pixel1) if end == 9 else (0.05, 0.05)
        flags.append(f)
        logits.append(torch.tensor([[[[_logit(p[0]), _logit(p[1])]]]]))
        steps.append(end)
    return flags, logits, steps


def test_collector_chooses_the_threshold_that_drops_random_anomalies():
    col = DriverCollector(_Split(), delta_t=4, gate=GateSpec(weeks=3))
    for f, lg, t in zip(*_windows(0.93, 0.75)):
        col.update({"timestep": torch.tensor([t])}, SimpleNamespace(anomaly=f, logits=lg))
    col.all_reduce()
    res = col.result()
    # ungated: 6 flags, 3 true -> F1 2*3 / (2*3 + 3) = 2/3; gated at 0.8 or 0.85 or 0.9: exactly the truth
    assert res["gate"]["ungated"]["f1"] == pytest.approx(2 / 3)
    assert res["gate"]["threshold"] == 0.8  # the lowest candidate above pixel 1's 0.75
    assert res["gate"]["weeks"] == 3
    assert res["pooled"]["f1"] == pytest.approx(1.0)
    assert (col.flags() == _Split().drivers_truth()).all()


def test_a_fixed_threshold_is_used_as_given():
    col = DriverCollector(_Split(), delta_t=4, gate=GateSpec(weeks=3, threshold=0.5))
    for f, lg, t in zip(*_windows(0.93, 0.75)):
        col.update({"timestep": torch.tensor([t])}, SimpleNamespace(anomaly=f, logits=lg))
    res = col.result()
    assert res["gate"]["threshold"] == 0.5 and res["pooled"]["f1"] == pytest.approx(2 / 3)


def test_followed_within_reaches_weeks_before_and_after():
    extreme = np.zeros((10, 1, 1), bool)
    extreme[5] = True
    assert np.flatnonzero(followed_within(extreme, 3)).tolist() == [2, 3, 4, 5]
    assert np.flatnonzero(followed_within(extreme, 3, before=2)).tolist() == [2, 3, 4, 5, 6, 7]
    assert np.flatnonzero(followed_within(extreme, 0, before=20)).tolist() == [5, 6, 7, 8, 9]


class _LongSplit:
    """12 weeks, 2 variables, 1 x 2 pixels: var 0 drives the extreme of week 9 at pixel 0 from week 6
    and lasts to week 10, a week after the extreme's onset."""

    time_labels = np.arange(1, 13)
    variables = ["a", "b"]

    def drivers_truth(self):
        truth = np.zeros((2, 12, 1, 2), np.uint8)
        truth[0, 5:10, 0, 0] = 1  # weeks 6-10
        return truth


def _long_windows():
    """Windows of 4 weeks ending at weeks 4..12 flag var 0 at both pixels in weeks 6-10; only the window
    ending at week 9 predicts an extreme (0.93 at pixel 0, 0.75 at pixel 1)."""
    for end in range(4, 13):
        f = torch.zeros(1, 2, 4, 1, 2, dtype=torch.uint8)
        for k in range(4):
            if 6 <= end - k <= 10:
                f[0, 0, k] = 1
        p = (0.93, 0.75) if end == 9 else (0.05, 0.05)
        yield f, torch.tensor([[[[_logit(p[0]), _logit(p[1])]]]]), end


def test_a_window_chosen_on_the_split_keeps_drivers_that_outlast_the_extreme():
    from utils.driver_gate import GateSetting

    windows = ((0, 3), (0, 5), (2, 3), (2, 5))
    col = DriverCollector(_LongSplit(), delta_t=4, gate=GateSpec(weeks=3, windows=windows))
    for f, lg, t in _long_windows():
        col.update({"timestep": torch.tensor([t])}, SimpleNamespace(anomaly=f, logits=lg))
    res = col.result()
    # 2 weeks back reach week 10's flags from the extreme of week 9; 0.8 drops pixel 1's random flags
    assert col.gate_setting == GateSetting(before=2, weeks=3, threshold=0.8)
    assert (res["gate"]["weeks_before"], res["gate"]["weeks"], res["gate"]["threshold"]) == (2, 3, 0.8)
    assert res["pooled"]["f1"] == pytest.approx(1.0)
    # the fixed window of 3 weeks after keeps weeks 6-9 only: P 1, R 4/5 -> F1 8/9
    fixed = DriverCollector(_LongSplit(), delta_t=4, gate=GateSpec(weeks=3))
    for f, lg, t in _long_windows():
        fixed.update({"timestep": torch.tensor([t])}, SimpleNamespace(anomaly=f, logits=lg))
    assert fixed.result()["pooled"]["f1"] == pytest.approx(8 / 9)
    assert fixed.result()["gate"]["weeks_before"] == 0


def test_gate_spec_reads_the_window_options():
    from utils.driver_gate import gate_spec

    cfg = SimpleNamespace(driver_gate="extreme", driver_gate_weeks=None, driver_gate_threshold=None,
                          driver_gate_weeks_before=0, driver_gate_window="val", delta_t=8)
    spec = gate_spec(cfg)
    assert spec.windows == ((0, 7), (0, 9), (2, 7), (2, 9), (4, 7), (4, 9))
    assert len(spec.candidates()) == 6 * len(GATE_GRID) and spec.fixed is None
    cfg.driver_gate_window, cfg.driver_gate_weeks_before, cfg.driver_gate_threshold = "fixed", 4, 0.5
    said = gate_spec(cfg).fixed.describe()
    assert said == "an extreme of probability > 0.5 from 4 weeks before to 7 weeks after the flag"


def test_gate_grid_starts_with_no_gate():
    assert GATE_GRID[0] == 0.0 and list(GATE_GRID) == sorted(GATE_GRID)


def test_no_gate_scores_as_before():
    col = DriverCollector(_Split(), delta_t=4)
    for f, lg, t in zip(*_windows(0.93, 0.75)):
        col.update({"timestep": torch.tensor([t])}, SimpleNamespace(anomaly=f, logits=lg))
    res = col.result()
    assert "gate" not in res
    assert res == driver_scores(col.votes.assembled(), _Split().drivers_truth(), ["a", "b"])


# ----------------------------------------------------------------------------------- through the run API


def _args(root, log, name, *extra):
    """The tiny run with the gate on and the whole validation split (the gate's threshold is chosen there)."""
    return [*tiny_run_args(root, log, name, "--max_eval_batches", "0"), "--driver_gate", "extreme", *extra]


@pytest.mark.parametrize("window", ["fixed", "val"])
def test_train_and_test_with_the_gate(tiny_root, tmp_path, capsys, window):
    import xarray as xr

    import test_synthetic
    import train_synthetic

    extra = ("--driver_gate_window", window)
    assert train_synthetic.main(_args(tiny_root, tmp_path, "g", *extra)) == 0
    assert test_synthetic.main(_args(tiny_root, tmp_path, "g", "--save_predictions", "true", *extra)) == 0
    out = capsys.readouterr().out
    what = "threshold and window" if window == "val" else "threshold"
    assert f"driver gate: {what} chosen on the validation split, an extreme of probability >" in out
    assert "driver gate: flags kept where an extreme of probability >" in out
    metrics = json.loads((tmp_path / "g" / "metrics_test.json").read_text())
    gate = metrics["drivers"]["gate"]
    assert gate["threshold"] in GATE_GRID
    if window == "fixed":
        assert (gate["weeks_before"], gate["weeks"]) == (0, 7)
    else:
        assert gate["weeks_before"] in (0, 2, 4) and gate["weeks"] in (7, 9)
    assert set(gate["ungated"]) >= {"precision", "recall", "f1"}
    with xr.open_dataset(tmp_path / "g" / "drivers_test.nc") as nc:  # the file holds the gated flags
        again = driver_scores(nc["driver"].values, nc["driver_true"].values, list(nc["var"].values))
    assert again["pooled"] == metrics["drivers"]["pooled"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "rtfm"], "option 'driver_gate': extreme cannot apply: method 'rtfm' predicts no extreme map"),
        (["--driver_gate_threshold", "1.2"], "option 'driver_gate_threshold' is 1.2"),
        (["--driver_gate_weeks", "-1"], "option 'driver_gate_weeks' is -1"),
        (["--driver_gate_weeks_before", "-2"], "option 'driver_gate_weeks_before' is -2"),
    ],
)
def test_bad_gate_options_stop_before_training(tiny_root, tmp_path, extra, message):
    from config import parse_config
    from utils.run import SetupError, train

    cfg = parse_config(_args(tiny_root, tmp_path, "bad", *extra), fixed={"dataset": "synthetic"})
    with pytest.raises(SetupError, match=message):
        train(cfg, log=lambda _: None)
    assert not (tmp_path / "bad").exists()


def test_reanalysis_family_refuses_the_gate():
    from dataset.families import dataset_family
    from models.methods import method_spec
    from utils.run import SetupError, _check_gate

    cfg = SimpleNamespace(method="ide", driver_gate="extreme", driver_gate_threshold=None, driver_gate_weeks=None)
    with pytest.raises(SetupError, match="ERA5_Land family writes its flags per window, without re-assembly"):
        _check_gate(cfg, dataset_family("ERA5_Land"), method_spec("ide"))


def test_data_without_true_drivers_name_what_the_gate_cannot_choose():
    from models.methods import method_spec
    from utils.run import _why_no_gate

    family = SimpleNamespace(name="cube", driver_gate=True, threshold_rules=lambda cfg: ("normal_percentile",))
    cfg = SimpleNamespace(method="ide", driver_gate_threshold=0.5, driver_gate_window="val")
    assert _why_no_gate(cfg, family, method_spec("ide")) == \
        "these data have no true drivers to choose the window on (use driver_gate_window fixed)"
    cfg.driver_gate_threshold = None
    assert _why_no_gate(cfg, family, method_spec("ide")) == ("these data have no true drivers to choose the threshold "
                                                            "and window on (give driver_gate_threshold, use "
                                                            "driver_gate_window fixed)")
    cfg.driver_gate_window = "fixed"
    assert _why_no_gate(cfg, family, method_spec("ide")) == \
        "these data have no true drivers to choose the threshold on (give driver_gate_threshold)"
    cfg.driver_gate_threshold = 0.5
    assert _why_no_gate(cfg, family, method_spec("ide")) is None


def test_auto_gates_ide_where_flags_are_reassembled_and_scored():
    import dataclasses

    from dataset.families import dataset_family
    from models.methods import method_spec
    from utils.run import resolve_gate

    @dataclasses.dataclass
    class C:
        method: str = "ide"
        driver_gate: str = "auto"
        driver_gate_threshold: float | None = None
        driver_gate_weeks: int | None = None
        delta_t: int = 8

    said = []
    out = resolve_gate(C(), dataset_family("synthetic"), method_spec("ide"), said.append)
    assert out.driver_gate == "extreme" and said[-1].startswith("driver_gate auto -> extreme")
    out = resolve_gate(C(), dataset_family("ERA5_Land"), method_spec("ide"), said.append)
    assert out.driver_gate == "none" and "ERA5_Land family writes its flags per window" in said[-1]
    out = resolve_gate(C(method="rtfm"), dataset_family("synthetic"), method_spec("rtfm"), said.append)
    assert out.driver_gate == "none" and "'rtfm' predicts no extreme map" in said[-1]
