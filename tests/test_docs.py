"""The documentation's commands fit the code: every train/test command parses, documented values and
folders match the configs, and the pages state findings with dates, not a diary."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from config import load_config, parse_config
from dataset.families import dataset_family
from models.classifier import SUPPORTED_T

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]

# entry script -> dataset family it fixes (the Baselines_* entries are shortcuts for the synthetic ones)
SCRIPT = re.compile(r"(?:^|/)(train|test)_(synthetic|ERA5_Land|CERRA|datacube)\.py$")
MODULE = re.compile(r"^Baselines_\w+\.(train|test)_\w+$")
FAMILY = {"synthetic": "synthetic", "ERA5_Land": "ERA5_Land", "CERRA": "CERRA", "datacube": "datacube"}


def _blocks(text: str) -> list[str]:
    """Code blocks of a Markdown page: fenced ones and 4-space-indented ones."""
    blocks, current, fenced = [], [], False
    for line in text.splitlines() + [""]:
        if line.lstrip().startswith("```"):
            if fenced:
                blocks.append("\n".join(current))
                current = []
            fenced = not fenced
        elif fenced:
            current.append(line)
        elif line.startswith("    ") and line.strip():
            current.append(line[4:])
        elif current and not line.strip():
            blocks.append("\n".join(current))
            current = []
        elif current:
            current = []  # an indented list continuation, not a code block
    return blocks


def _commands(block: str) -> list[str]:
    """Shell commands of one block, continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(re.sub(r"\s+#\s.*$", "", line))
    return out


def _entry_commands() -> list[tuple[str, str, str, list[str]]]:
    """(page, command, dataset family, argv) of every entry-script command in the docs and README."""
    found = []
    for page in PAGES:
        rel = str(page.relative_to(ROOT))
        for block in _blocks(page.read_text()):
            env: dict[str, str] = {}
            for cmd in _commands(block):
                assign = re.fullmatch(r'(\w+)="(.*)"', cmd)
                if assign:
                    env[assign.group(1)] = assign.group(2)
                    continue
                expanded = re.sub(r"\$\{?(\w+)\}?", lambda m, env=env: env.get(m.group(1), m.group(1)), cmd)
                expanded = re.sub(r"<[^>]*>", "X", expanded)  # <path to ...> placeholders
                try:
                    tokens = shlex.split(expanded)
                except ValueError:
                    continue
                tokens = [t.strip("[]") for t in tokens if t not in ("...", "[", "]", "&")]  # & : run in background
                tokens = [t for t in tokens if t]
                for i, tok in enumerate(tokens):
                    script = SCRIPT.search(tok)
                    module = MODULE.match(tok) if i and tokens[i - 1] == "-m" else None
                    if script:
                        family = FAMILY[script.group(2)]
                    elif module:
                        family = "synthetic"
                    else:
                        continue
                    if not any(t in ("python", "torchrun") or t.endswith("python") for t in tokens[:i]):
                        break
                    found.append((rel, cmd, family, tokens[i + 1 :]))
                    break
    return found


COMMANDS = _entry_commands()


def _argv(args: list[str]) -> list[str]:
    """Drop ``--config`` files that the docs create elsewhere (run folders, downloaded models)."""
    out, skip = [], False
    for i, tok in enumerate(args):
        if skip:
            skip = False
            continue
        if tok == "--config" and i + 1 < len(args) and not (ROOT / args[i + 1]).is_file():
            skip = True
            continue
        out.append(tok)
    return out


def test_the_docs_have_entry_commands_to_check():
    """The extraction finds the guides' commands (a broken extractor would check nothing)."""
    pages = {page for page, *_ in COMMANDS}
    assert len(COMMANDS) >= 40
    for page in ("README.md", "docs/guides/synthetic.md", "docs/guides/real-data.md",
                 "docs/guides/baselines.md", "docs/guides/datacube.md", "docs/guides/distributed-gpu.md"):
        if page != "README.md":
            assert page in pages, f"no train/test command found in {page}"


