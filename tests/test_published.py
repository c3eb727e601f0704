"""Published config.pkl: safe unpickling, option mapping, warnings."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest

import config
from tests.conftest import ROOT
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


def test_only_the_globals_a_namespace_needs(tmp_path):
    """``bytearray(2**40)`` from 30 bytes of pickle would allocate a terabyte: refused before the call."""
    path = tmp_path / "c.pkl"
    path.write_bytes(b"cbuiltins\nbytearray\n(J\x00\x00\x00\x7ftR.")  # bytearray(0x7f000000)
    with pytest.raises(PublishedConfigError, match=r"refused global 'builtins\.bytearray'"):
        load_namespace(path)
    path.write_bytes(b"c__builtin__\nlist\n(S'ab'\ntR.")  # protocol 0 never names list: refused too
    with pytest.raises(PublishedConfigError, match=r"refused global '__builtin__\.list'"):
        load_namespace(path)
    ns = argparse.Namespace(s={1, 2}, f=frozenset({"a"}), d={"k": [1, (2, 3)]})
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):  # sets, lists, tuples, dicts in every protocol
        path.write_bytes(pickle.dumps(ns, protocol=protocol))
        assert load_namespace(path) == vars(ns)


def test_published_config_means_the_published_recipe(reference_dir, tmp_path):
    """Options the published code hard-wired: no anomaly-loss warm-up, float32 (not bf16 autocast on a GPU)."""
    pkl = reference_dir / "published_config_example.pkl"
    cfg = config.load_config(pkl)
    assert cfg.lambda_anomaly_warmup_epochs == 0 and cfg.amp == "none"
    assert (cfg.loss_weighting, cfg.init, cfg.train_crop) == ("published", "published", 0)
    paper = config.load_config(ROOT / "configs" / "paper.yaml")
    assert cfg.lambda_anomaly_warmup_epochs == paper.lambda_anomaly_warmup_epochs
    assert config.load_config(pkl, overrides={"amp": "bf16"}).amp == "bf16"  # the command line still rules


def test_malformed_variables_are_a_config_error(tmp_path):
    """Nested lists in 'variables' are one ConfigError line, not a TypeError from guessing the dataset."""
    path = tmp_path / "c.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(variables=[["var_01"]])))
    assert infer_dataset(load_namespace(path)) is None
    with pytest.raises(config.ConfigError, match=f"config file {path}: option 'variables'"):
        config.load_config(path)
