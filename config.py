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
import sys
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from dataset.variables import CERRA_VARIABLES, ERA5_LAND_VARIABLES, REGIONS, SYNTHETIC_VARIABLES
from utils.errors import ConfigError
from utils.published import read_published_config

__all__ = [
    "Config", "ConfigError", "load_config", "save_config", "parse_config", "parse_overrides", "coerce",
    "choices_of", "FIELDS", "SYNTHETIC_VARIABLES", "ERA5_LAND_VARIABLES", "CERRA_VARIABLES", "REGIONS",
]



S = TypeVar("S")


def _years(first: int, last: int) -> list[str]:
    return [str(y) for y in range(first, last + 1)]


def _choices(*values: str) -> dict:
    return {"choices": values}


def _registered(registry: str) -> dict:
    """Choices read from a registry (``"module:NAME"``), imported when an option is checked."""
    return {"registry": registry}


def choices_of(name: str) -> tuple[str, ...] | None:
    """The allowed values of option ``name`` (fixed, or the names registered so far), None if free."""
    meta = FIELDS[name].metadata
    if "registry" in meta:
        import importlib

        module, attr = meta["registry"].split(":")
        return tuple(getattr(importlib.import_module(module), attr).names())
    return meta.get("choices")


@dataclass
class RunOptions:
    """Where a run writes, on which device, with which seed; test-time choices."""

    name: str = "test"
    dir_log: str = "./log"
    phase: str = field(default="train", metadata=_choices("train", "val", "test"))
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = field(default="none", metadata=_choices("none", "bf16", "fp16"))
    resume: bool = False  # continue <dir_log>/<name>/last.pth
    overwrite: bool = False  # allow training into an existing run folder (never silently)
    checkpoint: str | None = None  # test scripts: checkpoint to evaluate
    split: str = field(default="test", metadata=_choices("train", "val", "test"))
    save_predictions: bool = False
    gpu_id: str = "0"  # published option; use CUDA_VISIBLE_DEVICES / torchrun instead


@dataclass
class DataOptions:
    """What every dataset family reads: variables, window length, crop, normalisation."""

    dataset: str = field(default="synthetic", metadata=_registered("dataset.families:DATASETS"))
    variables: list[str] = field(default_factory=lambda: list(SYNTHETIC_VARIABLES))
    variables_static: list[str] = field(default_factory=lambda: ["latitude", "longitude"])
    in_channels: int = 1
    in_channels_dynamic: int = 6
    delta_t: int = 8
    x_min: int = 0
    x_max: int = 200
    y_min: int = 0
    y_max: int = 200
    window_size: int = 1  # spatial coarsening factor (real data)
    is_norm: bool = True
    is_clima_scale: bool = True
    is_aug: bool = True
    is_shuffle: bool = False  # published option (unused by the published loader)
    nan_fill: float = 0.0
    clip_value: float = 10.0


@dataclass
class SyntheticOptions:
    """Synthetic benchmarks (dataset/synthetic.py)."""

    root_synthetic: str = "./data/synthetic/small"
    times_train: tuple[int, int] = (1, 1768)
    times_val: tuple[int, int] = (1769, 2080)
    times_test: tuple[int, int] = (2081, 2392)


@dataclass
class ReanalysisOptions:
    """ERA5-Land and CERRA with NOAA drought labels (dataset/real_dataset.py)."""

    region: str = field(default="EUR-11", metadata=_choices(*REGIONS))
    root_ERA5_Land: str = "../ERA5-Land"
    root_NOAA: str = "../NOAA_CORDEX"
    root_CERRA: str = "../CERRA"
    root_NOAA_CERRA: str = "../NOAA_CERRA"
    years_train: list[str] = field(default_factory=lambda: _years(1984, 2017))
    years_val: list[str] = field(default_factory=lambda: _years(2018, 2020))
    years_test: list[str] = field(default_factory=lambda: _years(2021, 2024))
    threshold: float = 26.0  # VHI below this = extreme drought
    threshold_anomaly: float = 35.0  # VHI below this in any window week = anomaly-loss mask
    alpha: float = 0.5  # VHI = alpha VCI + (1 - alpha) TCI


@dataclass
class DatacubeOptions:
    """Your own datacube (dataset/datacube.py, docs/datacube.md)."""

    data: str | None = None  # netCDF file, glob of files, or zarr store
    target: str | None = None  # 0/1 extreme variable, or an index with target_below / target_above
    target_below: float | None = None  # extreme where target < this (per source step, then any per step)
    target_above: float | None = None  # extreme where target > this
    mask: str | None = None  # optional valid-pixel variable (1 = valid)
    truth_drivers: str | None = None  # optional 0/1 true drivers (variable, time, lat, lon)
    period_train: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"])  # ISO dates, inclusive
    period_val: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"])
    period_test: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"])
    step: str | None = None  # aggregation step (pandas offset, e.g. 7D); default: the data's own step
    statistics: list[str] = field(default_factory=lambda: ["mean"])  # per step: mean [std] = input channels
    # a climatology to normalise by instead of the training period's: netCDF with median and std,
    # dims (variable, statistic, step_of_year, y, x), as the run folder's datacube_climatology.nc
    climatology: str | None = None
    lat_min: float | None = None
    lat_max: float | None = None
    lon_min: float | None = None
    lon_max: float | None = None


