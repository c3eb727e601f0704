"""Published config.pkl: safe unpickling, option mapping, warnings."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest

import config
from utils.published import PublishedConfigError, infer_dataset, load_namespace, read_published_config


def test_example_config_loads(reference_dir, capsys):
    cfg = config.load_config(reference_dir / "published_config_example.pkl")
    assert cfg.encoder == "Swin_3D"
    assert cfg.in_channels == 1
    assert cfg.variables == config.SYNTHETIC_VARIABLES
    assert cfg.en_window_size == [(2, 4, 4), (8, 1, 1)]
    assert all(isinstance(w, tuple) for w in cfg.en_window_size)
    assert cfg.en_patch_size == (1, 1, 1)
    assert cfg.times_test == (2081, 2392)
    assert cfg.years_val == ["2018", "2019", "2020"]
    assert cfg.dataset == "synthetic"
    assert cfg.gpu_id == "0, 1, 2, 3"
    assert "gpu_id" in capsys.readouterr().err  # kept, reported as without effect


def test_example_parse_config_with_fixed(reference_dir):
    path = str(reference_dir / "published_config_example.pkl")
    cfg = config.parse_config(["--config", path, "--phase", "test"], fixed={"dataset": "synthetic"})
    assert cfg.phase == "test" and cfg.codebook == "LFQ" and cfg.en_qk_scale is None


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch EVIL_MARKER",))


def test_malicious_pickle_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(encoder="Swin_3D", hook=_Evil())))
    with pytest.raises(PublishedConfigError, match=r"refused global '(posix|nt|os)\.system'"):
        read_published_config(path)
    with pytest.raises(config.ConfigError, match="system"):  # load_config passes the refusal on
        config.load_config(path)
    assert not (tmp_path / "EVIL_MARKER").exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_other_globals_and_protocols(tmp_path, protocol):
    ns = argparse.Namespace(variables=["d2m", "t2m"], in_channels_dynamic=2, years_test=[2021, 2022])
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(ns, protocol=protocol))
    out = read_published_config(path, quiet=True)
    assert out["years_test"] == ["2021", "2022"] and out["dataset"] == "ERA5_Land"
    path.write_bytes(pickle.dumps(argparse.Namespace(x=argparse.ArgumentParser), protocol=protocol))
    with pytest.raises(PublishedConfigError, match="argparse.ArgumentParser"):
        load_namespace(path)


def test_unknown_option_warns_and_is_dropped(tmp_path, capsys):
    path = tmp_path / "c.pkl"
    ns = argparse.Namespace(encoder="CNN_3D", some_published_thing=3, variables=config.SYNTHETIC_VARIABLES)
    path.write_bytes(pickle.dumps(ns))
    out = read_published_config(path, known=config.FIELDS)
    assert "some_published_thing" not in out and out["encoder"] == "CNN_3D"
    err = capsys.readouterr().err
    assert "unknown" in err and "some_published_thing" in err
    assert config.load_config(path).encoder == "CNN_3D"


def test_bad_values_and_non_pickles(tmp_path):
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(encoder="Transformer")))
    with pytest.raises(config.ConfigError, match=f"config file {path}: option 'encoder': 'Transformer'"):
        config.load_config(path)
    path.write_bytes(b"<!DOCTYPE html><html>quota</html>")
    with pytest.raises(PublishedConfigError, match="HTML"):
        load_namespace(path)
    path.write_bytes(pickle.dumps(argparse.Namespace(encoder="CNN_3D"))[:-5])
    with pytest.raises(PublishedConfigError, match="not a readable pickle"):
        load_namespace(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(PublishedConfigError, match="Namespace"):
        load_namespace(path)


def test_infer_dataset():
    assert infer_dataset({"variables": ["var_01"]}) == "synthetic"
    assert infer_dataset({"variables": ["al", "t2m"]}) == "CERRA"
    assert infer_dataset({"variables": ["t2m", "sp"]}) is None  # shared by ERA5-Land and CERRA
    assert infer_dataset({"variables": ["t2m"], "dataset": "CERRA"}) == "CERRA"


def test_shared_references_are_walked_once(tmp_path):
    nested: list = [1]
    for _ in range(80):  # 2**80 paths, 81 objects
        nested = [nested, nested]
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(variables_static=nested)))
    assert "variables_static" in load_namespace(path)
