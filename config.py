"""One typed configuration for every entry point, model, dataset and baseline.

Option names follow the published ``config.py`` wherever one exists, so that a
published ``config.pkl`` maps one to one. Values come from, in order: the
defaults below, a YAML file (``--config FILE``), and ``--<option> VALUE``
overrides. Every option is typed; a wrong type or an unknown name is an error
that names the option, raised before any work starts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path, PureWindowsPath
from typing import Any, NamedTuple, TypeVar, Union

import yaml

from dataset.variables import CERRA_VARIABLES, ERA5_LAND_VARIABLES, REGIONS, SYNTHETIC_VARIABLES
from utils.errors import ConfigError, StorageError
from utils.option_sections import (
    SECTIONS,
    AttributionOptions,
    ClassifierOptions,
    DatacubeOptions,
    DataOptions,
    EncoderOptions,
    LoaderOptions,
    LossOptions,
    MethodOptions,
    MILOptions,
    OneClassOptions,
    OptimOptions,
    QuantizerOptions,
    ReanalysisOptions,
    ReconstructionOptions,
    RunOptions,
    SyntheticOptions,
)
from utils.published import read_published_config

__all__ = [
    "Config", "ConfigError", "load_config", "save_config", "parse_config", "parse_overrides", "coerce",
    "choices_of", "option_help", "iter_options", "OptionInfo", "FIELDS",
    "SYNTHETIC_VARIABLES", "ERA5_LAND_VARIABLES", "CERRA_VARIABLES", "REGIONS",
]



S = TypeVar("S")


class OptionInfo(NamedTuple):
    """One option as the reference and ``--help`` describe it."""

    section: type  # the section dataclass that declares it (its docstring says who reads it)
    name: str
    type: str  # the annotation as written, e.g. "list[int]", "str | None"
    default: Any
    choices: tuple[str, ...] | None
    help: str  # one line of meaning ("" when the option has none: a test and the docs build fail on it)


def option_help(name: str) -> str:
    """The one line of meaning of option ``name`` (``metadata['help']``; "" if it has none)."""
    if name not in FIELDS:
        raise ConfigError(f"unknown option '{name}'{_suggest(name)}")
    return str(FIELDS[name].metadata.get("help", "")).strip()


def iter_options() -> Iterator[OptionInfo]:
    """Every option, section by section in ``--help`` order, with type, default, choices and help.

    The generated option reference (scripts/docs_options.py) is built from this, so it cannot drift
    from the code. Choices read from a registry import its built-in modules.
    """
    for section in SECTIONS:
        for f in fields(section):
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:  # pragma: no cover - every option has a default
                default = None
            yield OptionInfo(section, f.name, str(f.type), default, choices_of(f.name), option_help(f.name))


def choices_of(name: str) -> tuple[str, ...] | None:
    """The allowed values of option ``name`` (fixed, or the names registered so far), None if free."""
    meta = FIELDS[name].metadata
    if "registry" in meta:
        import importlib

        module, attr = meta["registry"].split(":")
        return tuple(getattr(importlib.import_module(module), attr).names())
    return meta.get("choices")


@dataclass
class Config(  # bases in reverse: a dataclass takes the fields of its last base first
    AttributionOptions, ReconstructionOptions, OneClassOptions, MILOptions, MethodOptions, LoaderOptions,
    OptimOptions, LossOptions, ClassifierOptions, QuantizerOptions, EncoderOptions, DatacubeOptions,
    ReanalysisOptions, SyntheticOptions, DataOptions, RunOptions,
):
    """The resolved configuration: every section's options, flat (``cfg.lr``), as the command line names them.

    A component takes its own section (``cfg.section(EncoderOptions)``) or plain arguments; a
    ``Config`` is an instance of every section, so a whole configuration also fits.
    ``metadata['choices']`` restricts string options.
    """

    def section(self, cls: type[S]) -> S:
        """The options of one section (a new ``cls`` with this configuration's values)."""
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, list):
                v = [list(i) if isinstance(i, tuple) else i for i in v]
            out[f.name] = v
        return out

    def validate(self) -> Config:
        """Consistency checks that need no data files; raise ValueError naming the option."""
        if self.in_channels_dynamic != len(self.variables):
            raise ValueError(
                f"option 'in_channels_dynamic' is {self.in_channels_dynamic} but 'variables' lists "
                f"{len(self.variables)} variables ({' '.join(self.variables)}); they must match"
            )
        if len(set(self.variables)) != len(self.variables):
            raise ValueError(f"option 'variables' lists a variable twice: {self.variables}")
        if self.delta_t not in (2, 4, 8, 16, 32):
            raise ValueError(f"option 'delta_t' is {self.delta_t}; the classifier takes 2, 4, 8, 16 or 32")
        if self.train_crop < 0:
            raise ValueError(
                f"option 'train_crop' is {self.train_crop}; use 0 (train on the whole window) or a crop size in pixels"
            )
        if not 0.0 <= self.train_crop_focus <= 1.0:
            raise ValueError(f"option 'train_crop_focus' is {self.train_crop_focus}; it is a share in [0, 1]")
        for lo, hi, what in ((self.x_min, self.x_max, "x"), (self.y_min, self.y_max, "y")):
            if not 0 <= lo < hi:
                raise ValueError(f"options '{what}_min'/'{what}_max' = {lo}/{hi}: need 0 <= {what}_min < {what}_max")
        for opt in ("times_train", "times_val", "times_test"):
            t0, t1 = getattr(self, opt)
            if t0 > t1 or t0 < 1:
                raise ValueError(f"option '{opt}' = ({t0}, {t1}): need 1 <= start <= end (1-based, inclusive)")
        for opt in ("period_train", "period_val", "period_test"):
            p = getattr(self, opt)
            try:
                import datetime as dt

                a, b = (dt.date.fromisoformat(str(d)[:10]) for d in p)
            except ValueError:
                raise ValueError(
                    f"option '{opt}' = {p}: need two ISO dates START END (e.g. 2001-01-01 2010-12-31)"
                ) from None
            if a > b:
                raise ValueError(f"option '{opt}' = {p}: START is after END")
        for s in self.statistics:
            if s not in ("mean", "std"):
                raise ValueError(f"option 'statistics': {s!r} is not mean or std")
        n_stage = len(self.en_embed_dim)
        for opt in ("en_depths", "en_n_heads", "en_window_size", "d_state", "d_conv", "expand"):
            if len(getattr(self, opt)) != n_stage:
                raise ValueError(
                    f"option '{opt}' has {len(getattr(self, opt))} entries but 'en_embed_dim' has {n_stage} stages"
                )
        if self.batch_size < 1 or self.n_epochs < 1:
            raise ValueError("options 'batch_size' and 'n_epochs' must be >= 1")
        if self.window_size < 1:
            raise ValueError(f"option 'window_size' is {self.window_size}; must be >= 1")
        problem = _name_problem(self.name)
        if problem:
            raise ValueError(
                f"option 'name' = {self.name!r} {problem}; the run folder is <dir_log>/<name>, so give one folder "
                "name (e.g. run1) and put any parent folder in --dir_log"
            )
        _check_ranges(self)
        _check_splits(self)
        _check_pairs(self)
        return self

    def split_overlaps(self) -> list[str]:
        """Warnings for validation / test periods that share weeks or years with the training period.

        Legal (a user may mean it) but it makes validation and test scores optimistic, so the
        engine logs each one with its share.
        """
        if self.dataset == "synthetic":
            periods = {k: set(range(getattr(self, k)[0], getattr(self, k)[1] + 1))
                       for k in ("times_train", "times_val", "times_test")}
            unit = "weeks"
        elif self.dataset == "datacube":
            import datetime as dt

            def days(p: list[str]) -> set[int]:
                a, b = (dt.date.fromisoformat(str(d)[:10]).toordinal() for d in p)
                return set(range(a, b + 1))

            periods = {k: days(getattr(self, k)) for k in ("period_train", "period_val", "period_test")}
            unit = "days"
        else:
            periods = {k: {str(y) for y in getattr(self, k)} for k in ("years_train", "years_val", "years_test")}
            unit = "years"
        train_key = next(k for k in periods if k.endswith("_train"))
        out = []
        for key in periods:
            if key == train_key or not periods[key]:
                continue
            shared = periods[key] & periods[train_key]
            if shared:
                out.append(
                    f"option '{key}': {len(shared)} of its {len(periods[key])} {unit} "
                    f"({100 * len(shared) / len(periods[key]):.0f} %) are also in '{train_key}'; "
                    "scores on that split will be optimistic"
                )
        return out

    @property
    def run_dir(self) -> Path:
        return Path(self.dir_log) / self.name

    @property
    def pred_threshold(self) -> float:
        if self.extreme_threshold is not None:
            return self.extreme_threshold
        return 0.5 if self.dataset == "synthetic" else 0.35


