"""Read the authors' published ``config.pkl`` files without trusting them.

Each released model ships its configuration as a pickled ``argparse.Namespace``.
``pickle.load`` would run whatever callable the file names, so a downloaded file
is read with a restricted unpickler: the only globals it may name are
``argparse.Namespace`` and what pickle protocols 0-3 need to rebuild one of plain values
(the ``copyreg`` helper, ``set``, ``frozenset``); every other global is refused, by name,
before anything is called. Values must be plain builtins (None, bool, int, float, str,
list, tuple, dict, set).

The published option names are this project's ``config.py`` names, so the mapping
is mostly one to one; types are converted (tuples, lists of tuples, years as
strings), options without effect here are kept and reported, options this project
does not know are dropped and reported. ``dataset`` (not a published option) is
inferred from the variable names, see :func:`infer_dataset`.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

from dataset.variables import VARIABLES_BY_DATASET
from utils.errors import ConfigError

# Published options that ``config.py`` keeps for compatibility but that change nothing here.
NO_EFFECT = {
    "gpu_id": "devices come from CUDA_VISIBLE_DEVICES / torchrun / --device",
    "is_shuffle": "unused by the published loader as well",
    "lambda_ortho": "no quantizer here has an orthogonal regularisation loss",
}
# Published options that describe the authors' machine, not the model: not taken from a config.pkl.
MACHINE_SPECIFIC = {
    "n_workers": "data-loading processes for the authors' machine; set --n_workers for this one",
}
# Published name -> our name, where they differ (none known so far; kept as the one place to add them).
RENAMED: dict[str, str] = {}

_PLAIN = (type(None), bool, int, float, complex, str, bytes)
# Protocols 0-3 rebuild sets by calling these; lists, tuples and dicts have opcodes of their own.
# Nothing else is callable: ``bytearray(10**12)`` would let 20 bytes of pickle allocate a terabyte.
_BUILTINS = {"set": set, "frozenset": frozenset}


class PublishedConfigError(ConfigError):
    """The file is not a published configuration this project can read safely."""


def _reconstruct(cls: Any, base: Any, state: Any) -> Any:
    """Protocol 0/1 form of ``Namespace()``: allow only that exact call."""
    if cls is not argparse.Namespace or base is not object or state is not None:
        raise PublishedConfigError(f"refused copyreg._reconstructor({cls!r}, {base!r}, {state!r})")
    return argparse.Namespace()


class _SafeUnpickler(pickle.Unpickler):
    """Resolve only the globals a pickled Namespace of plain values needs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("argparse", "Namespace"):
            return argparse.Namespace
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if (module, name) in (("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor")):
            return _reconstruct
        if module in ("builtins", "__builtin__") and name == "object":
            return object  # only reachable as _reconstruct's ``base`` argument, which is checked
        raise PublishedConfigError(
            f"refused global '{module}.{name}': a published config may only hold argparse.Namespace "
            "and plain values (the file is not a published config, or it was tampered with)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise PublishedConfigError("refused a persistent id: a published config holds plain values only")


def _check_plain(value: Any, where: str, seen: set[int] | None = None) -> None:
    """Walk containers once each (``seen``): shared references must not make the walk exponential."""
    if isinstance(value, _PLAIN):
        return
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, (list, tuple, set, frozenset)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]", seen)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(k, f"{where} key", seen)
            _check_plain(v, f"{where}[{k!r}]", seen)
        return
    raise PublishedConfigError(f"option '{where}' holds a {type(value).__name__}; expected plain values")


def load_namespace(path: str | Path) -> dict[str, Any]:
    """Safely unpickle a published config and return its options (published names, raw values)."""
    path = Path(path)
    data = path.read_bytes()
    if data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise PublishedConfigError(f"{path} is an HTML page (a failed download?), not a pickled config")
    try:
        obj = _SafeUnpickler(io.BytesIO(data)).load()
    except PublishedConfigError as err:
        raise PublishedConfigError(f"{path}: {err}") from None
    except Exception as err:  # truncated or not a pickle at all
        raise PublishedConfigError(f"{path} is not a readable pickle: {type(err).__name__}: {err}") from None
    if isinstance(obj, argparse.Namespace):
        options = dict(vars(obj))
    elif isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        options = dict(obj)
    else:
        raise PublishedConfigError(f"{path} holds a {type(obj).__name__}, expected an argparse.Namespace")
    try:
        seen: set[int] = set()
        for key, val in options.items():
            _check_plain(val, key, seen)
    except RecursionError:
        raise PublishedConfigError(f"{path}: values nested too deeply for a config") from None
    return options


