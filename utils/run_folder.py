"""The run folder ``<dir_log>/<name>/``: what may be written where, and what a resume must match.

A fresh run refuses a folder that holds a run unless ``--overwrite true``; ``--resume true``
needs ``last.pth`` and options that build the same model. Test runs never touch
``config.yaml``; they write ``config_test_<split>.yaml``.
"""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.checkpoints import check_checkpoint_path, describe_mismatch, read_checkpoint
from utils.errors import CheckpointError
from utils.folders import unwritable
from utils.logging import RUN_FILES, RunFolderError, RunLogger

__all__ = [
    "load_checkpoint_dict",
    "versions",
    "run_dir_problem",
    "folder_problem",
    "check_output_folder",
    "check_run_dir",
    "clear_run_dir",
    "prepare_test_run",
    "find_eval_checkpoint",
    "best_checkpoint",
    "EVAL_ORDER",
    "STARTS_DIR",
    "REFIT_FILE",
    "log_config_changes",
    "check_resume_fits",
    "changed_options",
]


#: the folder of a run with ``restarts`` > 1 that holds one run folder per start (utils/restarts.py)
STARTS_DIR = "starts"
#: the classifier refit of the test checkpoint (utils/refit.py), which a test uses first
REFIT_FILE = "refit_model.pth"


def load_checkpoint_dict(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """One of our own checkpoints (a dict of tensors and plain values), loaded without running code."""
    ckpt = read_checkpoint(path, what)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise CheckpointError(f"{what} {path} is not a checkpoint of an IDEE run (no model_state_dict)")
    return ckpt


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
    }


def folder_problem(run: Path) -> str | None:
    """Why the run folder ``run`` (``<dir_log>/<name>``) cannot be made or written (None: it can).

    Checked before any data are loaded, so a ``--dir_log`` that names a file or a folder without
    write permission fails in one line instead of a traceback after minutes of loading.
    """
    blocked = unwritable(run)
    if blocked is None:
        return None
    where, why = blocked
    if where == run:
        if why == "permission denied":
            return f"cannot write in run folder {run} (permission denied); pick another --dir_log or --name"
        return f"run folder {run} is a file, not a folder; pick another --name or move that file"
    if why == "permission denied":
        return (f"option 'dir_log': cannot create the run folder {run} in {where} (permission denied); "
                "pass a --dir_log you can write to")
    return (f"option 'dir_log': {where} is a file, not a folder, so the run folder {run} cannot be made; "
            "pass a folder (or a path that does not exist yet) as --dir_log")


def check_output_folder(cfg: Any) -> None:
    """Raise :class:`RunFolderError` if a test could not write its outputs into ``cfg.run_dir``."""
    problem = folder_problem(Path(cfg.run_dir))
    if problem:
        raise RunFolderError(problem)


def run_dir_problem(cfg: Any) -> str | None:
    """Why training into ``cfg.run_dir`` must not start (None: it may), with what to pass instead."""
    run = Path(cfg.run_dir)
    problem = folder_problem(run)
    if problem:
        return problem
    if cfg.resume and cfg.overwrite:
        return "options 'resume' and 'overwrite' are both true; choose one"
    starts = run / STARTS_DIR
    resumable = (run / "last.pth").is_file() or (getattr(cfg, "restarts", 1) > 1 and starts.is_dir())
    existing = [f for f in RUN_FILES if (run / f).exists()] + (["starts/"] if starts.is_dir() else [])
    existing += sorted(p.name for p in run.glob("events.out.tfevents.*"))
    if cfg.resume:
        if resumable:
            return None
        if existing:  # a run that stopped before its first checkpoint
            return (f"--resume true but {run / 'last.pth'} does not exist: the run in {run} stopped before its "
                    "first checkpoint, so nothing was saved yet: use --overwrite true or another --name")
        return (f"--resume true but {run / 'last.pth'} does not exist (nothing was saved yet): train without "
                "--resume, or check --dir_log and --name")
    if existing and not cfg.overwrite:
        held = f"{', '.join(existing[:4])}{', ...' if len(existing) > 4 else ''}"
        if (run / "last.pth").is_file() or starts.is_dir():  # (starts: resumed with the run's --restarts)
            return (f"run folder {run} already holds a run ({held}); pass --resume true to continue it, "
                    "--overwrite true to replace it, or pick another --name")
        return (f"run folder {run} already holds a run that saved no checkpoint ({held}); pass --overwrite true "
                "to replace it or pick another --name")
    return None


