"""The configuration: CLI and YAML typing, errors that name the option, round trip of the saved YAML."""

from __future__ import annotations

import re

import pytest
import yaml

import config
from config import ConfigError, load_config, parse_config, save_config


def test_defaults_keep_the_published_architecture_and_data():
    cfg = load_config()
    assert cfg.encoder == "Swin_3D"
    assert cfg.en_window_size == [(2, 4, 4), (8, 1, 1)]
    assert cfg.times_train == (1, 1768)
    assert cfg.in_channels_dynamic == len(cfg.variables) == 6


def test_paper_preset_restores_the_published_recipe():
    from pathlib import Path

    cfg = load_config(Path(config.__file__).parent / "configs" / "paper.yaml")
    assert (cfg.lambda_anomaly, cfg.lambda_commitment, cfg.lambda_entropy, cfg.diversity_gamma) == (100, 3, 0.1, 0.1)
    assert (cfg.loss_weighting, cfg.lr_warmup_epochs, cfg.batch_size, cfg.init) == ("published", 2, 1, "published")
    assert cfg.lambda_anomaly_warmup_epochs == 0


def test_cli_overrides_every_kind_of_type():
    cfg = parse_config(
        [
            "--times_train", "1", "416",
            "--is_aug", "false",
            "--variables", "var_01", "var_02",
            "--in_channels_dynamic", "2",
            "--en_window_size", "2", "4", "4", "8", "1", "1",
            "--en_qk_scale", "none",
            "--lr", "3e-4",
            "--encoder", "CNN_3D",
            "--years_train", "2001", "2002",
        ]
    )
    assert cfg.times_train == (1, 416)
    assert cfg.is_aug is False
    assert cfg.variables == ["var_01", "var_02"]
    assert cfg.en_window_size == [(2, 4, 4), (8, 1, 1)]
    assert cfg.en_qk_scale is None
    assert cfg.lr == pytest.approx(3e-4)
    assert cfg.encoder == "CNN_3D"
    assert cfg.years_train == ["2001", "2002"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--no_such_option", "1"], "unrecognized arguments: --no_such_option"),
        (["--lr", "fast"], "option 'lr': expected a number"),
        (["--is_aug", "maybe"], "option 'is_aug': expected true/false"),
        (["--times_train", "1"], "option 'times_train': expected 2 values"),
        (["--encoder", "ResNet"], "option 'encoder': 'ResNet' is not one of"),
        (["--variables", "var_01"], "'in_channels_dynamic' is 6 but 'variables' lists 1"),
        (["--delta_t", "6"], "option 'delta_t' is 6"),
    ],
)
def test_cli_errors_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_config(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_yaml_file_plus_overrides_and_saved_round_trip(tmp_path):
    preset = tmp_path / "exp.yaml"
    preset.write_text("encoder: CNN_3D\ntimes_train: [1, 100]\nis_aug: false\nen_window_size: [[2, 4, 4], [8, 1, 1]]\n")
    cfg = load_config(preset, overrides={"lr": "1e-4", "n_epochs": 3})
    assert (cfg.encoder, cfg.times_train, cfg.is_aug, cfg.lr, cfg.n_epochs) == ("CNN_3D", (1, 100), False, 1e-4, 3)
    saved = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(saved) == cfg
    assert yaml.safe_load(saved.read_text())["times_train"] == [1, 100]


def test_yaml_base_preset_is_inherited(tmp_path):
    (tmp_path / "base.yaml").write_text("encoder: CNN_3D\nlr: 0.01\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nlr: 0.02\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.encoder == "CNN_3D" and cfg.lr == 0.02


def test_yaml_bases_listed_apply_in_order_then_the_file(tmp_path):
    (tmp_path / "data.yaml").write_text("root_synthetic: /d\nlr: 0.01\n")
    (tmp_path / "recipe.yaml").write_text("encoder: CNN_3D\nlr: 0.03\nbatch_size: 8\n")
    (tmp_path / "child.yaml").write_text("base: [data.yaml, recipe.yaml]\nbatch_size: 4\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.root_synthetic, cfg.encoder, cfg.lr, cfg.batch_size) == ("/d", "CNN_3D", 0.03, 4)


def test_yaml_unknown_or_mistyped_option_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("encodr: CNN_3D\n")
    with pytest.raises(ConfigError, match=r"unknown option 'encodr' \(did you mean 'encoder'\?\)"):
        load_config(bad)
    bad.write_text("n_epochs: ten\n")
    with pytest.raises(ConfigError, match="option 'n_epochs': expected an integer"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_override_api_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="unknown option 'lrr'"):
        load_config(overrides={"lrr": 1})


def test_every_shipped_preset_loads():
    from pathlib import Path

    presets = sorted((Path(config.__file__).parent / "configs").glob("*.yaml"))
    assert presets, "configs/ holds the YAML presets"
    for preset in presets:
        load_config(preset)


def test_train_crop_focus_must_be_a_share():
    with pytest.raises(ValueError, match="train_crop_focus"):
        load_config(overrides={"train_crop_focus": 1.5})


def test_configuration_in_sections():
    """Every option belongs to exactly one section; a component can take its own section only."""
    import dataclasses

    import config
    from models.encoder import build_encoder

    names = [f.name for s in config.SECTIONS for f in dataclasses.fields(s)]
    assert sorted(names) == sorted(config.FIELDS) and len(names) == len(set(names))
    cfg = load_config(overrides={"encoder": "CNN_3D", "en_embed_dim": [4, 4], "codebook_dim": 4})
    enc = cfg.section(config.EncoderOptions)
    assert type(enc) is config.EncoderOptions and enc.en_embed_dim == [4, 4]
    assert not hasattr(enc, "lr") and not hasattr(enc, "codebook_dim")  # only the encoder's options
    model = build_encoder(enc, n_vars=2, in_channels=1, out_dim=4)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert isinstance(cfg, config.EncoderOptions)  # a whole configuration fits where a section is asked for


def test_help_lists_options_by_section(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--help"])
    out = capsys.readouterr().out
    assert out.index("EncoderOptions:") < out.index("--en_depths") < out.index("QuantizerOptions:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x02J\x94 a checkpoint", r"is a binary file \(a PyTorch checkpoint or a pickle\), not YAML"),
        (b"PK\x03\x04\xff\xfe", "is a binary file"),
        (b"lr: 1\n\xff\xfe name: x\n", r"is not UTF-8 text \(byte 0xff at position 6\)"),
        (b"lr: [1, 2\nname: x\n", r"YAML syntax error at line 2, column 5: expected ',' or ']', but got ':'; fix"),
    ],
    ids=["pth", "zip", "latin", "syntax"],
)
def test_unreadable_config_file_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "preset.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(err.value).startswith(f"config file {path}") and "\n" not in str(err.value)


def test_config_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(ConfigError, match=f"config file {tmp_path} is a folder, not a file"):
        load_config(tmp_path)


def test_base_chain_that_loops_is_an_error(tmp_path):
    (tmp_path / "self.yaml").write_text("base: self.yaml\nlr: 0.1\n")
    with pytest.raises(ConfigError, match="base chain loops back to"):
        load_config(tmp_path / "self.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match=r"a.yaml -> .*b.yaml -> .*a.yaml"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"gone.yaml \(named by base: in .*c.yaml\) does not exist"):
        load_config(tmp_path / "c.yaml")


def test_base_shared_twice_is_not_a_loop(tmp_path):
    (tmp_path / "common.yaml").write_text("lr: 0.5\n")
    (tmp_path / "mid.yaml").write_text("base: common.yaml\nbatch_size: 3\n")
    (tmp_path / "top.yaml").write_text("base: [common.yaml, mid.yaml]\n")
    cfg = load_config(tmp_path / "top.yaml")
    assert (cfg.lr, cfg.batch_size) == (0.5, 3)


def test_unquoted_yaml_dates_are_iso_strings(tmp_path):
    path = tmp_path / "cube.yaml"
    path.write_text("period_train: [2015-01-01, 2015-12-31]\nperiod_val: [2016-01-01 00:00:00, 2016-06-30]\n")
    cfg = load_config(path)
    assert list(cfg.period_train) == ["2015-01-01", "2015-12-31"]
    assert cfg.period_val[1] == "2016-06-30"
    save_config(cfg, tmp_path / "out.yaml")
    assert load_config(tmp_path / "out.yaml").period_train == cfg.period_train


@pytest.mark.parametrize("name", ["", "  ", ".", "..", "../etc", "a/b", "/tmp/x", "a\\b", "C:run"])
def test_name_is_one_folder_name(name):
    with pytest.raises(ConfigError, match=f"option 'name' = {re.escape(repr(name))}"):
        load_config(overrides={"name": name})


def test_ordinary_names_still_work():
    for name in ("run1", "ide_s0", "my run", "2024-01-01", "a.b"):
        assert load_config(overrides={"name": name}).name == name