@dataclass
class EncoderOptions:
    """The per-variable encoder (models/encoder/) and the weight initialisation."""

    encoder: str = field(default="Swin_3D", metadata=_choices("CNN_3D", "Swin_3D", "Mamba"))
    en_embed_dim: list[int] = field(default_factory=lambda: [16, 16])
    en_depths: list[int] = field(default_factory=lambda: [2, 1])
    en_n_heads: list[int] = field(default_factory=lambda: [2, 2])
    en_window_size: list[tuple[int, int, int]] = field(default_factory=lambda: [(2, 4, 4), (8, 1, 1)])
    en_patch_size: tuple[int, int, int] = (1, 1, 1)
    en_patch_norm: bool = False
    en_mlp_ratio: float = 4.0
    en_qkv_bias: bool = True
    en_qk_scale: float | None = None
    en_drop_rate: float = 0.0
    en_attn_drop_rate: float = 0.0
    en_drop_path_rate: float = 0.0
    en_use_checkpoint: bool = False
    en_de_pretrained: str | None = None
    d_state: list[int] = field(default_factory=lambda: [1, 1])
    d_conv: list[int] = field(default_factory=lambda: [3, 3])
    expand: list[int] = field(default_factory=lambda: [1, 1])
    dt_min: float = 0.01
    dt_max: float = 0.1
    mamba_impl: str = field(default="auto", metadata=_choices("auto", "torch", "kernel"))
    init: str = field(default="corrected", metadata=_choices("corrected", "published"))


@dataclass
class QuantizerOptions:
    """The binary quantizer (models/codebook.py) and its loss weights."""

    codebook: str = field(default="LFQ", metadata=_choices("LFQ", "FSQ", "VQ", "LatentQuantize", "RandomProjectionVQ"))
    codebook_size: int = 2
    codebook_dim: int = 16
    # quantizer loss weights; published 3.0 / 0.1 / 0.1 hold every flag at "normal" on short runs
    lambda_commitment: float = 0.1
    lambda_entropy: float = 0.01
    diversity_gamma: float = 0.01
    lambda_ortho: float = 10.0


@dataclass
class ClassifierOptions:
    """The extreme classifier (models/classifier.py) and the inputs IDE gives the encoder."""

    classifier: str = field(default="CNN_3D", metadata=_choices("CNN_3D"))
    cls_dim: int = 16
    cls_drop_rate: float = 0.0
    # per-variable heads read the flags through non-negative weights, so a flag can only raise the
    # head's extreme logit; keeps driver variables from staying switched off (docs/results.md,
    # "Evidence heads"). Off = the published heads (free sign, read the codes). Training only:
    # flags and the extreme prediction do not depend on it.
    monotone_heads: bool = False
    # 'always': each variable's encoder also gets, per input channel, the value minus its spatial median
    # over the sample's grid (per week), which removes what the whole region shares and the climatology
    # missed (a seasonal cycle out of step with the 52-week calendar, a region-wide shift) so that local
    # anomalies stand out; doubles the encoder's input channels. 'none': the published input. 'auto':
    # the entry scripts measure the training split and choose 'always' when the grid shares at least
    # half of the median variable's variance (dataset/grid_signal.py; docs/results.md, "Paper-size events")
    spatial_anomaly: str = field(default="none", metadata=_choices("none", "always", "auto"))


@dataclass
class LossOptions:
    """IDE's loss: the normal-code pull and the extreme BCE."""

    lambda_anomaly: float = 30.0  # published: 100
    # schedule of lambda_anomaly: from lambda_anomaly_start, geometric ramp to lambda_anomaly over
    # lambda_anomaly_warmup_epochs (0 = constant). A full-strength pull from step 0 switches every
    # flag off before the classifier can ask for any (docs/results.md).
    lambda_anomaly_start: float = 1.0
    lambda_anomaly_warmup_epochs: float = 5.0
    # class weights of the extreme BCE: 'published' w_c = ln((n_c/n)^-0.5 + 1.1) (nearly flat:
    # ~3x for 1% positives), 'balanced' w_c = n / (2 n_c) (each class carries half the loss)
    loss_weighting: str = field(default="balanced", metadata=_choices("published", "balanced"))
    extreme_threshold: float | None = None  # None: 0.5 synthetic, 0.35 real data