def _name_problem(name: str) -> str | None:
    """Why ``name`` is not one path component (None: it is): another value would put the run folder
    outside ``dir_log`` or make it ``dir_log`` itself, where ``--overwrite`` would delete other files."""
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name:
        return "holds a path separator"
    if name in (".", ".."):
        return "names a parent or the same folder"
    if PureWindowsPath(name).anchor or Path(name).is_absolute():
        return "starts with a drive or root (an absolute path)"
    if "\0" in name:
        return "holds a NUL character"
    return None


class _Range(NamedTuple):
    """Allowed values of a number option: ``lo``/``hi`` (None: unbounded), open or closed ends."""

    lo: float | None
    hi: float | None
    lo_open: bool
    hi_open: bool
    says: str  # the end of "it must be ..."

    def holds(self, v: float) -> bool:
        """Whether ``v`` is allowed (NaN never is: every comparison with it is false)."""
        above = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        below = self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)
        return above and below


_COUNT = _Range(1, None, False, False, "1 or more")
_NON_NEGATIVE = _Range(0, None, False, False, "0 or more")
_POSITIVE = _Range(0, None, True, False, "above 0")
_RATE = _Range(0, 1, False, True, "a share in [0, 1)")
_SHARE = _Range(0, 1, False, False, "a share in [0, 1]")
_FRACTION = _Range(0, 1, True, False, "a fraction in (0, 1]")
_PROBABILITY = _Range(0, 1, True, True, "a probability in (0, 1)")
_PERCENT = _Range(0, 100, False, False, "in [0, 100]")

