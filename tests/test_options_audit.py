"""Option values that cannot work fail at load time; options the run would ignore are named; a config file of
another dataset family is refused by the entry scripts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import config
from config import ConfigError, load_config
from utils import cli


@pytest.mark.parametrize(("overrides", "message"), [
    ({"lr": -1.0}, "option 'lr' is -1; it must be above 0"),
    ({"driver_threshold_percentile": 150.0}, "option 'driver_threshold_percentile' is 150; it must be in [0, 100]"),
    ({"extreme_threshold": 1.5}, "option 'extreme_threshold' is 1.5; it must be a probability in (0, 1)"),
    ({"extreme_threshold": 0.0}, "option 'extreme_threshold' is 0; it must be a probability in (0, 1)"),
    ({"mil_topk_fraction": 0.0}, "option 'mil_topk_fraction' is 0; it must be a fraction in (0, 1]"),
    ({"mil_hidden": [512, 0]}, r"option 'mil_hidden' is \[512, 0\] \(entry 0\); it must be 1 or more"),
    ({"en_window_size": [2, 0, 4, 8, 1, 1]}, r"option 'en_window_size' is .* \(entry 0\); it must be 1 or more"),
    ({"mil_dropout": 1.0}, r"option 'mil_dropout' is 1; it must be a share in \[0, 1\)"),
    ({"n_workers": -1}, "option 'n_workers' is -1; it must be 0 or more"),
    ({"threshold": 260.0}, "option 'threshold' is 260; it must be in [0, 100]"),
    ({"dt_min": 0.5}, "options 'dt_min'/'dt_max' = 0.5/0.1: need dt_min <= dt_max"),
    ({"lat_min": 50.0, "lat_max": 40.0}, "need lat_min < lat_max"),
    ({"method": "deepmil", "driver_threshold": 2.0}, "option 'driver_threshold' is 2; method deepmil flags where"),
    ({"times_test": (131, 135)}, r"option 'times_test' = \(131, 135\) holds 5 weeks, fewer than delta_t = 8"),
    ({"dataset": "CERRA", "years_test": ["21"]}, "option 'years_test': '21' is not a year"),
])
def test_values_that_cannot_work_fail_at_load(overrides, message):
    with pytest.raises(ConfigError, match=message if "\\" in message or ".*" in message else _literal(message)):
        load_config(None, overrides)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


@pytest.mark.parametrize("overrides", [
    {"driver_threshold": 2.0, "method": "iforest", "driver_threshold_rule": "fixed"},  # a raw score threshold
    {"driver_threshold": 0.7, "method": "deepmil"},
    {"times_test": (131, 138)},  # exactly delta_t = 8 weeks: one window
    {"extreme_threshold": 0.35, "lr_min": 0.0, "lr_warmup": 0.0, "beta1": 0.0, "mil_topk_fraction": None},
])
def test_values_at_the_edges_still_load(overrides):
    load_config(None, overrides)


def test_every_range_and_row_names_a_real_option():
    assert set(config.OPTION_RANGES) <= set(config.FIELDS)
    for row in config.ONLY_WHEN:
        assert set(row.options) | set(row.decided_by) <= set(config.FIELDS), row.needs


def test_the_table_knows_exactly_the_registered_methods_and_families():
    from dataset.families import DATASETS
    from models.methods import METHODS

    assert sorted(config.BUILTIN_METHODS) == sorted(METHODS.names())
    assert sorted(config.BUILTIN_DATASETS) == sorted(DATASETS.names())


def test_ignored_options_are_named_with_what_they_need():
    cfg = load_config(None, {"encoder": "CNN_3D"})
    got = config.ignored_options(cfg, ["mil_topk", "driver_threshold", "lr_reference_batch", "region", "d_state",
                                       "en_window_size", "restart_epochs", "lr", "encoder"])
    assert got == [
        "option 'mil_topk' is ignored: it matters only with method deepmil, arnet, rtfm or mgfn (this run: method ide)",
        "option 'driver_threshold' is ignored: it matters only with driver_threshold_rule fixed and a scoring method "
        "(ocsvm, iforest, simplenet, stealnet, uniad, ig1 or ig2), or method deepmil, arnet, rtfm or mgfn "
        "(this run: method ide, driver_threshold_rule val_f1)",
        "option 'lr_reference_batch' is ignored: it matters only with lr_scaling linear or sqrt "
        "(this run: lr_scaling none)",
        "option 'region' is ignored: it matters only with dataset ERA5_Land (this run: dataset synthetic)",
        "option 'd_state' is ignored: it matters only with encoder Mamba (this run: encoder CNN_3D)",
        "option 'en_window_size' is ignored: it matters only with encoder Swin_3D or Mamba (this run: encoder CNN_3D)",
        "option 'restart_epochs' is ignored: it matters only with restarts > 1 (this run: restarts 1)",
    ]


@pytest.mark.parametrize(("overrides", "given"), [
    ({"method": "rtfm", "mil_topk_fraction": None}, ["mil_topk", "rtfm_margin"]),
    ({"method": "iforest", "driver_threshold_rule": "fixed", "driver_threshold": 0.2}, ["driver_threshold"]),
    ({"method": "deepmil", "driver_threshold": 0.7}, ["driver_threshold"]),
    ({"encoder": "Mamba"}, ["d_state", "en_window_size"]),
    ({"restarts": 3, "restart_epochs": 2}, ["restart_epochs", "ensemble_starts"]),
    ({"dataset": "CERRA"}, ["years_train", "window_size", "root_CERRA"]),
    ({"dataset": "datacube", "data": "x.nc"}, ["data", "period_train"]),
])
def test_options_the_run_reads_are_not_warned_about(overrides, given):
    assert config.ignored_options(load_config(None, overrides), given) == []


def test_a_method_the_table_does_not_know_is_never_warned_about():
    cfg = dataclasses.replace(load_config(), method="my_plugin")
    assert config.ignored_options(cfg, ["mil_hidden", "uniad_pool", "codebook"]) == []


def _saved_run(tmp_path: Path, dataset: str) -> Path:
    path = tmp_path / "run" / "config.yaml"
    path.parent.mkdir()
    cfg = load_config(None, {"dataset": dataset, "name": "run", "dir_log": str(tmp_path)})
    config.save_config(cfg, path)
    return path


def test_a_run_of_another_family_given_to_a_test_script_is_one_line(tmp_path, capsys):
    path = _saved_run(tmp_path, "synthetic")
    with pytest.raises(SystemExit) as stop:
        cli.test_main(["--config", str(path)], dataset="CERRA", prog="test_CERRA.py", doc="doc")
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == (f"test_CERRA.py: error: config file {path} is for dataset 'synthetic' (its 'dataset' option) but "
                   "test_CERRA.py runs 'CERRA': use test_synthetic.py, or pass --dataset CERRA to read that file's "
                   "options for CERRA")


def test_a_preset_of_another_family_given_to_a_train_script_is_refused(capsys):
    with pytest.raises(SystemExit):
        cli.train_main(["--config", "configs/era5_land.yaml"], dataset="synthetic", prog="train_synthetic.py", doc="d")
    assert "use train_ERA5_Land.py" in capsys.readouterr().err


def test_a_file_without_a_dataset_or_of_this_family_passes_the_check(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"lr": 0.01}))
    assert config.file_dataset(recipe) is None
    assert config.file_dataset("configs/quickstart.yaml") == "synthetic"  # through its base: files
    assert config.file_dataset(tmp_path / "published" / "config.pkl") is None  # guessed, never refused


def test_command_line_warnings_go_to_stderr_and_the_saved_run_options_are_overridden(tmp_path, capsys, monkeypatch):
    """test script: options given after --config RUN/config.yaml replace the saved ones; ignored ones are named."""
    from utils import run

    path = _saved_run(tmp_path, "synthetic")
    seen = {}

    def fake_evaluate(cfg, split):
        seen["cfg"] = cfg
        raise run.SetupError("stop here")

    monkeypatch.setattr(run, "evaluate", fake_evaluate)
    with pytest.raises(SystemExit):
        cli.test_main(["--config", str(path), "--split", "val", "--max_eval_batches", "3", "--uniad_pool", "4"],
                  dataset="synthetic", prog="test_synthetic.py", doc="doc")
    assert (seen["cfg"].split, seen["cfg"].max_eval_batches, seen["cfg"].uniad_pool) == ("val", 3, 4)
    err = capsys.readouterr().err.splitlines()
    assert err == ["test_synthetic.py: warning: option 'uniad_pool' is ignored: it matters only with method uniad "
                   "(this run: method ide)", "test_synthetic.py: error: stop here"]


def test_every_shipped_preset_still_loads_with_the_checks():
    for path in sorted(Path("configs").glob("*.yaml")):
        load_config(path)
