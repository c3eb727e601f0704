"""The configuration: CLI and YAML typing, errors that name the option, round trip of the saved YAML."""

from __future__ import annotations

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