#: Ranges of the number options that nothing else checks before training starts (a value outside them
#: would train hours and then fail, or give silently wrong numbers). Options their component checks when it
#: is built (flag_prior*, cls_var_dropout, codebook_size, restarts*, sync_every, the gate) are not repeated.
OPTION_RANGES: dict[str, _Range] = {
    **dict.fromkeys((
        "lr_decay_step", "codebook_dim", "cls_dim", "mil_topk", "ig_n_steps", "iforest_n_estimators",
        "oneclass_n_fit", "oneclass_window", "simplenet_proj_dim", "simplenet_dsc_hidden", "uniad_hidden",
        "uniad_layers", "uniad_heads", "uniad_pool", "en_embed_dim", "en_depths", "en_n_heads", "en_window_size",
        "d_state", "d_conv", "expand", "mil_hidden", "mgfn_dims", "mgfn_heads"), _COUNT),
    **dict.fromkeys((
        "lr_min", "lr_warmup", "lr_warmup_epochs", "weight_decay", "lambda_anomaly", "lambda_anomaly_warmup_epochs",
        "lambda_commitment", "diversity_gamma", "arnet_lambda_center", "rtfm_alpha", "rtfm_margin", "mgfn_mag_ratio",
        "mgfn_lambda_mc", "n_workers", "max_train_batches", "max_eval_batches", "classifier_refit_epochs",
        "device_data_max_gb", "uniad_neighbor"), _NON_NEGATIVE),
    **dict.fromkeys((
        "lr", "classifier_refit_lr", "lambda_anomaly_start", "clip_value", "en_mlp_ratio", "dt_min", "dt_max",
        "lr_decay_rate", "stealnet_out_scale", "simplenet_noise_std", "simplenet_feature_scale"), _POSITIVE),
    **dict.fromkeys((
        "en_drop_rate", "en_attn_drop_rate", "en_drop_path_rate", "cls_drop_rate", "mil_dropout",
        "mil_instance_dropout", "beta1", "beta2"), _RATE),
    "alpha": _SHARE,
    "mil_topk_fraction": _FRACTION,
    "ocsvm_nu": _FRACTION,
    "extreme_threshold": _PROBABILITY,
    "driver_threshold_percentile": _PERCENT,
    "threshold": _PERCENT,  # VHI is 0..100
    "threshold_anomaly": _PERCENT,
}


