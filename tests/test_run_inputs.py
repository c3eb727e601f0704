"""Bad run-folder input: --dir_log, --name, a run that stopped before its first checkpoint, a missing
benchmark. Each is one line (exit 2) before any data are loaded, and nothing outside the run folder
is written."""

from __future__ import annotations

import pytest

from tests.conftest import one_line_error, tiny_run_args


def _families():
    from dataset.families import dataset_family

    return [dataset_family(name) for name in ("synthetic", "datacube")]


def _forbid_loading(monkeypatch) -> None:
    """Fail the test if a family loads any split: the check under test must come first."""
    for family in _families():
        monkeypatch.setattr(type(family), "load", lambda *a, **k: pytest.fail("data loaded before the check"))


@pytest.fixture()
def no_data(monkeypatch):
    _forbid_loading(monkeypatch)


@pytest.mark.parametrize("script", ["train_synthetic", "test_synthetic"])
def test_dir_log_that_is_a_file(tiny_root, tmp_path, capsys, no_data, script):
    import importlib

    main = importlib.import_module(script).main
    blocker = tmp_path / "log.txt"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as err:
        main(tiny_run_args(tiny_root, blocker / "deeper", "run"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "option 'dir_log'" in line and f"{blocker} is a file, not a folder" in line
    assert blocker.read_text() == "not a folder"


def test_run_folder_that_is_a_file(tiny_root, tmp_path, capsys, no_data):
    import train_synthetic

    (tmp_path / "run").write_text("x")
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(tiny_run_args(tiny_root, tmp_path, "run"))
    assert err.value.code == 2 and "is a file, not a folder; pick another --name" in one_line_error(capsys)


def test_dir_log_without_write_permission(tmp_path, monkeypatch):
    import os

    from config import load_config
    from utils.run_folder import run_dir_problem

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    cfg = load_config(overrides={"dir_log": str(tmp_path / "log"), "name": "run"})
    problem = run_dir_problem(cfg)
    assert problem and "option 'dir_log'" in problem and "permission denied" in problem


def test_save_config_into_a_file_is_a_storage_error(tmp_path):
    from config import load_config, save_config
    from utils.errors import StorageError

    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError, match=f"cannot write {tmp_path / 'f'}.*--dir_log"):
        save_config(load_config(), tmp_path / "f" / "config.yaml")


@pytest.mark.parametrize("name", ["../escape", "", "..", ".", "/abs", "a\\b", "sub/run"])
def test_name_must_be_one_folder_name(tiny_root, tmp_path, capsys, name):
    import train_synthetic

    log = tmp_path / "log"
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(tiny_run_args(tiny_root, log, name))
    assert err.value.code == 2 and "option 'name'" in one_line_error(capsys)
    assert not tmp_path.joinpath("escape").exists() and not log.exists()


def test_run_that_stopped_before_its_first_checkpoint(tiny_root, tmp_path, capsys):
    """Not a circle of advice: a fresh start and --resume both point to --overwrite, which works."""
    import train_synthetic

    run = tmp_path / "crashed"
    run.mkdir()
    (run / "config.yaml").write_text("name: crashed\n")
    (run / "train.log").write_text("killed before epoch 1\n")
    args = tiny_run_args(tiny_root, tmp_path, "crashed")
    with pytest.raises(SystemExit):
        train_synthetic.main(args)
    line = one_line_error(capsys)
    assert "saved no checkpoint" in line and "--overwrite true" in line and "--resume" not in line
    with pytest.raises(SystemExit):
        train_synthetic.main([*args, "--resume", "true"])
    line = one_line_error(capsys)
    assert "nothing was saved yet: use --overwrite true or another --name" in line
    assert train_synthetic.main([*args, "--overwrite", "true"]) == 0
    assert (run / "last.pth").is_file()


def test_refused_run_loads_no_data(tiny_root, tmp_path, capsys, monkeypatch):
    import train_synthetic

    args = tiny_run_args(tiny_root, tmp_path, "done")
    assert train_synthetic.main(args) == 0
    capsys.readouterr()
    _forbid_loading(monkeypatch)
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(args)
    assert err.value.code == 2 and "pass --resume true to continue it" in one_line_error(capsys)


def test_refused_datacube_run_keeps_the_runs_climatology_cache(tmp_path, capsys):
    """Loading a datacube writes its climatology into the run folder: a refused run must not get that far."""
    import train_datacube
    from dataset import make_sample_tree

    cube = tmp_path / "cube.nc"
    assert make_sample_tree.main(["--dataset", "datacube", "--years", "2015", "2016", "2017", "--size", "8", "8",
                                  "--out", str(cube)]) == 0
    base = ["--data", str(cube), "--variables", "t2m_daily", "precip", "soil_water", "--target", "veg_index",
            "--target_below", "30", "--mask", "land", "--step", "7D", "--period_val", "2016-01-01", "2016-12-31",
            "--period_test", "2017-01-01", "2017-12-31", "--encoder", "CNN_3D", "--n_epochs", "1",
            "--max_train_batches", "1", "--max_eval_batches", "1", "--device", "cpu", "--batch_size", "2",
            "--dir_log", str(tmp_path / "log"), "--name", "A"]
    assert train_datacube.main([*base, "--period_train", "2015-01-01", "2015-12-31"]) == 0
    run = tmp_path / "log" / "A"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:  # another training period: another climatology
        train_datacube.main([*base, "--period_train", "2015-01-01", "2015-09-30"])
    assert err.value.code == 2 and "already holds a run" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no climatology cache written either


@pytest.mark.parametrize("make", ["missing", "file"])
def test_missing_synthetic_benchmark_names_the_option_and_the_fix(tmp_path, capsys, make):
    import train_synthetic

    root = tmp_path / "bench"
    if make == "file":
        root.write_text("x")
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(tiny_run_args(root, tmp_path / "log", "run"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert line.split("error: ", 1)[1].startswith(f"option 'root_synthetic': {root}")
    fix = f"python -m dataset.generate_synthetic --preset tiny --out {root}" if make == "missing" else "datacube_"
    assert fix in line