@pytest.mark.parametrize(("page", "command", "family", "args"), COMMANDS,
                         ids=[f"{p}:{c[:60]}" for p, c, _, _ in COMMANDS])
def test_every_documented_command_parses(page, command, family, args, monkeypatch, capsys):
    """Options exist and have valid values, as the entry script would parse them (nothing is trained)."""
    monkeypatch.chdir(ROOT)
    preset = dataset_family(family).preset
    try:
        parse_config(_argv(args), defaults_file=preset, fixed={"dataset": family})
    except SystemExit:
        pytest.fail(f"{page}: `{command}` does not parse: {capsys.readouterr().err.strip()}")


NARRATIVE = re.compile(r"\b(sessions?|today|earlier|now|are new|this branch|as before)\b", re.IGNORECASE)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_pages_state_dates_not_a_diary(page):
    """No internal work periods and no relative time: a reader needs dates and versions."""
    hits = [f"line {n}: {line.strip()}" for n, line in enumerate(page.read_text().splitlines(), 1)
            if NARRATIVE.search(line)]
    assert not hits, f"{page.relative_to(ROOT)} uses narrative words (give a date or a commit):\n" + "\n".join(hits)


def _norm(path: str) -> str:
    return os.path.normpath(path)


def test_synthetic_configs_read_folders_the_docs_generate():
    """A documented command with a synthetic config and no --root_synthetic reads a folder some page generates."""
    commands = [c for page in PAGES for block in _blocks(page.read_text()) for c in _commands(block)]
    written = {_norm(m.group(1)) for c in commands if "dataset.generate_synthetic" in c
               for m in [re.search(r"--out (\S+)", c)] if m}
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
        assert _norm(cfg.root_synthetic) in written, (
            f"{c}: reads {cfg.root_synthetic}, which no documented command writes"
        )
    assert checked >= 3  # the quick-start runs, the tiny runs and the torchrun example with synthetic_paper_exp1.yaml


@pytest.mark.parametrize("name", ["synthetic_paper_exp1", "synthetic_small", "synthetic_tiny"])
def test_data_presets_name_the_command_that_writes_their_folder(name):
    """Each data preset's header (or the synthetic guide) generates exactly the folder it reads."""
    path = ROOT / "configs" / f"{name}.yaml"
    root = _norm(load_config(path).root_synthetic)
    texts = [path.read_text(), (ROOT / "docs/guides/synthetic.md").read_text()]
    outs = {_norm(o) for t in texts for o in re.findall(r"generate_synthetic[^\n]*?--out (\S+)", t)}
    assert root in outs, f"{path.name} reads {root}; the documented commands write {sorted(outs)}"


def test_delta_t_values_are_documented_as_the_classifier_takes_them():
    """The synthetic guide and the architecture page list the delta_t values the classifier (and the config) accept."""
    listed = ", ".join(map(str, SUPPORTED_T[:-1])) + f" or {SUPPORTED_T[-1]}"
    for doc in ("docs/guides/synthetic.md", "docs/design/architecture.md"):
        text = " ".join((ROOT / doc).read_text().split())
        assert re.search(rf"`delta_t`[^.]*takes {re.escape(listed)}", text) or (
            "Window length" in text and listed in text
        ), f"{doc} does not list {listed}"
    for t in SUPPORTED_T:
        assert load_config(overrides={"delta_t": t}).delta_t == t
    for t in (1, 3, 6, 64):
        with pytest.raises(ValueError, match="delta_t"):
            load_config(overrides={"delta_t": t})


def test_readme_keeps_the_two_commands_of_a_fresh_machine():
    """The README's first screen: exactly the quick start and the tests, then links into the docs."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in _blocks(text) if _commands(b)]
    assert [_commands(b) for b in blocks[:1]] == [["bash quickstart.sh", "bash run_tests.sh"]]
    assert sum(len(_commands(b)) for b in blocks) == 2
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists() or link in ("docs/reference/options.md", "docs/reference/cli.md",
                                                  "docs/reference/api.md"), f"README links to a missing {link}"