def _numbers(value: Any) -> list[float]:
    """The numbers of an option value: itself, or every entry of a list (of tuples); None gives none."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return [value]


def _check_ranges(cfg: Config) -> None:
    """Every option of :data:`OPTION_RANGES` within its range; ValueError naming the first that is not."""
    for name, allowed in OPTION_RANGES.items():
        for v in _numbers(getattr(cfg, name)):
            if not allowed.holds(v):
                whole = getattr(cfg, name)
                shown = f"{v:g}" if whole is v or not isinstance(whole, (list, tuple)) else f"{whole} (entry {v:g})"
                raise ValueError(f"option '{name}' is {shown}; it must be {allowed.says}")


def _check_splits(cfg: Config) -> None:
    """Each split holds at least one window, so a test split that cannot does not wait for the end of training."""
    if cfg.dataset == "synthetic":
        for opt in ("times_train", "times_val", "times_test"):
            t0, t1 = getattr(cfg, opt)
            if t1 - t0 + 1 < cfg.delta_t:
                raise ValueError(
                    f"option '{opt}' = ({t0}, {t1}) holds {t1 - t0 + 1} weeks, fewer than delta_t = {cfg.delta_t}: "
                    "no window fits in it; widen the split or lower delta_t"
                )
    elif cfg.dataset in ("ERA5_Land", "CERRA"):
        for opt in ("years_train", "years_val", "years_test"):
            bad = [y for y in getattr(cfg, opt) if not (len(str(y)) == 4 and str(y).isdigit())]
            if bad:
                raise ValueError(f"option '{opt}': {bad[0]!r} is not a year; give four-digit years (e.g. 2015 2016)")


def _check_pairs(cfg: Config) -> None:
    """Values that are fine alone but contradict each other."""
    if cfg.dt_min > cfg.dt_max:
        raise ValueError(f"options 'dt_min'/'dt_max' = {cfg.dt_min:g}/{cfg.dt_max:g}: need dt_min <= dt_max")
    if cfg.lat_min is not None and cfg.lat_max is not None and cfg.lat_min >= cfg.lat_max:
        raise ValueError(f"options 'lat_min'/'lat_max' = {cfg.lat_min:g}/{cfg.lat_max:g}: need lat_min < lat_max "
                         "(southern edge first)")
    if cfg.lon_min is not None and cfg.lon_max is not None and cfg.lon_min > cfg.lon_max:
        raise ValueError(f"options 'lon_min'/'lon_max' = {cfg.lon_min:g}/{cfg.lon_max:g}: lon_min is above lon_max; "
                         "swap them")
    if cfg.driver_threshold is not None and not 0 < cfg.driver_threshold < 1 and _method_family(cfg) == "MIL":
        raise ValueError(
            f"option 'driver_threshold' is {cfg.driver_threshold:g}; method {cfg.method} flags where its probability "
            "exceeds it, so it must be a probability in (0, 1) (none = 0.5)"
        )


def _method_family(cfg: Config) -> str | None:
    """The group of ``cfg.method`` (IDE, MIL, ...); None for a name no module registered."""
    from models.methods import METHODS, method_spec  # (imports torch: only when an option needs it)

    return method_spec(cfg.method).family if cfg.method in METHODS else None


class OnlyWhen(NamedTuple):
    """Options a run reads only where ``holds(cfg)``; ``needs`` says where, ``decided_by`` the options that decide."""

    options: tuple[str, ...]
    holds: Callable[[Config], bool]
    needs: str
    decided_by: tuple[str, ...]


#: the built-in methods and families the table below knows; a plugin's name is never warned about
BUILTIN_METHODS = ("ide", "deepmil", "arnet", "rtfm", "mgfn", "ocsvm", "iforest", "simplenet", "stealnet", "uniad",
                   "ig1", "ig2")
BUILTIN_DATASETS = ("synthetic", "ERA5_Land", "CERRA", "datacube")
_MIL = ("deepmil", "arnet", "rtfm", "mgfn")
_SCORING = ("ocsvm", "iforest", "simplenet", "stealnet", "uniad", "ig1", "ig2")
_WITH_ENCODER = ("ide", *_MIL, "simplenet", "ig1", "ig2")


def _methods(*names: str) -> OnlyWhen:
    """A row's condition: ``method`` is one of ``names`` (or a method the table does not know)."""
    return OnlyWhen((), lambda cfg: cfg.method in names or cfg.method not in BUILTIN_METHODS,
                    f"method {_or(names)}", ("method",))


def _datasets(*names: str) -> OnlyWhen:
    """A row's condition: ``dataset`` is one of ``names`` (or a family the table does not know)."""
    return OnlyWhen((), lambda cfg: cfg.dataset in names or cfg.dataset not in BUILTIN_DATASETS,
                    f"dataset {_or(names)}", ("dataset",))


