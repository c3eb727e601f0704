"""Bad input a careful user can produce: each class gets one clear line (exit 2) or a logged warning.

Checkpoints never execute code; a full disk while saving keeps the last checkpoint and
``--resume true`` continues once space is back. docs/design/bad-inputs.md lists every case.
"""

from __future__ import annotations

import argparse
import errno
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import one_line_error
from tests.test_synthetic_scripts import _args  # the tiny run's options
from utils.checkpoints import read_checkpoint
from utils.errors import CheckpointError


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    from dataset.generate_synthetic import generate

    return generate("tiny", tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory):
    """One finished one-epoch CNN_3D run (the checkpoint the test-time cases load)."""
    import train_synthetic

    log = tmp_path_factory.mktemp("log")
    assert train_synthetic.main(_args(tiny_root, log, "ok")) == 0
    return log / "ok"


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------------------- checkpoint files


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"model_state_dict": {}, "x": _RunsCode(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"holds Python objects.*posix.system.*refused"):
        read_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("model weights are in the other file\n"), "is a text file, not a PyTorch checkpoint"),
        (lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        (lambda p: p.mkdir(), "is a folder, not a checkpoint file"),
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a PyTorch checkpoint, or a damaged one"),
    ],
    ids=["text", "empty", "folder", "missing", "binary"],
)
def test_unusable_checkpoint_files(tmp_path, make, message):
    path = tmp_path / "model.pth"
    make(path)
    with pytest.raises(CheckpointError, match=message) as err:
        read_checkpoint(path, "option 'checkpoint':")
    assert str(err.value).startswith(f"option 'checkpoint': {path}") and "\n" not in str(err.value)


def test_truncated_checkpoint_says_truncated(tmp_path):
    torch.save({"model_state_dict": {"w": torch.zeros(1000)}}, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted.*copy or download it again"):
        read_checkpoint(tmp_path / "cut.pth")


@pytest.mark.parametrize("cut", [4, 30, 120, 300, -40], ids=["header", "struct", "index", "pickle", "storage"])
def test_damaged_legacy_format_checkpoint_is_one_line(tmp_path, cut):
    """torch's legacy (non-zip) reader fails on garbage with struct.error, IndexError, AssertionError...;
    every one is the same CheckpointError, and nothing in the file is run."""
    import io

    buf = io.BytesIO()
    torch.save({"epoch": 1, "model_state_dict": {"w": torch.ones(3, 4)}}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    path = tmp_path / "legacy.pth"
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=f"checkpoint {path} .*damaged") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)
    path.write_bytes(b"\x80\x02J\x94")  # the audit's four bytes: a pickled int cut short
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint, or a damaged one"):
        read_checkpoint(path)


def test_checkpoint_of_another_encoder_is_one_line(trained, tiny_root, tmp_path, capsys):
    import test_synthetic

    with pytest.raises(SystemExit) as err:
        test_synthetic.main(_args(tiny_root, tmp_path, "t", "--encoder", "Swin_3D",
                                  "--checkpoint", str(trained / "last.pth")))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "does not fit the model built from these options" in line and "missing" in line
    assert len(line) < 700


@pytest.mark.parametrize("kind", ["text", "evil", "folder"])
def test_bad_checkpoint_option_exits_2(tiny_root, tmp_path, capsys, kind):
    import test_synthetic

    path = tmp_path / "given.pth"
    if kind == "text":
        path.write_text("not a model")
    elif kind == "evil":
        torch.save(_RunsCode(str(tmp_path / "ran")), path)
    else:
        path.mkdir()
    with pytest.raises(SystemExit) as err:
        test_synthetic.main(_args(tiny_root, tmp_path, "t", "--checkpoint", str(path)))
    assert err.value.code == 2 and str(path) in one_line_error(capsys)
    assert not (tmp_path / "ran").exists()


# ---------------------------------------------------------------------------- resume


def test_resume_with_truncated_last_checkpoint(trained, tiny_root, tmp_path, capsys):
    import train_synthetic

    shutil.copytree(trained, tmp_path / "ok")
    last = tmp_path / "ok" / "last.pth"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "ok", "--n_epochs", "2", "--resume", "true"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert line.startswith(f"train_synthetic.py: error: --resume true: {last}") and "truncated" in line


def test_resume_with_options_of_another_model(trained, tiny_root, tmp_path, capsys):
    import train_synthetic

    shutil.copytree(trained, tmp_path / "ok")
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "ok", "--n_epochs", "2", "--resume", "true",
                                   "--encoder", "Swin_3D"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "does not fit the model these options build" in line
    assert "encoder ('CNN_3D' -> 'Swin_3D')" in line
    assert "does not fit" in (tmp_path / "ok" / "train.log").read_text()


def test_full_disk_keeps_the_last_checkpoint_and_resume_continues(tiny_root, tmp_path, monkeypatch, capsys):
    import train_synthetic
    from utils import checkpoints

    real_write = checkpoints._write_bytes
    calls = {"n": 0}

    def full_after_first_epoch(path, data):
        calls["n"] += 1
        if calls["n"] > 4:  # epoch 1 writes its three best_* files and last.pth
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_write(path, data)

    monkeypatch.setattr(checkpoints, "_write_bytes", full_after_first_epoch)
    args = _args(tiny_root, tmp_path, "disk", "--n_epochs", "2")
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(args)
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "no space left on device" in line and "--resume true" in line and "disk" in line
    run = tmp_path / "disk"
    assert "no space left on device" in (run / "train.log").read_text()
    assert read_checkpoint(run / "last.pth")["epoch"] == 0  # the previous checkpoint is intact
    assert not list(run.glob(".*.tmp*"))  # no half-written file left behind

    monkeypatch.setattr(checkpoints, "_write_bytes", real_write)  # space is back
    assert train_synthetic.main([*args, "--resume", "true"]) == 0
    assert read_checkpoint(run / "last.pth")["epoch"] == 1