def check_run_dir(cfg: Any) -> None:
    """Raise :class:`RunFolderError` if training into ``cfg.run_dir`` would overwrite or miss a run."""
    problem = run_dir_problem(cfg)
    if problem:
        raise RunFolderError(problem)


def clear_run_dir(run: Path) -> None:
    """``--overwrite true``: remove the files of the previous run (and its now stale test outputs)."""
    patterns = [*RUN_FILES, "events.out.tfevents.*", "metrics_*.json", "drivers_*.nc", "config_test_*.yaml"]
    for pattern in patterns:
        for p in run.glob(pattern):
            if p.is_file():
                p.unlink()
    if (run / STARTS_DIR).is_dir():  # the previous run's starts
        shutil.rmtree(run / STARTS_DIR)


def prepare_test_run(cfg: Any, split: str | None = None) -> Path:
    """Create the run folder if needed and save the test config as ``config_test_<split>.yaml``."""
    from config import save_config

    split = split or cfg.split
    run = Path(cfg.run_dir)
    check_output_folder(cfg)
    return save_config(cfg, run / f"config_test_{split}.yaml")  # makes the folder; an OSError is a StorageError


def find_eval_checkpoint(cfg: Any) -> Path:
    """``cfg.checkpoint`` or, in the run folder, the first of :data:`EVAL_ORDER` it holds."""
    if cfg.checkpoint:
        return check_checkpoint_path(cfg.checkpoint, "option 'checkpoint':")
    found = best_checkpoint(cfg.run_dir)
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {cfg.run_dir}; train first or pass --checkpoint PATH")
    return found


#: which checkpoint of a run a test uses when none is named: the classifier refit, drivers, extremes, loss, last
EVAL_ORDER = (REFIT_FILE, "best_driver_F1_model.pth", "best_F1_model.pth", "best_loss_model.pth", "last.pth")


def best_checkpoint(run_dir: str | Path, refit: bool = True) -> Path | None:
    """The first of :data:`EVAL_ORDER` that the run folder holds (None: no checkpoint yet); a refit
    counts only while it is the refit of the checkpoint now in its source file (``refit`` False:
    never, i.e. the checkpoint a refit is made from)."""
    run = Path(run_dir)
    return next((run / name for name in EVAL_ORDER
                 if (run / name).is_file() and (name != REFIT_FILE or (refit and refit_is_current(run)))), None)


def refit_is_current(run: Path) -> bool:
    """False when training went on after the refit and changed the checkpoint it was made from."""
    record = load_checkpoint_dict(run / REFIT_FILE, "classifier refit").get("refit") or {}
    source = run / str(record.get("source", ""))
    return (source.name != REFIT_FILE and source.is_file()
            and int(load_checkpoint_dict(source)["epoch"]) + 1 == record.get("source_epoch"))


def _config_changes(cfg: Any, saved: dict[str, Any]) -> list[str]:
    now = cfg.to_dict()
    # where the folder is does not change the run (utils/restarts.py continues a start in another folder)
    ignored = ("resume", "overwrite", "name", "dir_log")
    changed = [k for k in now if k not in ignored and k in saved and saved[k] != now[k]]
    return [f"{k} ({saved[k]!r} -> {now[k]!r})" for k in changed]


def log_config_changes(cfg: Any, saved: dict[str, Any], log: RunLogger) -> None:
    changed = _config_changes(cfg, saved)
    if changed:
        log.warning("config differs from the run's config.yaml in: " + ", ".join(changed))


def changed_options(cfg: Any, state: dict[str, Any]) -> str:
    changed = [c for c in _config_changes(cfg, state.get("config") or {}) if not c.startswith("n_epochs ")]
    return f"options changed since the run started: {', '.join(changed[:6])}; " if changed else ""


def check_resume_fits(cfg: Any, model: nn.Module, state: dict[str, Any]) -> None:
    """A resume with options that build another model fails in one line naming the changed options."""
    mismatch = describe_mismatch(model.state_dict(), state["model_state_dict"])
    if mismatch:
        raise CheckpointError(
            f"--resume true: {Path(cfg.run_dir) / 'last.pth'} does not fit the model these options build "
            f"({mismatch}); {changed_options(cfg, state)}resume with the run's own options or train under "
            "a new --name"
        )