def _or(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _row(options: str, when: OnlyWhen) -> OnlyWhen:
    return when._replace(options=tuple(options.split()))


#: "option X only matters when Y": an option the command line gives where its row does not hold is
#: ignored by the run (a one-line warning). Test-only options are not listed: a training run saves them in
#: config.yaml for its test.
ONLY_WHEN: tuple[OnlyWhen, ...] = (
    _row("root_synthetic times_train times_val times_test", _datasets("synthetic")),
    _row("region root_ERA5_Land root_NOAA", _datasets("ERA5_Land")),
    _row("root_CERRA root_NOAA_CERRA", _datasets("CERRA")),
    _row("store years_train years_val years_test threshold threshold_anomaly alpha window_size",
         _datasets("ERA5_Land", "CERRA")),
    _row("data target target_below target_above mask truth_drivers period_train period_val period_test step "
         "statistics climatology lat_min lat_max lon_min lon_max", _datasets("datacube")),
    _row("x_min x_max y_min y_max", _datasets("synthetic", "ERA5_Land", "CERRA")),
    _row("encoder en_embed_dim en_depths en_window_size en_qkv_bias en_qk_scale en_drop_rate en_attn_drop_rate "
         "en_attention en_drop_path_rate en_use_checkpoint d_state d_conv expand dt_min dt_max mamba_impl codebook_dim",
         _methods(*_WITH_ENCODER)),
    _row("codebook codebook_size lambda_commitment lambda_entropy diversity_gamma cls_var_dropout monotone_heads "
         "lambda_anomaly lambda_anomaly_start lambda_anomaly_warmup_epochs flag_prior flag_prior_epochs "
         "flag_prior_floor flag_prior_threshold loss_weighting classifier_refit_epochs classifier_refit_lr",
         _methods("ide")),
    _row("cls_dim cls_drop_rate", _methods("ide", "ig1", "ig2")),
    _row("mil_topk mil_topk_fraction mil_topk_per", _methods(*_MIL)),
    _row("mil_hidden mil_dropout", _methods("deepmil", "arnet", "rtfm")),
    _row("mil_instance_dropout mil_match_bags", _methods("deepmil")),
    _row("arnet_lambda_center", _methods("arnet")),
    _row("rtfm_alpha", _methods("rtfm")),
    _row("rtfm_margin", _methods("rtfm", "mgfn")),
    _row("mgfn_mag_ratio mgfn_lambda_mc mgfn_dims mgfn_heads", _methods("mgfn")),
    _row("simplenet_backbone simplenet_noise_std simplenet_feature_scale simplenet_proj_dim simplenet_dsc_hidden",
         _methods("simplenet")),
    _row("oneclass_n_fit oneclass_window", _methods("ocsvm", "iforest")),
    _row("ocsvm_nu", _methods("ocsvm")),
    _row("iforest_n_estimators", _methods("iforest")),
    _row("stealnet_out_scale", _methods("stealnet")),
    _row("uniad_hidden uniad_layers uniad_heads uniad_neighbor uniad_pool", _methods("uniad")),
    _row("ig_n_steps", _methods("ig1", "ig2")),
    _row("driver_threshold_rule", _methods(*_SCORING)),
    OnlyWhen(("driver_threshold",),
             lambda cfg: (_methods(*_SCORING).holds(cfg) and cfg.driver_threshold_rule == "fixed")
             or cfg.method in _MIL,
             f"driver_threshold_rule fixed and a scoring method ({_or(_SCORING)}), or method {_or(_MIL)}",
             ("method", "driver_threshold_rule")),
    OnlyWhen(("driver_threshold_percentile",),
             lambda cfg: _methods(*_SCORING).holds(cfg) and cfg.driver_threshold_rule == "normal_percentile",
             f"driver_threshold_rule normal_percentile and a scoring method ({_or(_SCORING)})",
             ("method", "driver_threshold_rule")),
    OnlyWhen(("d_state", "d_conv", "expand", "dt_min", "dt_max", "mamba_impl"), lambda cfg: cfg.encoder == "Mamba",
             "encoder Mamba", ("encoder",)),
    OnlyWhen(("en_depths", "en_window_size", "en_qkv_bias", "en_qk_scale", "en_drop_rate", "en_attn_drop_rate",
              "en_drop_path_rate", "en_use_checkpoint"), lambda cfg: cfg.encoder != "CNN_3D",
             "encoder Swin_3D or Mamba", ("encoder",)),
    OnlyWhen(("en_attention",), lambda cfg: cfg.encoder == "Swin_3D", "encoder Swin_3D", ("encoder",)),
    OnlyWhen(("mil_topk",), lambda cfg: cfg.mil_topk_fraction is None, "mil_topk_fraction none",
             ("mil_topk_fraction",)),
    OnlyWhen(("restart_epochs", "ensemble_starts"), lambda cfg: cfg.restarts > 1, "restarts > 1",
             ("restarts",)),
    OnlyWhen(("lr_reference_batch",), lambda cfg: cfg.lr_scaling != "none", "lr_scaling linear or sqrt",
             ("lr_scaling",)),
    OnlyWhen(("lr_decay_rate", "lr_decay_step"), lambda cfg: cfg.lr_scheduler == "step", "lr_scheduler step",
             ("lr_scheduler",)),
    OnlyWhen(("classifier_refit_lr",), lambda cfg: cfg.classifier_refit_epochs > 0, "classifier_refit_epochs > 0",
             ("classifier_refit_epochs",)),
    OnlyWhen(("train_crop_focus",), lambda cfg: cfg.train_crop > 0, "train_crop > 0", ("train_crop",)),
    OnlyWhen(("flag_prior_epochs", "flag_prior_floor", "flag_prior_threshold"), lambda cfg: cfg.flag_prior > 0,
             "flag_prior > 0", ("flag_prior",)),
    OnlyWhen(("lambda_anomaly_start",), lambda cfg: cfg.lambda_anomaly_warmup_epochs > 0,
             "lambda_anomaly_warmup_epochs > 0", ("lambda_anomaly_warmup_epochs",)),
    OnlyWhen(("beta2",), lambda cfg: cfg.optimizer != "SGD", "optimizer Adam or AdamW", ("optimizer",)),
    OnlyWhen(("device_data_max_gb",), lambda cfg: cfg.device_data == "auto", "device_data auto", ("device_data",)),
    OnlyWhen(("driver_gate_weeks", "driver_gate_weeks_before", "driver_gate_window", "driver_gate_threshold",
              "driver_gate_model", "driver_gate_variables"), lambda cfg: cfg.driver_gate != "none",
             "driver_gate extreme or auto", ("driver_gate",)),
    OnlyWhen(("gate_trees_box",), lambda cfg: cfg.driver_gate_model == "flag_trees", "driver_gate_model flag_trees",
             ("driver_gate_model",)),
    OnlyWhen(("driver_gate_variable_lift",), lambda cfg: cfg.driver_gate_variables == "trees",
             "driver_gate_variables trees", ("driver_gate_variables",)),
)


def ignored_options(cfg: Config, given: Iterable[str]) -> list[str]:
    """One warning per option in ``given`` (the names a command line sets) that this run does not read.

    Only named options are judged: presets and a run's config.yaml hold options of several methods and
    datasets on purpose.
    """
    out = []
    for name in dict.fromkeys(given):
        for row in ONLY_WHEN:
            if name in row.options and not row.holds(cfg):
                here = ", ".join(f"{k} {_shown(getattr(cfg, k))}" for k in row.decided_by)
                out.append(f"option '{name}' is ignored: it matters only with {row.needs} (this run: {here})")
                break
    return out


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


def file_dataset(path: str | Path) -> str | None:
    """The ``dataset`` a YAML file (or its ``base:`` files) names; None when it names none or is a published
    ``config.pkl`` (whose dataset is only guessed from its variables)."""
    if Path(path).suffix == ".pkl":
        return None
    value = _read_file(path).get("dataset")
    return None if value is None else str(value)


# --------------------------------------------------------------------------------------
# typing helpers: one coercion routine for YAML values, Python overrides and CLI strings
# --------------------------------------------------------------------------------------

_TYPE_HINTS: dict[str, Any] = typing.get_type_hints(Config)
FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in fields(Config)}
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_NONE = {"none", "null", "~", ""}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _scalar(name: str, tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"option '{name}': expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"option '{name}': expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"option '{name}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"option '{name}': expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"option '{name}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, datetime.date):  # YAML reads an unquoted 2015-01-01 as a date
            return value.isoformat()
        raise ConfigError(f"option '{name}': expected a string, got {value!r}")
    raise ConfigError(f"option '{name}': unsupported type {tp}")


def coerce(name: str, value: Any) -> Any:
    """Convert ``value`` to the declared type of option ``name`` or raise ConfigError."""
    if name not in FIELDS:
        raise ConfigError(f"unknown option '{name}'{_suggest(name)}")
    tp, optional = _unwrap_optional(_TYPE_HINTS[name])
    if value is None or (optional and isinstance(value, str) and value.lower() in _NONE):
        if optional:
            return None
        raise ConfigError(f"option '{name}' cannot be empty (null)")
    origin = typing.get_origin(tp)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, (list, tuple)):
            value = [value]
        if typing.get_origin(inner) is tuple:  # list of fixed-size tuples, e.g. en_window_size
            k = len(typing.get_args(inner))
            flat = list(value)
            if flat and all(not isinstance(v, (list, tuple)) for v in flat):
                if len(flat) % k:
                    raise ConfigError(f"option '{name}': expected groups of {k} integers, got {len(flat)} values")
                flat = [flat[i : i + k] for i in range(0, len(flat), k)]
            return [tuple(_tuple(name, inner, v)) for v in flat]
        return [_scalar(name, inner, v) for v in value]
    if origin is tuple:
        if isinstance(value, str):
            value = value.split()
        return _tuple(name, tp, value)
    choices = choices_of(name)
    if choices is not None:
        value = _scalar(name, tp, value)
        if value not in choices:
            import difflib

            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"option '{name}': {value!r} is not one of {', '.join(choices)}{hint}")
        return value
    return _scalar(name, tp, value)