def infer_dataset(options: dict[str, Any]) -> str | None:
    """Guess ``dataset`` from the variable names (published configs do not store it).

    Synthetic variables are ``var_01``..; ERA5-Land and CERRA share some names (t2m, sp, tp,
    skt), so a list of only shared names is ambiguous and gives None (the test scripts set
    ``dataset`` themselves anyway).
    """
    if isinstance(options.get("dataset"), str):
        return options["dataset"]
    variables = options.get("variables")
    if not isinstance(variables, (list, tuple)) or not all(isinstance(v, str) for v in variables):
        return None  # malformed: config.coerce names the problem in one line
    names = set(variables)
    if not names:
        return None
    hits = [ds for ds, known in VARIABLES_BY_DATASET.items() if names <= set(known)]
    return hits[0] if len(hits) == 1 else None


def _convert(name: str, value: Any) -> Any:
    """Published value -> a value ``config.coerce`` accepts (it types and checks every value)."""
    if name == "gpu_id" and isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if name.startswith("years_") and isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


# Options this project added whose published behaviour was hard-wired: a published config
# means the published recipe (class weighting, initialisation, full-size training samples, the
# full anomaly loss from the first epoch) and its float32 numerics: the released weights were
# trained and evaluated without autocast, and bf16 moves their logits by ~1 and flips quantizer
# flags near zero (``--amp auto`` would use bf16 on a GPU).
PUBLISHED_ONLY: dict[str, Any] = {
    "loss_weighting": "published", "init": "published", "train_crop": 0,
    "lambda_anomaly_warmup_epochs": 0, "amp": "none",
}


def read_published_config(path: str | Path, quiet: bool = False,
                          known: Collection[str] | None = None) -> dict[str, Any]:
    """Published ``config.pkl`` -> ``{our option: value}`` for ``config.load_config`` (which types them).

    Options with no effect here are kept and listed on stderr; options outside ``known`` (the
    configuration's names) are dropped and listed on stderr (``quiet`` silences both).
    """
    path = Path(path)
    options = load_namespace(path)
    out: dict[str, Any] = {}
    unknown: list[str] = []
    machine: list[str] = []
    for pub_name, value in options.items():
        name = RENAMED.get(pub_name, pub_name)
        if name in MACHINE_SPECIFIC:
            machine.append(f"{pub_name} {value!r} ({MACHINE_SPECIFIC[name]})")
            continue
        if known is not None and name not in known:
            unknown.append(pub_name)
            continue
        out[name] = _convert(name, value)
    for name, value in PUBLISHED_ONLY.items():  # options the published code had fixed, not as options
        out.setdefault(name, value)
    dataset = infer_dataset(options)
    if dataset is not None:
        out["dataset"] = dataset
    if not quiet:
        kept = [n for n in NO_EFFECT if n in out]
        if kept:
            why = "; ".join(f"{n}: {NO_EFFECT[n]}" for n in kept)
            print(f"warning: {path}: published options kept but without effect here: {why}", file=sys.stderr)
        if machine:
            print(
                f"warning: {path}: published options of the authors' machine, not taken (this one has "
                f"{os.cpu_count()} CPUs): " + "; ".join(machine),
                file=sys.stderr,
            )
        if unknown:
            print(
                f"warning: {path}: published options unknown to this project, dropped: "
                + ", ".join(sorted(unknown)),
                file=sys.stderr,
            )
        if dataset is None:
            print(
                f"warning: {path}: cannot tell the dataset from 'variables'; the entry point sets it",
                file=sys.stderr,
            )
    return out

