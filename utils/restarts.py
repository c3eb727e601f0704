"""Best of several starts: train a few random starts briefly, continue the one that validates best.

Why: on benchmarks with the paper's event sizes a run's outcome is mostly set by its random
start. A start that has switched whole driver variables off, or whose extreme head has not
fired, by the time the anomaly prior fades rarely recovers (docs/results/paper-size.md).
With ``restarts: K`` the run trains the starts of seeds ``seed``, ``seed + 1``, ...,
``seed + K - 1`` for ``restart_epochs`` epochs each, on the full run's schedule, keeps the
start with the best validation score and continues it to ``n_epochs``. That costs
``(K - 1) x restart_epochs`` epochs more than one run and ends exactly where a single run of
the chosen seed ends (resume is bitwise exact).

The score is the one the test's checkpoint is chosen by (``utils.run_folder.EVAL_ORDER``):
the best validation driver F1 so far, else extreme F1, else the lowest loss.

With ``restart_keep: k`` (> 1) the best k starts are continued to ``n_epochs``, each in its own
folder, and the one with the best validation score at the end becomes the run: the choice
after ``restart_epochs`` is noisy (on paper-size events the second-best start at epoch 6 was
the better run at the end on data seed 71 and far worse on seed 72), the choice at the end is
the one the test makes anyway. It costs ``(k - 1) x (n_epochs - restart_epochs)`` epochs more.

Run folder ``<dir_log>/<name>/``::

    starts/seed_<s>/   one run folder per start (its own train.log and checkpoints)
    starts.json        every start's best validation scores and the choice (with restart_keep > 1:
                       ``kept``, the starts continued, and ``continued``, their scores at the end)
    ...                the chosen start's files, continued to n_epochs
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import nn
from torch.utils.data import Dataset

from config import save_config
from utils import engine
from utils.checkpoints import write_atomic
from utils.distributed import barrier, is_main
from utils.errors import ConfigError
from utils.logging import RunFolderError
from utils.run_folder import STARTS_DIR, clear_run_dir, load_checkpoint_dict, run_dir_problem
from utils.runtime import seed_everything

__all__ = ["STARTS_FILE", "check_restarts", "selection", "fit_best_start"]

STARTS_FILE = "starts.json"
T = TypeVar("T")
#: validation scores a start is chosen by, in the order the test picks its checkpoint (higher is better
#: except for the loss)
SCORE_ORDER = (("driver_F1", False), ("F1", False), ("loss", True))
RESUME = "free space, then run the same command with --resume true (the finished starts are kept)"


def check_restarts(cfg: Any) -> None:
    """Bad ``restarts`` / ``restart_epochs`` fail in one line before anything trains."""
    if cfg.restarts < 1:
        raise ConfigError(f"option 'restarts' is {cfg.restarts}; use 1 (one start) or more")
    if cfg.restarts > 1 and not 1 <= cfg.restart_epochs < cfg.n_epochs:
        raise ConfigError(
            f"option 'restart_epochs' is {cfg.restart_epochs} with n_epochs {cfg.n_epochs}; the starts must "
            f"train at least 1 epoch and fewer than n_epochs (e.g. restart_epochs {max(1, cfg.n_epochs // 4)})"
        )
    if not 1 <= cfg.restart_keep <= cfg.restarts:
        raise ConfigError(
            f"option 'restart_keep' is {cfg.restart_keep} with restarts {cfg.restarts}; continue 1 to "
            f"{cfg.restarts} of the starts"
        )


def selection(bests: list[dict[str, dict[str, Any]]]) -> tuple[int, str]:
    """The index of the start to continue and the score it was chosen by (the first start on ties).

    ``bests``: each start's ``best`` dict (``{"driver_F1": {"value", "epoch"}, ...}``).
    """
    for key, lower in SCORE_ORDER:
        values = [(b.get(key) or {}).get("value") for b in bests]
        if all(v is not None for v in values):
            sign = -1.0 if lower else 1.0
            return max(range(len(values)), key=lambda i: (sign * values[i], -i)), key
    raise ValueError("no validation score common to every start (driver_F1, F1 or loss)")


def _start_cfg(cfg: Any, seed: int) -> Any:
    """The options of the start of ``seed``: its own folder, resumed when it has a checkpoint (a start
    interrupted before its first checkpoint is begun again)."""
    folder = Path(cfg.run_dir) / STARTS_DIR / f"seed_{seed}"
    resume = (folder / "last.pth").is_file()
    return dataclasses.replace(cfg, seed=seed, dir_log=str(folder.parent), name=folder.name, restarts=1,
                               resume=resume, overwrite=folder.exists() and not resume)


def _parse_record(path: Path, read: Callable[[dict[str, Any]], T], option: str, fix: str) -> T:
    """``read`` applied to ``starts.json``. A missing, non-JSON or incomplete file becomes one
    ``RunFolderError`` that names ``option``, the file, the parser's complaint and ``fix``."""
    try:
        return read(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RunFolderError(f"{option}: {path} is missing or unreadable ({err}); {fix}") from None


def _read_record(run: Path, kept: bool = False) -> dict[str, Any]:
    """``starts.json`` of an interrupted run whose chosen start (``kept``: whose kept starts) was being
    continued."""
    def checked(record: dict[str, Any]) -> dict[str, Any]:
        if kept:
            [int(r["seed"]) for r in record["starts"]]
        else:
            int(record["chosen_seed"])
        return record

    what = "which starts it kept" if kept else "which start it continued"
    return _parse_record(run / STARTS_FILE, checked, "--resume true",
                         f"the run cannot tell {what}: train it again with --overwrite true")


def other_kept_starts(run: Path) -> list[Path]:
    """The folders of the starts that ``restart_keep`` continued to the end besides the chosen one
    (``starts/seed_S``, in the order of ``starts.json``); none when the run continued one start or
    was trained without restarts (no ``starts.json``)."""
    path = run / STARTS_FILE
    if not path.exists():
        return []

    def seeds(record: dict[str, Any]) -> tuple[int | None, list[int]]:
        chosen = record["chosen_seed"]  # null: written before the kept starts were continued
        return None if chosen is None else int(chosen), [int(seed) for seed in record.get("kept", [])]

    chosen, kept = _parse_record(path, seeds, "option 'ensemble_starts'", "the run's record of its starts is "
                                 "damaged: train it again with --overwrite true, or use --ensemble_starts false")
    if chosen is None:
        raise RunFolderError(f"option 'ensemble_starts': {path} says the run's training has not chosen its "
                             "start yet: finish it with --resume true, or use --ensemble_starts false")
    return [run / STARTS_DIR / f"seed_{seed}" for seed in kept if seed != chosen]


def _copy_start(src: Path, run: Path) -> None:
    """The chosen start's checkpoints, log and TensorBoard events into the run folder (not its config).

    Each file is copied under a temporary name and renamed, ``last.pth`` last: a run folder with a
    ``last.pth`` always holds the whole start, so an interrupted copy is simply done again on resume.
    """
    files = [f for f in src.iterdir() if f.is_file() and f.name != "config.yaml"]
    for f in sorted(files, key=lambda f: (f.name == "last.pth", f.name)):
        tmp = run / f".{f.name}.copy"
        shutil.copy2(f, tmp)
        os.replace(tmp, run / f.name)


def _become_run(cfg: Any, record: dict[str, Any], chosen: int) -> None:
    """Write the choice to ``starts.json``, the options to ``config.yaml`` and the chosen start's files
    into the run folder (rank 0; every rank waits)."""
    run = Path(cfg.run_dir)
    if is_main():
        write_atomic(run / STARTS_FILE, json.dumps(record, indent=1).encode(), then=RESUME)
        save_config(cfg, run / "config.yaml")
        _copy_start(Path(_start_cfg(cfg, chosen).run_dir), run)
    barrier()


def fit_best_start(
    cfg: Any,
    build: Callable[[Any], nn.Module],
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: engine.CollectorsFactory | None = None,
    *,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``cfg.restarts`` starts for ``cfg.restart_epochs`` epochs, continue the best to ``cfg.n_epochs``.

    ``build(cfg)`` makes a fresh model; it is called right after ``seed_everything(start seed)``,
    as a single run of that seed would build it. Returns what :func:`utils.engine.fit` returns for
    the continued run, plus ``starts`` (the record written to ``starts.json``).
    """
    check_restarts(cfg)
    problem = run_dir_problem(cfg)
    if problem:
        raise RunFolderError(problem)
    run = Path(cfg.run_dir)
    if cfg.resume and (run / "last.pth").is_file():  # the chosen start was being continued
        record = _read_record(run)
        cont = dataclasses.replace(cfg, seed=int(record["chosen_seed"]), restarts=1, overwrite=False)
        # the weights and every RNG state come from last.pth
        out = engine.fit(cont, build(cont), train_set, val_set, collectors_factory)
        return {**out, "starts": record}
    if is_main():
        run.mkdir(parents=True, exist_ok=True)
        if cfg.overwrite:
            clear_run_dir(run)
    barrier()

    if cfg.resume and cfg.restart_keep > 1 and (run / STARTS_FILE).is_file():
        # the kept starts were being continued: their scores after restart_epochs are in the record
        record = _read_record(run, kept=True)
        return _fit_kept_starts(cfg, build, train_set, val_set, collectors_factory, record["starts"], log)
    bests, rows = [], []
    for seed in range(cfg.seed, cfg.seed + cfg.restarts):
        start = _start_cfg(cfg, seed)
        last = Path(start.run_dir) / "last.pth"
        state = load_checkpoint_dict(last, "start checkpoint") if start.resume else None
        if state is not None and int(state["epoch"]) + 1 >= cfg.restart_epochs:
            best = state["best"]  # this start finished before the run was interrupted
        else:
            log(f"start {seed - cfg.seed + 1}/{cfg.restarts}: seed {seed}, {cfg.restart_epochs} of "
                f"{cfg.n_epochs} epochs into {start.run_dir}")
            seed_everything(seed)
            best = engine.fit(start, build(start), train_set, val_set, collectors_factory,
                              stop_epoch=cfg.restart_epochs)["best"]
        bests.append(best)
        rows.append({"seed": seed, "best": best})
    if cfg.restart_keep > 1:
        return _fit_kept_starts(cfg, build, train_set, val_set, collectors_factory, rows, log)
    index, key = selection(bests)
    chosen = cfg.seed + index
    record = {"chosen_seed": chosen, "chosen_by": key, "restart_epochs": cfg.restart_epochs, "starts": rows}
    scores = ", ".join(f"seed {r['seed']} {r['best'][key]['value']:.4f}" for r in rows)
    log(f"starts: best validation {key} {scores}; continuing seed {chosen} to epoch {cfg.n_epochs}")
    _become_run(cfg, record, chosen)
    cont = dataclasses.replace(cfg, seed=chosen, restarts=1, resume=True, overwrite=False)
    out = engine.fit(cont, build(cont), train_set, val_set, collectors_factory)
    return {**out, "starts": record}


def _fit_kept_starts(
    cfg: Any,
    build: Callable[[Any], nn.Module],
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: engine.CollectorsFactory | None,
    rows: list[dict[str, Any]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Continue the ``restart_keep`` best starts to ``n_epochs`` in their folders; the best at the end
    becomes the run. ``rows``: every start's seed and its bests after ``restart_epochs``."""
    run = Path(cfg.run_dir)
    order, key = [], None
    remaining = list(rows)
    while remaining and len(order) < cfg.restart_keep:  # rank by the score the test would choose by
        index, key = selection([r["best"] for r in remaining])
        order.append(int(remaining.pop(index)["seed"]))
    record: dict[str, Any] = {"chosen_seed": None, "chosen_by": key, "restart_epochs": cfg.restart_epochs,
                              "starts": rows, "kept": order}
    if is_main():
        write_atomic(run / STARTS_FILE, json.dumps(record, indent=1).encode(), then=RESUME)
    barrier()
    scores = ", ".join(f"seed {r['seed']} {r['best'][key]['value']:.4f}" for r in rows)
    log(f"starts: best validation {key} {scores}; continuing seeds {', '.join(map(str, order))} to epoch "
        f"{cfg.n_epochs}")
    outs = []
    for seed in order:
        start = dataclasses.replace(_start_cfg(cfg, seed), resume=True, overwrite=False)
        outs.append(engine.fit(start, build(start), train_set, val_set, collectors_factory))
    index, final_key = selection([o["best"] for o in outs])
    chosen = order[index]
    record.update(chosen_seed=chosen, chosen_by=final_key,
                  continued=[{"seed": s, "best": o["best"]} for s, o in zip(order, outs)])
    ends = ", ".join(f"seed {s} {o['best'][final_key]['value']:.4f}" for s, o in zip(order, outs))
    log(f"kept starts at epoch {cfg.n_epochs}: best validation {final_key} {ends}; the run is seed {chosen}")
    _become_run(cfg, record, chosen)
    return {**outs[index], "run_dir": str(run), "starts": record}