def _tuple(name: str, tp: Any, value: Any) -> tuple:
    args = typing.get_args(tp)
    if not isinstance(value, (list, tuple)) or len(value) != len(args):
        raise ConfigError(f"option '{name}': expected {len(args)} values, got {value!r}")
    return tuple(_scalar(name, a, v) for a, v in zip(args, value))


def _suggest(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, FIELDS, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _read_file(path: str | Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The options of a YAML preset (with its ``base:`` files) or a published ``config.pkl``.

    ``chain`` holds the files whose ``base:`` led here, so a file that names itself again fails in
    one line instead of recursing until Python gives up.
    """
    path = Path(path)
    named_by = f" (named by base: in {chain[-1]})" if chain else ""
    if path.is_dir():
        raise ConfigError(
            f"config file {path}{named_by} is a folder, not a file; pass a YAML preset (e.g. configs/quickstart.yaml) "
            "or a run's config.yaml"
        )
    if not path.is_file():
        raise ConfigError(f"config file {path}{named_by} does not exist")
    here = path.resolve()
    if here in chain:
        loop = " -> ".join(str(p) for p in (*chain[chain.index(here):], here))
        raise ConfigError(
            f"config file {path}: base chain loops back to {path} ({loop}); remove one of those base: entries")
    if path.suffix == ".pkl":  # a published argparse.Namespace pickle, read without running code
        return read_published_config(path, known=FIELDS)
    data = _yaml_mapping(path, _read_text(path))
    if "base" in data:  # a preset may build on other files (a name or a list, relative to itself)
        names = data.pop("base")
        merged: dict[str, Any] = {}
        for name in [names] if isinstance(names, str) else list(names or []):
            merged.update(_read_file(path.parent / str(name), (*chain, here)))
        merged.update(data)
        data = merged
    return data


def _read_text(path: Path) -> str:
    """The file as UTF-8 text; a binary file (a checkpoint, a pickle) is named as such."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        if raw.startswith((b"PK\x03\x04", b"\x80")):  # the two formats torch.save and pickle write
            raise ConfigError(
                f"config file {path} is a binary file (a PyTorch checkpoint or a pickle), not YAML; pass a checkpoint "
                "with --checkpoint, and a published config only under its .pkl name"
            ) from None
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[err.start]:02x} at position {err.start}); "
            "pass a YAML preset saved as UTF-8"
        ) from None