def test_full_disk_while_writing_test_outputs(trained, tiny_root, tmp_path, monkeypatch, capsys):
    import test_synthetic
    from utils import checkpoints

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    shutil.copytree(trained, tmp_path / "ok")
    monkeypatch.setattr(checkpoints, "_write_bytes", full)
    with pytest.raises(SystemExit) as err:
        test_synthetic.main(_args(tiny_root, tmp_path, "ok"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert f"cannot write {tmp_path / 'ok' / 'metrics_test.json'}: no space left on device" in line


def test_full_disk_while_writing_predictions(trained, tiny_root, tmp_path, monkeypatch, capsys):
    import xarray as xr

    import test_synthetic

    def full(self, path=None, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    shutil.copytree(trained, tmp_path / "ok")
    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(SystemExit) as err:
        test_synthetic.main(_args(tiny_root, tmp_path, "ok", "--save_predictions", "true"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "drivers_test.nc" in line and "no space left on device" in line


# ---------------------------------------------------------------------------- options and data


def test_overlapping_splits_are_logged_with_their_share(tiny_root, tmp_path, capsys):
    import train_synthetic

    args = _args(tiny_root, tmp_path, "overlap")
    args[args.index("--times_val") + 1 : args.index("--times_val") + 3] = ["79", "130"]
    assert train_synthetic.main(args) == 0
    expected = "option 'times_val': 26 of its 52 weeks (50 %) are also in 'times_train'"
    assert expected in capsys.readouterr().out
    assert expected in (tmp_path / "overlap" / "train.log").read_text()


@pytest.mark.parametrize(("crop", "message"), [("-5", "use 0"), ("9", "samples are 8 x 8 pixels; use at most 8")])
def test_bad_train_crop(tiny_root, tmp_path, capsys, crop, message):
    import train_synthetic

    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(tiny_root, tmp_path, "crop", "--train_crop", crop))
    assert err.value.code == 2 and "option 'train_crop'" in (line := one_line_error(capsys)) and message in line
    assert not (tmp_path / "crop").exists()  # nothing written before the error


def _edited_copy(tiny_root, tmp_path, edit):
    import xarray as xr

    out = tmp_path / "edited" / tiny_root.name  # file names follow the folder name
    shutil.copytree(tiny_root, out)
    cube = next(out.glob("datacube_*.nc"))
    with xr.open_dataset(cube, decode_times=False) as ds:
        ds = edit(ds.load())
    cube.unlink()
    ds.to_netcdf(cube)
    return out


def test_variable_with_some_nan_is_a_warning(tiny_root, tmp_path, capsys):
    import train_synthetic

    def some_nan(ds):
        v = ds["var_03"].values.copy()
        v[:, :, :1] = np.nan  # one column of 8 in the crop: 12.5 % NaN there
        ds["var_03"] = (ds["var_03"].dims, v)
        return ds

    root = _edited_copy(tiny_root, tmp_path, some_nan)
    assert train_synthetic.main(_args(root, tmp_path, "nan")) == 0
    assert "variable 'var_03' is 12.5 % NaN" in (tmp_path / "nan" / "train.log").read_text()


def test_variable_that_is_all_nan_is_an_error(tiny_root, tmp_path, capsys):
    import train_synthetic

    def all_nan(ds):
        ds["var_02"] = ds["var_02"] * np.nan
        return ds

    root = _edited_copy(tiny_root, tmp_path, all_nan)
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(root, tmp_path, "nan"))
    assert err.value.code == 2 and "variable 'var_02' is NaN everywhere" in one_line_error(capsys)


def test_time_labels_from_zero_are_refused(tiny_root, tmp_path, capsys):
    import train_synthetic

    root = _edited_copy(tiny_root, tmp_path, lambda ds: ds.assign_coords(time=ds["time"] - 1))
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(root, tmp_path, "t0"))
    assert err.value.code == 2
    line = one_line_error(capsys)
    assert "'time' labels start at 0" in line and "renumber 'time' from 1" in line


def test_time_stamps_are_refused(tiny_root, tmp_path, capsys):
    import train_synthetic

    def stamps(ds):
        ds["time"].attrs["units"] = "days since 2000-01-01"
        return ds

    root = _edited_copy(tiny_root, tmp_path, stamps)
    with pytest.raises(SystemExit) as err:
        train_synthetic.main(_args(root, tmp_path, "ts"))
    assert err.value.code == 2 and "is a time stamp" in one_line_error(capsys)


def test_published_config_does_not_bring_the_authors_worker_count(tmp_path, capsys):
    from config import FIELDS
    from utils.published import read_published_config

    path = tmp_path / "config.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(encoder="CNN_3D", n_workers=8, variables=["var_01"])))
    out = read_published_config(path, known=FIELDS)
    assert "n_workers" not in out
    err = capsys.readouterr().err
    assert "n_workers 8" in err and f"{os.cpu_count()} CPUs" in err
