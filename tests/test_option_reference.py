"""Every option has a real one-line meaning, and the generated reference (docs/reference/options.md) lists them all."""

from __future__ import annotations

import dataclasses
import re

import pytest

import config
from scripts import docs_options
from utils.option_sections import SECTIONS


def test_every_option_has_a_help_that_is_more_than_its_name():
    options = list(config.iter_options())
    assert [o.name for o in options] == [f.name for s in SECTIONS for f in dataclasses.fields(s)]
    assert len(options) == len(config.FIELDS)
    for opt in options:
        text = opt.help
        assert text, f"option '{opt.name}' has no metadata['help'] in utils/option_sections.py"
        assert text == text.strip() and "\n" not in text, f"option '{opt.name}': help is not one line"
        said = re.sub(r"[\s_\-.]+", " ", text).strip().lower()
        assert said != opt.name.replace("_", " ").lower(), f"option '{opt.name}': help only repeats the name"
        assert len(said.split()) >= 3, f"option '{opt.name}': help {text!r} says too little"
    assert docs_options.missing_help(options) == []


def test_option_info_matches_the_config():
    infos = {o.name: o for o in config.iter_options()}
    assert infos["lr"].section is config.OptimOptions and infos["lr"].default == 1e-3 and infos["lr"].type == "float"
    assert infos["amp"].choices == ("auto", "none", "bf16", "fp16") and infos["amp"].default == "auto"
    assert infos["checkpoint"].type == "str | None" and infos["checkpoint"].default is None
    assert infos["en_depths"].default == [2, 1]  # default_factory called
    assert "ide" in infos["method"].choices and "synthetic" in infos["dataset"].choices  # from the registries
    assert config.option_help("lr") == infos["lr"].help
    with pytest.raises(config.ConfigError, match="did you mean 'lr'"):
        config.option_help("lrr")


def test_the_generated_page_lists_every_option_in_its_section():
    page = docs_options.render()
    rows = re.findall(r'^\| <span id="(\w+)"></span>`--(\w+)` \| `([^`]*)` \| `([^`]*)` \|', page, re.M)
    assert [r[0] for r in rows] == [r[1] for r in rows] == [o.name for o in config.iter_options()]
    for section in SECTIONS:
        assert f"\n## {section.__name__}\n" in page
        first = dataclasses.fields(section)[0].name
        assert page.index(f"## {section.__name__}") < page.index(f'<span id="{first}">')
    assert "| <span id=\"delta_t\"></span>`--delta_t` | `int` | `8` |  | window length" in page
    assert "`train`, `val`, `test`" in page  # choices of split
    assert "registered: `synthetic`" in page  # dataset: choices from the registry
    assert "`str | None`" in page  # a pipe inside a code span stays one cell (Python-Markdown tables)
    assert "&lt;dir_log&gt;/&lt;name&gt;" in page  # angle brackets escaped, not taken for HTML
    assert "--config" in page.split("## RunOptions")[0]  # the header says how options are given


def test_an_option_without_help_stops_the_page():
    @dataclasses.dataclass
    class Extra:
        """A section for this test."""

        documented: int = dataclasses.field(default=1, metadata={"help": "an option with a meaning"})
        bare: int = 2
        echo: int = dataclasses.field(default=3, metadata={"help": "echo"})

    options = [
        config.OptionInfo(Extra, f.name, str(f.type), f.default, None, str(f.metadata.get("help", "")))
        for f in dataclasses.fields(Extra)
    ]
    assert docs_options.missing_help(options) == ["bare", "echo"]
    with pytest.raises(ValueError, match=r"2 option\(s\) without a help text: bare, echo"):
        docs_options.render(options)


def test_help_text_reaches_the_command_line_help(capsys):
    with pytest.raises(SystemExit):
        config.parse_config(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--lr LR learning rate after the warm-up (default: 0.001)" in out
    assert "rule normal_percentile: the percentile of scores" in out  # a help with no % left unescaped