@dataclass
class OptimOptions:
    """Optimiser, learning-rate schedule, batch, crops and caps of the training loop."""

    n_epochs: int = 100
    batch_size: int = 1
    optimizer: str = field(default="Adam", metadata=_choices("Adam", "AdamW", "SGD"))
    lr: float = 1e-3
    lr_min: float = 1e-5
    lr_warmup: float = 1e-6
    lr_warmup_epochs: float = 0.2  # may be fractional; published: 2 (two epochs near 1e-6)
    lr_scheduler: str = field(default="cosine", metadata=_choices("cosine", "step", "constant"))
    lr_decay_rate: float = 0.9
    lr_decay_step: int = 20
    weight_decay: float = 3e-3
    beta1: float = 0.9
    beta2: float = 0.999
    train_crop: int = 0  # >0: train on random train_crop x train_crop patches of each sample (speed)
    train_crop_focus: float = 0.0  # share of training crops placed on an extreme pixel of the target week
    max_train_batches: int = 0  # 0 = whole epoch; >0 caps batches per epoch (quick runs)
    max_eval_batches: int = 0


@dataclass
class LoaderOptions:
    """DataLoader workers and pinned memory."""

    n_workers: int = 0
    pin_memory: bool = True


@dataclass
class MethodOptions:
    """Which method runs, and how a scoring method's driver threshold is chosen (docs/baselines.md)."""

    method: str = field(default="ide", metadata=_registered("models.methods:METHODS"))
    driver_threshold_rule: str = field(default="val_f1", metadata=_choices("val_f1", "normal_percentile", "fixed"))
    driver_threshold: float | None = None  # fixed score threshold (rule 'fixed'; MIL: 0.5 on the sigmoid)
    driver_threshold_percentile: float = 99.0  # rule 'normal_percentile': of scores at extreme-free pixels


@dataclass
class MILOptions:
    """DeepMIL, ARNet, RTFM and MGFN (Baselines_MIL/)."""

    mil_topk: int = 100
    # k of each top-k bag = ceil(mil_topk_fraction x bag size) (RTFM/MGFN: 3 of 32 snippets);
    # none: the published absolute mil_topk (100 for 6 x 200 x 200 instances; collapses on crops)
    mil_topk_fraction: float | None = 0.1
    # rows of the top-k: "row" = (sample, week) over all (variable, pixel) instances (published);
    # "variable" = (sample, variable, week) over pixels, so each variable has its own top-k
    mil_topk_per: str = field(default="row", metadata=_choices("row", "variable"))
    mil_hidden: list[int] = field(default_factory=lambda: [512, 256])
    mil_dropout: float = 0.5
    mil_instance_dropout: float = 0.5  # DeepMIL
    # DeepMIL with a fraction: compare each row's positive and negative bags at equal size (random
    # subsample of the larger one), so the top-k means are the same quantile estimate on both sides
    mil_match_bags: bool = False
    arnet_lambda_center: float = 20.0
    rtfm_alpha: float = 1e-4
    rtfm_margin: float = 100.0
    mgfn_mag_ratio: float = 0.1
    mgfn_lambda_mc: float = 1e-3
    mgfn_dims: list[int] = field(default_factory=lambda: [512, 256])
    mgfn_heads: list[int] = field(default_factory=lambda: [32, 2])


@dataclass
class OneClassOptions:
    """SimpleNet, OCSVM and Isolation Forest (Baselines_OneClass/)."""

    simplenet_backbone: str | None = None  # IDE checkpoint whose frozen encoder gives the features
    simplenet_noise_std: float = 1.5
    simplenet_feature_scale: float = 0.01
    simplenet_proj_dim: int = 512
    simplenet_dsc_hidden: int = 96
    oneclass_n_fit: int = 20000  # training vectors per variable (subsample) for OCSVM / Isolation Forest
    oneclass_window: int = 3  # temporal neighbourhood (weeks) of a voxel's feature vector
    ocsvm_nu: float = 0.05
    iforest_n_estimators: int = 100


@dataclass
class ReconstructionOptions:
    """STEALNet and UniAD (Baselines_Reconstruction/)."""

    stealnet_out_scale: float = 10.0
    uniad_hidden: int = 96
    uniad_layers: int = 3
    uniad_heads: int = 3
    uniad_neighbor: int = 9
    uniad_pool: int = 2


@dataclass
class AttributionOptions:
    """Integrated gradients I and II (Baselines_Attribution/)."""

    ig_n_steps: int = 16


#: the sections of the configuration, in the order of --help and config.yaml
SECTIONS = (
    RunOptions, DataOptions, SyntheticOptions, ReanalysisOptions, DatacubeOptions, EncoderOptions, QuantizerOptions,
    ClassifierOptions, LossOptions, OptimOptions, LoaderOptions, MethodOptions, MILOptions, OneClassOptions,
    ReconstructionOptions, AttributionOptions,
)


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


def _read_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix == ".pkl":  # a published argparse.Namespace pickle, read without running code
        return read_published_config(path, known=FIELDS)
    with open(path) as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option: value")
    if "base" in data:  # a preset may build on other files (a name or a list, relative to itself)
        names = data.pop("base")
        merged: dict[str, Any] = {}
        for name in [names] if isinstance(names, str) else list(names or []):
            merged.update(_read_file(path.parent / str(name)))
        merged.update(data)
        data = merged
    return data


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False, default_flow_style=None)
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
        kwargs["help"] = f"(default: {shown})"
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