def _yaml_mapping(path: Path, text: str) -> dict[str, Any]:
    """``text`` parsed as a YAML mapping; a syntax error is one line with the file, line and problem."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = err.problem or err.context or type(err).__name__
        raise ConfigError(f"config file {path}: YAML syntax error at{where}: {what}; fix that line") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    return data


def read_options(path: str | Path) -> dict[str, Any]:
    """The options a YAML preset or a run's ``config.yaml`` holds (``base:`` files merged), not yet
    typed or validated; a missing, binary or malformed file is one :class:`ConfigError` naming it."""
    return _read_file(path)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Defaults <- YAML/pkl file <- overrides; every value type-checked; returns a validated Config."""
    values: dict[str, Any] = {}
    if path is not None:
        for key, val in _read_file(path).items():
            if key not in FIELDS:
                raise ConfigError(f"config file {path}: unknown option '{key}'{_suggest(key)}")
            try:
                values[key] = coerce(key, val)
            except ConfigError as err:
                raise ConfigError(f"config file {path}: {err}") from None
    for key, val in (overrides or {}).items():
        values[key] = coerce(key, val)
    if values.get("dataset") == "datacube":  # a datacube's channels follow its options
        values.setdefault("in_channels_dynamic", len(values.get("variables", Config().variables)))
        values.setdefault("in_channels", len(values.get("statistics", ["mean"])))
    cfg = Config(**values)
    try:
        return cfg.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from err


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write ``cfg`` as YAML; a folder that cannot be made or written is a one-line :class:`StorageError`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False, default_flow_style=None)
    except OSError as err:
        from utils.checkpoints import write_error_message  # (imports torch, which reading a config does not need)

        raise StorageError(write_error_message(
            err.filename or path, err, then="pass a --dir_log that is a folder you can write to")) from None
    return path


