"""The run API: train or evaluate any registered method on any registered dataset family.

    from config import load_config
    from utils import run

    cfg = load_config("configs/quickstart.yaml", {"method": "rtfm", "name": "rtfm_small"})
    result = run.train(cfg)                 # RunResult: run folder, best epochs, history
    metrics = run.evaluate(cfg, "test")     # the dict written to metrics_test.json

Entry scripts, baseline shortcuts, the table script and the tests all call these two
functions; they return values and raise exceptions (a :class:`~utils.errors.UserError` for
bad input, whenever it is found), and never exit the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset.crops import check_train_crop
from dataset.families import DatasetFamily, dataset_family
from models.build import load_checkpoint
from models.gate_trees import (
    GateRows,
    GateTrees,
    TreeGated,
    check_box,
    features_for,
    rows_model,
    variable_lift,
)
from models.methods import MethodSpec, method_spec
from utils import engine
from utils.checkpoints import write_atomic
from utils.distributed import cleanup
from utils.driver_gate import GateSetting, gate_spec
from utils.errors import ConfigError, UserError
from utils.logging import RERUN_TEST
from utils.refit import check_refit, refit_classifier
from utils.restarts import check_restarts, fit_best_start
from utils.run_folder import check_output_folder, check_run_dir, find_eval_checkpoint, prepare_test_run
from utils.runtime import seed_everything, setup_runtime

__all__ = ["RunResult", "SetupError", "train", "evaluate", "resolve"]


class SetupError(UserError, ValueError):
    """Bad options or data found before the first step (the message names the option or file)."""


@contextlib.contextmanager
def _setup_errors() -> Iterator[None]:
    """Option and data checks raise plain ValueError / FileNotFoundError: mark them as user errors."""
    try:
        yield
    except UserError:
        raise
    except (ValueError, FileNotFoundError, NotADirectoryError) as err:
        raise SetupError(str(err)) from None


@dataclass
class RunResult:
    """What a training run produced (the files are in ``run_dir``)."""

    run_dir: Path
    cfg: Any  # the configuration as trained (``spatial_anomaly: auto`` resolved)
    best: dict[str, dict[str, Any]]  # {"loss" | "F1" | "driver_F1": {"value", "epoch"}}
    history: list[dict[str, Any]]  # per epoch: {"epoch", "train": losses, "val": metrics}
    val: dict[str, Any]  # the last validation metrics


def resolve(cfg: Any) -> tuple[DatasetFamily, MethodSpec]:
    """The dataset family and method ``cfg`` names; checks the threshold rule fits the data."""
    family, spec = dataset_family(cfg.dataset), method_spec(cfg.method)
    if spec.scores and cfg.driver_threshold_rule not in family.threshold_rules(cfg):
        raise SetupError(
            f"option 'driver_threshold_rule': {cfg.driver_threshold_rule!r} needs the true drivers, which "
            f"these {family.name} data do not have; use {' or '.join(family.threshold_rules(cfg))}"
        )
    if cfg.driver_gate == "extreme":
        _check_gate(cfg, family, spec)
    return family, spec


def resolve_gate(cfg: Any, family: DatasetFamily, spec: MethodSpec, log: Callable[[str], None]) -> Any:
    """``cfg`` with ``driver_gate: auto`` made extreme or none, and the choice logged with its reason."""
    if cfg.driver_gate != "auto":
        return cfg
    why = _why_no_gate(cfg, family, spec)
    if why:
        log(f"driver_gate auto -> none: {why}")
        return dataclasses.replace(cfg, driver_gate="none")
    chosen = _chosen_on_val(cfg)
    log("driver_gate auto -> extreme: flags count where an extreme is predicted after them ("
        + (f"{' and '.join(chosen)} chosen on the validation split)" if chosen
           else f"threshold {cfg.driver_gate_threshold:g})"))
    cfg = dataclasses.replace(cfg, driver_gate="extreme")
    _check_gate(cfg, family, spec)
    return cfg


#: what the gate leaves to the validation split, and how to fix it instead
_GATE_FIXES = {"threshold": "give driver_gate_threshold", "window": "use driver_gate_window fixed"}


def _chosen_on_val(cfg: Any) -> list[str]:
    """What of the extreme gate the validation split chooses: ``threshold`` and/or ``window``."""
    free = {"threshold": cfg.driver_gate_threshold is None,
            "window": getattr(cfg, "driver_gate_window", "fixed") == "val"}
    return [what for what, is_free in free.items() if is_free]


def _why_no_gate(cfg: Any, family: DatasetFamily, spec: MethodSpec) -> str | None:
    """Why the extreme gate cannot apply to this method and these data (None: it can)."""
    if spec.family != "IDE" or spec.scores:
        return f"method {cfg.method!r} predicts no extreme map to gate by"
    if not family.driver_gate:
        return f"the {family.name} family writes its flags per window, without re-assembly"
    chosen = _chosen_on_val(cfg)
    if chosen and "val_f1" not in family.threshold_rules(cfg):
        return (f"these data have no true drivers to choose the {' and '.join(chosen)} on "
                f"({', '.join(_GATE_FIXES[what] for what in chosen)})")
    return None


def _check_gate(cfg: Any, family: DatasetFamily, spec: MethodSpec) -> None:
    """``driver_gate: extreme``: the gate applies here and its options are in range."""
    why = _why_no_gate(cfg, family, spec)
    if why:
        raise SetupError(f"option 'driver_gate': extreme cannot apply: {why}; use --driver_gate none")
    try:
        gate_spec(cfg)  # checks weeks and threshold
        if getattr(cfg, "driver_gate_model", "classifier") == "flag_trees":
            check_box(cfg.gate_trees_box)
        _check_gate_variables(cfg)
    except ValueError as err:
        raise SetupError(str(err)) from None


#: a split's dataset by name ("train", "val", "test"), as the family loads it for the run's options
Loader = Callable[[str], Any]


class _Splits:
    """The splits a test reads, each loaded once: the spatial-anomaly choice and the gate trees both read
    the training split, and the variable lifts, the gate and a scoring method's threshold all read the
    validation split. :meth:`drop` lets a split go once nothing reads it again (training splits are large).
    ``loaded`` hands over splits already in memory (training's augmented train split) by name."""

    def __init__(self, family: DatasetFamily, cfg: Any, **loaded: Any) -> None:
        self.family, self.cfg, self.loaded = family, cfg, dict(loaded)

    def __call__(self, split: str) -> Any:
        if split not in self.loaded:
            self.loaded[split] = self.family.load(self.cfg, split)
        return self.loaded[split]

    def drop(self, split: str) -> None:
        self.loaded.pop(split, None)


def _spatial_anomaly(cfg: Any, train: Loader, log: Callable[[str], None]) -> Any:
    """``cfg`` with ``spatial_anomaly`` auto resolved on the training split (a test run makes the choice
    its training made); ``train`` gives that split, called only when the choice is to be made."""
    from dataset.grid_signal import resolve_spatial_anomaly

    if cfg.spatial_anomaly != "auto":
        return cfg
    return resolve_spatial_anomaly(cfg, train("train"), log=log)


def train(cfg: Any, *, log: Callable[[str], None] = print) -> RunResult:
    """Train ``cfg.method`` on ``cfg.dataset`` into ``<dir_log>/<name>/`` (``--resume``/``--overwrite`` rules)."""
    try:
        with _setup_errors():  # everything that can be wrong before the first step
            family, spec = resolve(cfg)
            if spec.check_training is not None:
                spec.check_training(cfg)
            check_restarts(cfg)
            # before any data: loading a datacube writes its climatology cache into the run folder
            check_run_dir(cfg)
            setup_runtime(cfg)
            seed_everything(cfg.seed)
            train_set = family.load(cfg, "train", augment=True)
            val_set = family.load(cfg, "val")
            family.check(cfg, train_set, val_set)
            cfg = resolve_gate(_spatial_anomaly(cfg, _Splits(family, cfg, train=train_set), log), family, spec, log)
            model = _build_for_training(spec, cfg)
            check_refit(cfg, model)
            check_train_crop(cfg, train_set)

        def collectors(ds: Any) -> Any:
            return family.val_collectors(cfg, ds, drivers=not spec.scores)

        if cfg.restarts > 1:
            out = fit_best_start(cfg, lambda c: _build_for_training(spec, c), train_set, val_set, collectors, log=log)
        else:
            out = engine.fit(cfg, model, train_set, val_set, collectors)
        refit_classifier(cfg, lambda c: _build_for_training(spec, c), train_set, val_set, collectors)
    finally:
        cleanup()
    return RunResult(Path(out["run_dir"]), cfg, out["best"], out["history"], out["val"])


def _build_for_training(spec: MethodSpec, cfg: Any) -> Any:
    model = spec.build(cfg)
    if spec.scores:  # flags need a threshold chosen after training: validation scores extremes only
        model.scores_drivers_in_validation(False)
    return model


#: options an ensemble member must share with the tested run: its flags are united voxel by voxel, so
#: another variable order, window or crop would unite flags of different (variable, week, pixel)
MEMBER_OPTIONS = ("method", "dataset", "variables", "delta_t", "x_min", "x_max", "y_min", "y_max")


def _check_member(cfg: Any, folder: Path, option: str) -> None:
    """Refuse a member run trained on other variables, window or crop (its ``config.yaml``; a folder
    without one, e.g. copied checkpoints, is taken as it is)."""
    from config import read_options

    path = folder / "config.yaml"
    if not path.is_file():
        return
    try:
        saved = read_options(path)
    except ConfigError as err:
        raise ValueError(f"{option}: {err}; name a run folder that training wrote") from None
    ours = cfg.to_dict()
    differ = [k for k in MEMBER_OPTIONS if k in saved and k in ours
              and (list(saved[k]) if isinstance(saved[k], (list, tuple)) else saved[k])
              != (list(ours[k]) if isinstance(ours[k], (list, tuple)) else ours[k])]
    if differ:
        what = "; ".join(f"{k} {saved[k]} there, {ours[k]} here" for k in differ)
        raise ValueError(f"{option}: {folder} was trained with other options ({what}); its flags would be "
                         "united with this run's voxel by voxel: name runs trained with the same options")


def _ensemble(
    cfg: Any, spec: MethodSpec, model: Any, checkpoint: Path, log: Callable[[str], None]
) -> tuple[Any, list[str]]:
    """This run's model with the best checkpoints of the ``ensemble`` runs and, with ``ensemble_starts``,
    of the run's other kept starts, as one :class:`FlagEnsemble` (the model alone when there are none)."""
    from models.ensemble import FlagEnsemble
    from utils.restarts import other_kept_starts
    from utils.run_folder import best_checkpoint

    if spec.family != "IDE" or spec.scores:
        what = "ensemble" if cfg.ensemble else "ensemble_starts"
        raise ValueError(f"option '{what}': unites IDE runs' flags; method {cfg.method!r} is not one")
    folders = []
    for name in cfg.ensemble:
        if name == cfg.name:
            raise ValueError(f"option 'ensemble': {name!r} is this run; name the other runs only")
        folders.append((Path(cfg.dir_log) / name, "option 'ensemble'", "train that run first"))
    if cfg.ensemble_starts:
        if cfg.checkpoint:
            raise ValueError("option 'ensemble_starts' unites the run folder's kept starts, but --checkpoint names "
                             "another file: drop --checkpoint or use --ensemble_starts false")
        starts = other_kept_starts(Path(cfg.run_dir))
        folders += [(f, "option 'ensemble_starts'", "the run's training did not finish: resume it") for f in starts]
        if not starts:
            log("ensemble_starts: the run continued one start to the end (or trained without restarts); "
                "it is tested alone")
    members, paths = [model], [str(checkpoint)]
    for folder, option, fix in folders:
        found = best_checkpoint(folder)
        if found is None:
            raise FileNotFoundError(f"{option}: no checkpoint in {folder}; {fix}")
        _check_member(cfg, folder, option)
        member = spec.build(cfg)
        load_checkpoint(member, found)
        members.append(member)
        paths.append(str(found))
    if len(members) == 1:
        return model, paths
    log(f"ensemble of {len(members)} runs: flags united, extreme probabilities averaged ({', '.join(paths)})")
    return FlagEnsemble(members), paths


def calibrate_threshold(cfg: Any, model: Any, load: Loader, rt: Any) -> dict[str, Any]:
    """A scoring method's driver threshold from the validation split (never the test split)."""
    from utils.metrics import ScoreThreshold

    if cfg.driver_threshold_rule == "fixed":
        if cfg.driver_threshold is None:
            raise SetupError("option 'driver_threshold_rule' is fixed but 'driver_threshold' is not set")
        model.threshold = float(cfg.driver_threshold)
        return {"threshold": model.threshold, "rule": "fixed"}
    collector = ScoreThreshold(cfg.driver_threshold_rule, cfg.driver_threshold_percentile)
    val = load("val")
    res = engine.evaluate(cfg, model, val, [collector], runtime=rt, with_loss=False, desc="threshold on val")
    model.threshold = res["threshold"]["threshold"]
    return res["threshold"]


def _check_gate_variables(cfg: Any) -> None:
    """``driver_gate_variables trees`` needs the input trees and a lift of 1 (chance) or more."""
    if getattr(cfg, "driver_gate_variables", "all") == "all":
        return
    if getattr(cfg, "driver_gate_model", "classifier") != "input_trees":
        raise ValueError(f"option 'driver_gate_variables' trees measures each variable with input trees, but "
                         f"driver_gate_model is {cfg.driver_gate_model!r}; use --driver_gate_model input_trees "
                         "or --driver_gate_variables all")
    if not cfg.driver_gate_variable_lift >= 1.0:
        raise ValueError(f"option 'driver_gate_variable_lift' is {cfg.driver_gate_variable_lift}; give 1 "
                         "(chance) or more")


def _driving_variables(cfg: Any, train: tuple[np.ndarray, np.ndarray], features: Any, load: Loader,
                       rt: Any, log: Callable[[str], None]) -> tuple[np.ndarray, dict[str, float]]:
    """bool [V]: the variables whose inputs alone predict the validation extremes at
    ``driver_gate_variable_lift`` times chance or better (``driver_gate_variables trees``), and each
    variable's lift. The extremes are labels; no true driver is read."""
    val = load("val")
    rows = GateRows(features, n_samples=len(val), seed=cfg.seed)
    engine.evaluate(cfg, rows_model("input_trees", None), val, [rows], runtime=rt, with_loss=False,
                    desc="gate trees: variables on val")
    names = [str(v) for v in val.variables]
    try:
        lift = variable_lift(train, rows.arrays(), len(names), seed=cfg.seed)
    except ValueError as err:
        raise SetupError(f"option 'driver_gate_variables' trees: {err}; use --driver_gate_variables all") from None
    keep = lift >= cfg.driver_gate_variable_lift
    dropped = [n for n, k in zip(names, keep) if not k]
    if not keep.any():  # the trees tell nothing of these extremes: no ground to drop any variable
        keep[:], verdict = True, f"none reaches {cfg.driver_gate_variable_lift:g}, so every variable can drive"
    elif dropped:
        verdict = f"{', '.join(dropped)} below {cfg.driver_gate_variable_lift:g} never drive"
    else:
        verdict = "every variable can drive"
    log("driver gate: each variable alone predicts the validation extremes at "
        + ", ".join(f"{n} {x:.2f}" for n, x in zip(names, lift)) + f" times chance; {verdict}")
    return keep, {n: float(x) for n, x in zip(names, lift)}


def gate_trees(cfg: Any, model: Any, load: Loader, rt: Any, log: Callable[[str], None]) -> Any:
    """``model`` with its extreme logits from trees fit on the training split, when ``driver_gate_model``
    is ``flag_trees`` (the checkpoint's flags) or ``input_trees`` (the inputs; models/gate_trees.py);
    else ``model`` itself."""
    kind = getattr(cfg, "driver_gate_model", "classifier")
    if cfg.driver_gate == "none" or kind == "classifier":
        return model
    features = features_for(kind, cfg.gate_trees_box, getattr(cfg, "spatial_anomaly", "none") == "always")
    train_set = load("train")
    rows = GateRows(features, n_samples=len(train_set), seed=cfg.seed)
    what = "the checkpoint's flags" if kind == "flag_trees" else "the inputs"
    engine.evaluate(cfg, rows_model(kind, model), train_set, [rows], runtime=rt, with_loss=False,
                    desc=f"gate trees: {kind} of train")
    x, y = rows.arrays()
    trees = GateTrees(features, seed=cfg.seed, balanced=kind == "input_trees").fit(x, y)
    sampled = "" if rows.share == 1.0 else f", a random {100 * rows.share:.1f} % of them"
    log(f"driver gate: extremes from gradient-boosted trees fit on {what} of the training split "
        f"({len(y):,} pixel windows{sampled}, {100 * y.mean():.2f} % extreme)")
    if getattr(cfg, "driver_gate_variables", "all") != "trees":
        return TreeGated(model, trees)
    return TreeGated(model, trees, *_driving_variables(cfg, (x, y), features, load, rt, log))


def calibrate_gate(cfg: Any, model: Any, family: DatasetFamily, load: Loader, rt: Any,
                   log: Callable[[str], None]) -> Any:
    """``cfg`` with the extreme gate's threshold (and window, with ``driver_gate_window val``) chosen on the
    validation split (never the test split)."""
    chosen = _chosen_on_val(cfg)
    if cfg.driver_gate == "none" or not chosen:
        return cfg
    val = load("val")
    res = engine.evaluate(cfg, model, val, family.val_collectors(cfg, val, drivers=True), runtime=rt,
                          with_loss=False, desc="gate on val")
    gate = res["drivers"]["gate"]
    setting = GateSetting.from_record(gate)
    log(f"driver gate: {' and '.join(chosen)} chosen on the validation split, {setting.describe()} (driver F1 "
        f"{100 * res['drivers']['pooled']['f1']:.2f} %, ungated {100 * gate['ungated']['f1']:.2f} %)")
    return dataclasses.replace(cfg, driver_gate_threshold=setting.threshold, driver_gate_weeks=setting.weeks,
                               driver_gate_weeks_before=setting.before, driver_gate_window="fixed")


def evaluate(cfg: Any, split: str | None = None, *, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Test a checkpoint (``cfg.checkpoint`` or the run's best) on ``split``; writes and returns the metrics.

    The returned dict is what ``metrics_<split>.json`` holds: the family's metrics plus
    ``split``, ``checkpoint``, ``method`` and, for scoring methods, ``driver_threshold``.
    """
    split = split or cfg.split
    cfg = dataclasses.replace(cfg, split=split)
    try:
        with _setup_errors():
            family, spec = resolve(cfg)
            rt = setup_runtime(cfg)
            check_output_folder(cfg)  # a test writes into the run folder: checked before any data load
            checkpoint = find_eval_checkpoint(cfg)
            splits = _Splits(family, cfg)
            dataset = splits(split)
            if len(dataset) < 1:
                raise ValueError(f"the {split} split has no samples (check its period against delta_t = {cfg.delta_t})")
            for message in getattr(dataset, "warnings", []):
                log(f"warning: {message}")
            cfg = resolve_gate(_spatial_anomaly(cfg, splits, log), family, spec, log)
            seed_everything(cfg.seed)
            model = spec.build(cfg)
            load_checkpoint(model, checkpoint)
            members = [str(checkpoint)]
            if cfg.ensemble or cfg.ensemble_starts:
                model, members = _ensemble(cfg, spec, model, checkpoint, log)
        run_dir = Path(cfg.run_dir)
        if rt.is_main:
            prepare_test_run(cfg, split)
        threshold = calibrate_threshold(cfg, model, splits, rt) if spec.scores else None
        model = gate_trees(cfg, model, splits, rt, log)
        splits.drop("train")  # read by nothing after the gate trees
        cfg = calibrate_gate(cfg, model, family, splits, rt, log)
        if split != "val":
            splits.drop("val")
        attrs = {"method": cfg.method, "encoder": cfg.encoder, "codebook": cfg.codebook, "checkpoint": str(checkpoint)}
        collectors = family.test_collectors(cfg, dataset, run_dir=run_dir, split=split, attrs=attrs)
        res = engine.evaluate(cfg, model, dataset, collectors, runtime=rt, with_loss=False,
                              run_dir=run_dir, split=split, desc=f"test {split}")
        metrics = {"split": split, "checkpoint": str(checkpoint), "method": cfg.method,
                   **family.test_metrics(cfg, dataset, res)}
        if threshold is not None:
            metrics["driver_threshold"] = threshold
        if getattr(model, "lift", None) is not None and "drivers" in metrics:
            metrics["drivers"].setdefault("gate", {})["variables"] = {
                "lift": model.lift, "kept": [n for n, k in zip(model.lift, model.keep.tolist()) if k]}
        if len(members) > 1:
            metrics["ensemble"] = members
        if rt.is_main:
            write_atomic(run_dir / f"metrics_{split}.json", json.dumps(metrics, indent=1).encode(), then=RERUN_TEST)
    finally:
        cleanup()
    return metrics
