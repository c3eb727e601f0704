"""The README's commands fit the configs they name, and documented option values match the code."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from config import load_config
from models.classifier import SUPPORTED_T

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    """Shell commands of the fenced blocks, continuation lines joined."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    return [c.strip() for c in "\n".join(lines).replace("\\\n", " ").splitlines() if c.strip()]


def _norm(path: str) -> str:
    return os.path.normpath(path)


def test_readme_generates_the_folders_its_configs_read():
    """A README command that uses a synthetic config without --root_synthetic needs that folder generated."""
    commands = _commands((ROOT / "README.md").read_text())
    written = {
        _norm(m.group(1))
        for c in commands
        if "dataset.generate_synthetic" in c
        for m in [re.search(r"--out (\S+)", c)]
        if m
    }
    assert _norm("data/synthetic/paper_exp1") in written and _norm("data/synthetic/small") in written
    checked = 0
    for c in commands:
        m = re.search(r"--config (configs/[\w.-]+\.yaml)", c)
        if not m or "--root_synthetic" in c:
            continue
        cfg = load_config(ROOT / m.group(1))
        if cfg.dataset != "synthetic":
            continue
        checked += 1
        assert _norm(cfg.root_synthetic) in written, f"{c}: reads {cfg.root_synthetic}, which no README command writes"
    assert checked >= 3  # quickstart runs and the torchrun example with synthetic_paper_exp1.yaml


@pytest.mark.parametrize("name", ["synthetic_paper_exp1", "synthetic_small", "synthetic_tiny"])
def test_data_presets_name_the_command_that_writes_their_folder(name):
    """Each data preset's header (or the README) generates exactly the folder it reads."""
    path = ROOT / "configs" / f"{name}.yaml"
    root = _norm(load_config(path).root_synthetic)
    texts = [path.read_text(), (ROOT / "README.md").read_text()]
    outs = {_norm(o) for t in texts for o in re.findall(r"generate_synthetic[^\n]*?--out (\S+)", t)}
    preset = name.removeprefix("synthetic_").replace("_", "-")
    if preset in ("small", "paper-exp1"):
        assert root in outs, f"{path.name} reads {root}; the documented commands write {sorted(outs)}"


def test_delta_t_values_are_documented_as_the_classifier_takes_them():
    """README and ARCHITECTURE list the delta_t values the classifier (and the config) accept."""
    listed = ", ".join(map(str, SUPPORTED_T[:-1])) + f" or {SUPPORTED_T[-1]}"
    for doc in ("README.md", "docs/ARCHITECTURE.md"):
        text = " ".join((ROOT / doc).read_text().split())
        assert re.search(rf"`delta_t`[^.]*takes {re.escape(listed)}", text) or (
            "Window length" in text and listed in text
        ), f"{doc} does not list {listed}"
    for t in SUPPORTED_T:
        assert load_config(overrides={"delta_t": t}).delta_t == t
    for t in (1, 3, 6, 64):
        with pytest.raises(ValueError, match="delta_t"):
            load_config(overrides={"delta_t": t})
