"""What every ``train_*`` / ``test_*`` entry script does: parse options, call the run API, report.

The scripts differ only in the dataset family they default to (and the baseline shortcuts in
the group of methods they accept: ``MethodSpec.family``); bad input ends as
``<script>: error: ...`` with exit code 2.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from config import Config, file_dataset, ignored_options, parse_config, parse_overrides
from dataset.families import dataset_family
from models.methods import METHODS, method_spec
from utils import run
from utils.errors import ConfigError, UserError
from utils.logging import exit_with_error
from utils.tables import method_label

__all__ = ["train_main", "test_main"]


def _config(argv: list[str] | None, dataset: str, doc: str, group: str | None, prog: str) -> Config:
    try:
        family = dataset_family(dataset)
    except UserError as err:
        exit_with_error(prog, err)
    cfg = parse_config(argv, description=doc.strip().split("\n")[0], defaults_file=family.preset,
                       fixed={"dataset": dataset})
    given = parse_overrides(sys.argv[1:] if argv is None else argv)
    try:
        _check_file_dataset(given, dataset, prog)
    except UserError as err:
        exit_with_error(prog, err)
    if int(os.environ.get("RANK", "0")) == 0:
        for message in ignored_options(cfg, [k for k in given if k != "config"]):
            print(f"{prog}: warning: {message}", file=sys.stderr)
    if group is not None and method_spec(cfg.method).family != group:
        names = [n for n in METHODS.names() if method_spec(n).family == group]
        exit_with_error(prog, ValueError(
            f"option 'method': {prog} runs {', '.join(names)}; got {cfg.method!r} (pass --method NAME)"
        ))
    return cfg


def _check_file_dataset(given: dict[str, Any], dataset: str, prog: str) -> None:
    """A ``--config`` file of another dataset family (a run's config.yaml given to another family's script)
    is refused: the script would replace its ``dataset`` and read its variables and paths as this family's."""
    path = given.get("config")
    if path is None or "dataset" in given:
        return
    named = file_dataset(path)
    if named is not None and named != dataset:
        kind = "test" if "test" in prog else "train"
        raise ConfigError(
            f"config file {path} is for dataset {named!r} (its 'dataset' option) but {prog} runs {dataset!r}: "
            f"use {kind}_{named}.py, or pass --dataset {dataset} to read that file's options for {dataset}"
        )


def train_main(argv: list[str] | None, *, dataset: str, prog: str, doc: str,
               group: str | None = None) -> int:
    """``python <prog> [--config FILE] [--<option> VALUE ...]``: train into ``<dir_log>/<name>/``."""
    cfg = _config(argv, dataset, doc, group, prog)
    try:
        run.train(cfg)
    except UserError as err:
        exit_with_error(prog, err)
    return 0


def test_main(argv: list[str] | None, *, dataset: str, prog: str, doc: str,
              group: str | None = None) -> int:
    """``python <prog> --config RUN/config.yaml --split test``: test a checkpoint, print its table."""
    cfg = _config(argv, dataset, doc, group, prog)
    try:
        metrics = run.evaluate(cfg, cfg.split)
    except UserError as err:
        exit_with_error(prog, err)
    if int(os.environ.get("RANK", "0")) == 0:
        family = dataset_family(cfg.dataset)
        print(f"{metrics['split']} split, {metrics['n_samples']} samples, checkpoint {metrics['checkpoint']}")
        print(family.report(method_label(cfg.to_dict(), metrics), metrics))
        saved = f" and {cfg.run_dir / f'drivers_{cfg.split}.nc'}" if cfg.save_predictions else ""
        print(f"wrote {cfg.run_dir / f'metrics_{cfg.split}.json'}{saved}")
    return 0
