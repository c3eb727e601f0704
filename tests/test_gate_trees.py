"""The gate's trees (``--driver_gate_model input_trees | flag_trees``): features, what they learn, test runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_run_args

from models.gate_trees import GateTrees, TreeGated, features_for, input_features, variable_lift, window_features
from models.ide import IDEOutput


def test_features_are_each_flag_then_its_neighbourhood_share():
    flags = torch.zeros(1, 1, 2, 3, 3, dtype=torch.uint8)  # one sample, one variable, two weeks, 3 x 3 pixels
    flags[0, 0, 1, 1, 1] = 1  # week 1, centre pixel
    x = window_features(flags, box=3)
    assert x.shape == (9, 4)  # pixels in row-major order; [flag week 0, flag week 1, share week 0, share week 1]
    centre, corner = x[4].tolist(), x[0].tolist()
    assert centre == pytest.approx([0, 1, 0, 1 / 9])
    assert corner == pytest.approx([0, 0, 0, 1 / 9])  # pixels outside the grid count as unflagged
    assert window_features(flags, box=1)[4].tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="option 'gate_trees_box' is 4; give an odd width"):
        window_features(flags, box=4)


def test_input_features_are_each_week_of_the_first_channel_minus_the_grid_median():
    x = torch.zeros(1, 2, 2, 2, 1, 3)  # one sample, two variables, two channels, two weeks, 1 x 3 pixels
    x[0, 0, 0, 1] = torch.tensor([[1.0, 2.0, 6.0]])  # variable 0, first channel, week 1
    x[0, 1, 0, 0] = torch.tensor([[5.0, 5.0, 5.0]])  # variable 1, week 0: the whole grid alike
    x[0, :, 1] = 100.0  # the second channel is not read
    raw = input_features(x, spatial=False)
    assert raw.shape == (3, 4)  # pixels; [var 0 week 0, var 0 week 1, var 1 week 0, var 1 week 1]
    assert raw[2].tolist() == [0, 6, 5, 0]
    residual = input_features(x, spatial=True)  # minus each week's median over the grid (2 and 5)
    assert residual[:, 1].tolist() == [-1, 0, 4]
    assert residual[:, 2].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="driver_gate_model' is 'trees' here; trees are flag_trees or input_trees"):
        features_for("trees")


def test_rows_of_a_large_split_are_a_seeded_share_bounded_by_max_rows():
    from models.gate_trees import GateRows

    def collect(seed: int) -> tuple[np.ndarray, np.ndarray]:
        rows = GateRows(features_for("input_trees"), n_samples=40, max_rows=1000, seed=seed)
        for i in range(10):  # 10 batches of 4 samples, 10 x 10 pixels: 4,000 rows in all
            x = torch.full((4, 2, 1, 2, 10, 10), float(i))
            rows.update({"x": x, "mask_extreme": torch.zeros(4, 10, 10)}, None)
        assert rows.share == 0.25
        return rows.arrays()

    x, y = collect(0)
    assert 850 < len(y) < 1150 and x.shape[1] == 4
    assert np.array_equal(x, collect(0)[0]) and not np.array_equal(x, collect(1)[0])
    every = GateRows(features_for("input_trees"), n_samples=4, max_rows=1000)
    every.update({"x": torch.zeros(4, 2, 1, 2, 10, 10), "mask_extreme": torch.zeros(4, 10, 10)}, None)
    assert every.share == 1.0 and len(every.arrays()[1]) == 400


def test_input_rows_spend_no_forward_pass_of_the_model():
    from models.gate_trees import rows_model

    model = torch.nn.Linear(1, 1)
    assert rows_model("flag_trees", model) is model
    assert rows_model("input_trees", model)(torch.zeros(1, 1)) is None


def _windows(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Random flags of two variables on a 1 x 1 grid; an extreme follows where both are flagged in week 0."""
    g = torch.Generator().manual_seed(seed)
    flags = (torch.rand(n, 2, 2, 1, 1, generator=g) < 0.5).to(torch.uint8)
    extreme = (flags[:, 0, 0, 0, 0] & flags[:, 1, 0, 0, 0]).numpy().astype(bool)
    return flags, extreme


def test_trees_learn_that_an_extreme_needs_both_variables():
    flags, extreme = _windows(2000, 0)
    trees = GateTrees(features_for("flag_trees", 1), max_iter=50).fit(window_features(flags, 1).numpy(), extreme)
    probe = torch.zeros(3, 2, 2, 1, 1, dtype=torch.uint8)
    probe[0, :, 0] = 1  # both variables flagged in week 0
    probe[1, 0, 0] = 1  # the first alone
    probe[2, 1, :] = 1  # the second alone, in both weeks
    p = torch.sigmoid(trees.logits(probe[:, :, None], _Out(probe))).reshape(-1)
    assert p[0] > 0.95 and p[1] < 0.05 and p[2] < 0.05
    assert trees.logits(probe[:, :, None], _Out(probe)).shape == (3, 1, 1, 1)


