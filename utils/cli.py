"""What every ``train_*`` / ``test_*`` entry script does: parse options, call the run API, report.

The scripts differ only in the dataset family they default to (and the baseline shortcuts in
the group of methods they accept: ``MethodSpec.family``); bad input ends as
``<script>: error: ...`` with exit code 2.
"""

from __future__ import annotations

import os

from config import Config, parse_config
from dataset.families import dataset_family
from models.methods import METHODS, method_spec
from utils import run
from utils.errors import UserError
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
    if group is not None and method_spec(cfg.method).family != group:
        names = [n for n in METHODS.names() if method_spec(n).family == group]
        exit_with_error(prog, ValueError(
            f"option 'method': {prog} runs {', '.join(names)}; got {cfg.method!r} (pass --method NAME)"
        ))
    return cfg


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