def build_parser(description: str | None = None, defaults_file: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with ``--config`` and one ``--<option>`` per Config field (all typed)."""
    parser = argparse.ArgumentParser(
        description=description,
        usage="%(prog)s [--config FILE] [--<option> VALUE ...]   (--help lists every option)",
        allow_abbrev=False,
    )
    parser.add_argument("--config", default=defaults_file, help="YAML preset (configs/*.yaml) or published config.pkl")
    defaults = Config()
    groups = {}
    for section in SECTIONS:  # --help lists the options section by section
        group = parser.add_argument_group(section.__name__, (section.__doc__ or "").strip())
        groups.update({f.name: group for f in fields(section)})
    for f in fields(Config):
        tp, optional = _unwrap_optional(_TYPE_HINTS[f.name])
        origin = typing.get_origin(tp)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": f.name}
        shown = getattr(defaults, f.name)
        if origin in (list, tuple):
            kwargs["nargs"] = "+"
            kwargs["metavar"] = "V"
        elif tp is bool:
            kwargs["metavar"] = "true|false"
        elif choices_of(f.name) is not None:
            kwargs["metavar"] = "{" + ",".join(choices_of(f.name) or ()) + "}"
        meaning = option_help(f.name).replace("%", "%%")  # argparse formats help with %
        kwargs["help"] = f"{meaning} (default: {shown})" if meaning else f"(default: {shown})"
        groups[f.name].add_argument(f"--{f.name}", **kwargs)
    return parser


def parse_config(
    argv: list[str] | None = None,
    description: str | None = None,
    defaults_file: str | None = None,
    fixed: dict[str, Any] | None = None,
) -> Config:
    """Entry-point helper: parse the command line into a validated Config, exit 2 with a clear message on error.

    ``defaults_file`` is the preset used when no ``--config`` is given; ``fixed`` are values the
    entry point imposes (e.g. ``dataset``) unless the command line sets them.
    """
    parser = build_parser(description, defaults_file)
    args = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
    path = args.pop("config")
    overrides = {**(fixed or {}), **_given(args)}
    try:
        return load_config(path, overrides)
    except ValueError as err:
        parser.error(str(err))
        raise  # unreachable: parser.error exits


def parse_overrides(argv: list[str]) -> dict[str, Any]:
    """``["--lr", "1e-3", ...]`` -> ``{"lr": "1e-3"}``: the options a command line gives (``--config`` too),
    unconverted (``load_config`` types them); an unknown option exits 2 with argparse's message."""
    return _given(vars(build_parser().parse_args(argv)))


def _given(args: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, val in args.items():
        if isinstance(val, list) and len(val) == 1 and key != "config" and not _is_sequence(key):
            val = val[0]
        if not (key == "config" and val is None):
            out[key] = val
    return out


def _is_sequence(name: str) -> bool:
    tp, _ = _unwrap_optional(_TYPE_HINTS[name])
    return typing.get_origin(tp) in (list, tuple)




if __name__ == "__main__":  # print the resolved configuration: python config.py --config ... --lr 1e-4
    yaml.safe_dump(parse_config().to_dict(), sys.stdout, sort_keys=False, default_flow_style=None)