def test_trees_without_extremes_to_learn_name_the_option():
    flags, _ = _windows(50, 1)
    with pytest.raises(ValueError, match="no extreme .* use --driver_gate_model classifier"):
        GateTrees(features_for("flag_trees", 1)).fit(window_features(flags, 1).numpy(), np.zeros(50, bool))
    with pytest.raises(ValueError, match="needs fitted trees"):
        TreeGated(torch.nn.Identity(), GateTrees(features_for("input_trees")))


class _FlagsAsOutput(torch.nn.Module):
    """A stand-in model whose flags are its input's first channel and whose extreme logits are all 9."""

    def forward(self, x: torch.Tensor) -> IDEOutput:
        z = torch.zeros(1)
        return IDEOutput(logits=torch.full((x.shape[0], 1, *x.shape[-2:]), 9.0), anomaly=x[:, :, 0], heads=z, z=z,
                         z_q=z, aux_loss=z)


class _Out:
    """The part of a model's output the flag rows read."""

    def __init__(self, anomaly: torch.Tensor) -> None:
        self.anomaly = anomaly


def test_tree_gated_model_keeps_the_flags_and_replaces_the_extreme_logits():
    flags, extreme = _windows(400, 2)
    trees = GateTrees(features_for("flag_trees", 1), max_iter=20).fit(window_features(flags, 1).numpy(), extreme)
    x = flags[:3, :, None]  # [N, V, C, T, H, W]
    out = TreeGated(_FlagsAsOutput(), trees)(x)
    assert torch.equal(out.anomaly, flags[:3])
    assert torch.equal(out.logits, trees.logits(x, out))


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Input rows of two variables over two weeks; an extreme where variable 0 is above 1 in week 1."""
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype(np.float32)
    return x, x[:, 1] > 1.0


def test_variable_lift_tells_the_driving_variable_from_noise():
    train, val = _rows(3000, 0), _rows(3000, 1)
    lift = variable_lift(train, val, n_vars=2, max_iter=30)
    # variable 0 alone ranks every validation extreme first: average precision 1, over a share of about 16 %
    assert lift[0] == pytest.approx(1 / val[1].mean(), rel=0.02)
    assert 0.5 < lift[1] < 1.5  # variable 1 tells nothing: chance


def test_variable_lift_names_what_it_cannot_measure():
    train, (xv, yv) = _rows(200, 0), _rows(200, 1)
    with pytest.raises(ValueError, match="the validation split has no extreme to measure the variables on"):
        variable_lift(train, (xv, np.zeros_like(yv)), n_vars=2)
    with pytest.raises(ValueError, match="the training split has only extremes to measure the variables on"):
        variable_lift((train[0], np.ones_like(train[1])), (xv, yv), n_vars=2)
    with pytest.raises(ValueError, match="input columns 4 / 4 do not split into 3 variables"):
        variable_lift(train, (xv, yv), n_vars=3)


def test_tree_gated_model_sets_the_flags_of_variables_left_out_to_normal():
    flags, extreme = _windows(400, 2)
    trees = GateTrees(features_for("flag_trees", 1), max_iter=20).fit(window_features(flags, 1).numpy(), extreme)
    x = flags[:8, :, None]
    out = TreeGated(_FlagsAsOutput(), trees, keep=np.array([False, True]))(x)
    assert not out.anomaly[:, 0].any()
    assert torch.equal(out.anomaly[:, 1], flags[:8, 1])


def _args(root, log, name, *extra):
    return [*tiny_run_args(root, log, name, "--max_eval_batches", "0"), "--driver_gate", "extreme", *extra]


def test_a_test_run_fits_the_trees_on_the_training_split(tiny_root, tmp_path, capsys):
    import xarray as xr

    import test_synthetic
    import train_synthetic
    from utils.metrics import driver_scores

    assert train_synthetic.main(_args(tiny_root, tmp_path, "t")) == 0
    argv = _args(tiny_root, tmp_path, "t", "--driver_gate_model", "flag_trees", "--save_predictions", "true")
    assert test_synthetic.main(argv) == 0
    out = capsys.readouterr().out
    assert "driver gate: extremes from gradient-boosted trees fit on the checkpoint's flags of the training" in out
    metrics = json.loads((tmp_path / "t" / "metrics_test.json").read_text())
    with xr.open_dataset(tmp_path / "t" / "drivers_test.nc") as nc:  # the gated flags, the trees' probabilities
        again = driver_scores(nc["driver"].values, nc["driver_true"].values, list(nc["var"].values))
    assert again["pooled"] == metrics["drivers"]["pooled"]
    # the trees are fit again, the same way, by every test
    first = metrics["drivers"]["pooled"]
    assert test_synthetic.main(argv + ["--overwrite", "true"]) == 0
    assert json.loads((tmp_path / "t" / "metrics_test.json").read_text())["drivers"]["pooled"] == first


def test_a_test_run_fits_input_trees_on_the_training_split(tiny_root, tmp_path, capsys):
    import test_synthetic
    import train_synthetic

    assert train_synthetic.main(_args(tiny_root, tmp_path, "i")) == 0
    argv = _args(tiny_root, tmp_path, "i", "--driver_gate_model", "input_trees")
    assert test_synthetic.main(argv) == 0
    out = capsys.readouterr().out
    assert "driver gate: extremes from gradient-boosted trees fit on the inputs of the training split" in out
    first = json.loads((tmp_path / "i" / "metrics_test.json").read_text())
    assert test_synthetic.main(argv + ["--overwrite", "true"]) == 0
    again = json.loads((tmp_path / "i" / "metrics_test.json").read_text())
    assert again["drivers"]["pooled"] == first["drivers"]["pooled"]
    assert again["extremes"] == first["extremes"]  # the extreme metrics are the trees'


def test_bad_box_stops_before_training(tiny_root, tmp_path):
    from config import parse_config
    from utils.run import SetupError, train

    argv = _args(tiny_root, tmp_path, "bad", "--driver_gate_model", "flag_trees", "--gate_trees_box", "4")
    cfg = parse_config(argv, fixed={"dataset": "synthetic"})
    with pytest.raises(SetupError, match="option 'gate_trees_box' is 4"):
        train(cfg, log=lambda _: None)
    assert not (tmp_path / "bad").exists()


def test_a_test_run_leaves_out_the_variables_that_tell_nothing_of_the_extremes(tiny_root, tmp_path, capsys,
                                                                              monkeypatch):
    import test_synthetic
    import train_synthetic
    from dataset.families.synthetic import SyntheticFamily

    assert train_synthetic.main(_args(tiny_root, tmp_path, "v")) == 0
    argv = _args(tiny_root, tmp_path, "v", "--driver_gate_model", "input_trees", "--driver_gate_variables", "trees",
                 "--driver_gate_variable_lift", "1.5", "--spatial_anomaly", "auto")
    loads, real = [], SyntheticFamily.load
    monkeypatch.setattr(SyntheticFamily, "load", lambda self, cfg, split, **kw: loads.append(split) or
                        real(self, cfg, split, **kw))
    assert test_synthetic.main(argv) == 0
    # the spatial-anomaly choice and the trees share the training split; lifts, gate and threshold the val split
    assert sorted(loads) == ["test", "train", "val"]
    out = capsys.readouterr().out
    assert "driver gate: each variable alone predicts the validation extremes at" in out
    drivers = json.loads((tmp_path / "v" / "metrics_test.json").read_text())["drivers"]
    chosen = drivers["gate"]["variables"]
    assert set(chosen["lift"]) == set(drivers["per_variable"])
    assert chosen["kept"] == [n for n, x in chosen["lift"].items() if x >= 1.5]
    for name in set(chosen["lift"]) - set(chosen["kept"]):
        assert drivers["per_variable"][name]["n_pred"] == 0
    # no variable tells the extremes well enough: none is dropped rather than all
    assert test_synthetic.main([*argv, "--driver_gate_variable_lift", "1e9", "--overwrite", "true"]) == 0
    assert "none reaches 1e+09, so every variable can drive" in capsys.readouterr().out
    drivers = json.loads((tmp_path / "v" / "metrics_test.json").read_text())["drivers"]
    assert drivers["gate"]["variables"]["kept"] == list(drivers["per_variable"])


@pytest.mark.parametrize("extra, message", [
    (["--driver_gate_variables", "trees"], "option 'driver_gate_variables' trees measures each variable with input "
                                           "trees, but driver_gate_model is 'classifier'"),
    (["--driver_gate_variables", "trees", "--driver_gate_model", "input_trees", "--driver_gate_variable_lift", "0.5"],
     "option 'driver_gate_variable_lift' is 0.5; give 1 \\(chance\\) or more"),
])
def test_bad_variable_options_stop_before_training(tiny_root, tmp_path, extra, message):
    from config import parse_config
    from utils.run import SetupError, train

    cfg = parse_config(_args(tiny_root, tmp_path, "bad", *extra), fixed={"dataset": "synthetic"})
    with pytest.raises(SetupError, match=message):
        train(cfg, log=lambda _: None)
    assert not (tmp_path / "bad").exists()
