"""Best of several starts (utils/restarts.py): the choice, its files, and a run equal to the chosen seed's."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import tiny_run_args

from tests.test_engine import CubeDataset, Interrupted, TinyModel, synthetic_collectors, tiny_config
from utils import engine, run_folder
from utils.errors import ConfigError
from utils.logging import RunFolderError
from utils.restarts import check_restarts, fit_best_start, selection


def _fit_starts(cfg, fail_seed: int | None = None):
    def build(c):
        return TinyModel(fail_at_epoch=1 if c.seed == fail_seed else None)

    return fit_best_start(cfg, build, CubeDataset(train=True), CubeDataset(seed=1), synthetic_collectors(cfg),
                          log=lambda _: None)


def test_selection_follows_the_test_checkpoint_order():
    def best(**scores):
        return {k: {"value": v, "epoch": 0} for k, v in scores.items()}

    assert selection([best(driver_F1=0.2, loss=1.0), best(driver_F1=0.5, loss=9.0)]) == (1, "driver_F1")
    assert selection([best(F1=0.4, loss=1.0), best(F1=0.4, loss=0.5)]) == (0, "F1")  # ties: first start
    assert selection([best(loss=2.0), best(loss=0.5), best(loss=1.0)]) == (1, "loss")  # lower is better
    assert selection([best(driver_F1=0.9, loss=3.0), best(driver_F1=None, loss=1.0)]) == (1, "loss")


def test_restart_run_equals_a_single_run_of_the_chosen_seed(tmp_path):
    cfg = tiny_config(tmp_path, "best", n_epochs=3, restarts=3, restart_epochs=1, seed=5)
    out = _fit_starts(cfg)
    run = tmp_path / "best"
    record = json.loads((run / "starts.json").read_text())
    assert [r["seed"] for r in record["starts"]] == [5, 6, 7]
    scores = [r["best"]["driver_F1"]["value"] for r in record["starts"]]
    assert record["chosen_by"] == "driver_F1" and record["chosen_seed"] == 5 + scores.index(max(scores))
    assert out["starts"] == record
    for seed in (5, 6, 7):  # every start trained restart_epochs epochs in its own folder
        assert run_folder.load_checkpoint_dict(run / "starts" / f"seed_{seed}" / "last.pth")["epoch"] == 0
    assert "restarts: 3" in (run / "config.yaml").read_text()  # the options as given, not the chosen seed's

    single = tiny_config(tmp_path, "single", n_epochs=3, seed=record["chosen_seed"])
    torch.manual_seed(single.seed)
    engine.fit(single, TinyModel(), CubeDataset(train=True), CubeDataset(seed=1), synthetic_collectors(single))
    ref = run_folder.load_checkpoint_dict(tmp_path / "single" / "last.pth")
    got = run_folder.load_checkpoint_dict(run / "last.pth")
    assert got["epoch"] == ref["epoch"] == 2
    for k, v in ref["model_state_dict"].items():
        assert torch.equal(v, got["model_state_dict"][k]), k
    assert got["best"] == ref["best"]  # the bests of the chosen start's first epochs are kept
    log = (run / "train.log").read_text()
    assert "epoch 1/3" in log and "epoch 3/3" in log  # the chosen start's log, continued


def test_interrupted_restart_run_resumes_to_the_same_result(tmp_path):
    ref = tiny_config(tmp_path, "ref", n_epochs=3, restarts=2, restart_epochs=2)
    _fit_starts(ref)
    cfg = tiny_config(tmp_path, "killed", n_epochs=3, restarts=2, restart_epochs=2)
    with pytest.raises(Interrupted):  # the second start dies in its second epoch
        _fit_starts(cfg, fail_seed=1)
    with pytest.raises(RunFolderError, match="already holds a run"):  # never silently started again
        _fit_starts(cfg)
    _fit_starts(tiny_config(tmp_path, "killed", n_epochs=3, restarts=2, restart_epochs=2, resume=True))
    a = run_folder.load_checkpoint_dict(tmp_path / "ref" / "last.pth")
    b = run_folder.load_checkpoint_dict(tmp_path / "killed" / "last.pth")
    for k, v in a["model_state_dict"].items():
        assert torch.equal(v, b["model_state_dict"][k]), k
    assert (tmp_path / "ref" / "starts.json").read_text() == (tmp_path / "killed" / "starts.json").read_text()


def test_overwrite_removes_the_previous_starts(tmp_path):
    cfg = tiny_config(tmp_path, "run", n_epochs=2, restarts=2, restart_epochs=1)
    _fit_starts(cfg)
    (tmp_path / "run" / "starts" / "seed_1" / "stale.txt").write_text("x")
    _fit_starts(tiny_config(tmp_path, "run", n_epochs=2, restarts=2, restart_epochs=1, overwrite=True))
    assert not (tmp_path / "run" / "starts" / "seed_1" / "stale.txt").exists()


@pytest.mark.parametrize("opts, match", [
    ({"restarts": 0}, "option 'restarts' is 0"),
    ({"restarts": 2, "restart_epochs": 4}, "option 'restart_epochs' is 4 with n_epochs 4"),
    ({"restarts": 2, "restart_epochs": 0}, "option 'restart_epochs' is 0"),
    ({"restarts": 2, "restart_epochs": 1, "restart_keep": 3}, "option 'restart_keep' is 3 with restarts 2"),
    ({"restarts": 2, "restart_epochs": 1, "restart_keep": 0}, "option 'restart_keep' is 0"),
])
def test_bad_restart_options_fail_in_one_line(tmp_path, opts, match):
    with pytest.raises(ConfigError, match=match):
        check_restarts(tiny_config(tmp_path, n_epochs=4, **opts))


def _last(path):
    return run_folder.load_checkpoint_dict(path / "last.pth")


def test_kept_starts_continue_and_the_best_at_the_end_becomes_the_run(tmp_path):
    cfg = tiny_config(tmp_path, "keep", n_epochs=3, restarts=3, restart_epochs=1, restart_keep=2, seed=5)
    out = _fit_starts(cfg)
    run = tmp_path / "keep"
    record = json.loads((run / "starts.json").read_text())
    early = {r["seed"]: r["best"]["driver_F1"]["value"] for r in record["starts"]}
    ranked = sorted(early, key=lambda s: (-early[s], s))
    assert record["kept"] == ranked[:2]  # the two best after restart_epochs, best first
    for seed in (5, 6, 7):  # kept starts trained to the end in their folders, the other stopped
        assert _last(run / "starts" / f"seed_{seed}")["epoch"] == (2 if seed in record["kept"] else 0)
    final = {c["seed"]: c["best"]["driver_F1"]["value"] for c in record["continued"]}
    assert set(final) == set(record["kept"])
    assert record["chosen_seed"] == max(record["kept"], key=lambda s: (final[s], -record["kept"].index(s)))
    chosen = _last(run / "starts" / f"seed_{record['chosen_seed']}")
    got = _last(run)
    assert got["epoch"] == 2 and got["best"] == chosen["best"]
    for k, v in chosen["model_state_dict"].items():
        assert torch.equal(v, got["model_state_dict"][k]), k
    assert out["starts"] == record and out["run_dir"] == str(run)
    assert run_folder.best_checkpoint(run) == run / "best_driver_F1_model.pth"


def test_a_run_killed_while_continuing_kept_starts_resumes_to_the_same_result(tmp_path):
    opts = dict(n_epochs=3, restarts=2, restart_epochs=1, restart_keep=2)
    _fit_starts(tiny_config(tmp_path, "ref", **opts))
    kept = json.loads((tmp_path / "ref" / "starts.json").read_text())["kept"]
    cfg = tiny_config(tmp_path, "killed", **opts)
    with pytest.raises(Interrupted):  # the second kept start dies in its second epoch, after the choice
        _fit_starts(cfg, fail_seed=kept[1])
    assert json.loads((tmp_path / "killed" / "starts.json").read_text())["chosen_seed"] is None
    _fit_starts(tiny_config(tmp_path, "killed", resume=True, **opts))
    a, b = _last(tmp_path / "ref"), _last(tmp_path / "killed")
    for k, v in a["model_state_dict"].items():
        assert torch.equal(v, b["model_state_dict"][k]), k
    assert (tmp_path / "ref" / "starts.json").read_text() == (tmp_path / "killed" / "starts.json").read_text()


def test_a_test_unites_the_kept_starts_with_ensemble_starts(tiny_root, tmp_path, capsys):
    import test_synthetic
    import train_synthetic

    keep = ["--n_epochs", "2", "--restarts", "2", "--restart_epochs", "1", "--restart_keep", "2"]
    assert train_synthetic.main(tiny_run_args(tiny_root, tmp_path, "k", *keep)) == 0
    record = json.loads((tmp_path / "k" / "starts.json").read_text())
    other = next(s for s in record["kept"] if s != record["chosen_seed"])
    assert test_synthetic.main(tiny_run_args(tiny_root, tmp_path, "k", "--ensemble_starts", "true")) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2 runs: flags united" in out
    assert "| IDE (CNN_3D), ensemble of 2 |" in out  # the printed row names the ensemble it scored
    members = json.loads((tmp_path / "k" / "metrics_test.json").read_text())["ensemble"]
    assert members == [str(tmp_path / "k" / "best_driver_F1_model.pth"),
                       str(tmp_path / "k" / "starts" / f"seed_{other}" / "best_driver_F1_model.pth")]
    # the same as naming the other start as an ensemble member
    by_name = tiny_run_args(tiny_root, tmp_path, "k", "--ensemble", f"k/starts/seed_{other}", "--overwrite", "true")
    united = json.loads((tmp_path / "k" / "metrics_test.json").read_text())
    assert test_synthetic.main(by_name) == 0
    assert json.loads((tmp_path / "k" / "metrics_test.json").read_text())["drivers"] == united["drivers"]


def test_ensemble_starts_without_kept_starts_says_what_it_does(tiny_root, tmp_path, capsys):
    import test_synthetic
    import train_synthetic

    alone = "ensemble_starts: the run continued one start to the end (or trained without restarts); it is tested alone"
    single = ["--n_epochs", "2", "--restarts", "2", "--restart_epochs", "1", "--restart_keep", "1"]
    for name, opts in (("one", []), ("single", single)):  # restarts 1: no starts.json; restart_keep 1
        assert train_synthetic.main(tiny_run_args(tiny_root, tmp_path, name, *opts)) == 0
        assert test_synthetic.main(tiny_run_args(tiny_root, tmp_path, name, "--ensemble_starts", "true")) == 0
        assert alone in capsys.readouterr().out
        assert "ensemble" not in json.loads((tmp_path / name / "metrics_test.json").read_text())
    (tmp_path / "single" / "starts.json").write_text("{")
    with pytest.raises(SystemExit) as stop:
        test_synthetic.main(tiny_run_args(tiny_root, tmp_path, "single", "--ensemble_starts", "true"))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "option 'ensemble_starts':" in err and "starts.json is missing or unreadable" in err
    assert "use --ensemble_starts false" in err
    (tmp_path / "single" / "starts.json").write_text('{"chosen_seed": null, "kept": [0, 1]}')  # killed mid-way
    with pytest.raises(SystemExit):
        test_synthetic.main(tiny_run_args(tiny_root, tmp_path, "single", "--ensemble_starts", "true"))
    err = capsys.readouterr().err
    assert "has not chosen its start yet: finish it with --resume true" in err
    assert "unreadable" not in err and "damaged" not in err  # a killed run is not a damaged one
    checkpoint = str(tmp_path / "single" / "best_driver_F1_model.pth")
    argv = tiny_run_args(tiny_root, tmp_path, "single", "--ensemble_starts", "true", "--checkpoint", checkpoint)
    with pytest.raises(SystemExit):
        test_synthetic.main(argv)
    assert "drop --checkpoint or use --ensemble_starts false" in capsys.readouterr().err
