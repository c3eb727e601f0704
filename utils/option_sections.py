"""The sections of the configuration: one dataclass per part of a run, each with its options' defaults.

``config.Config`` inherits every section, so options keep their flat names everywhere (command
line, YAML, ``config.yaml``, published ``config.pkl``); a component takes its own section
(``cfg.section(EncoderOptions)``). ``metadata['choices']`` restricts a string option,
``metadata['registry']`` reads its choices from a registry when it is checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataset.variables import REGIONS, SYNTHETIC_VARIABLES

__all__ = [
    "SECTIONS", "RunOptions", "DataOptions", "SyntheticOptions", "ReanalysisOptions", "DatacubeOptions",
    "EncoderOptions", "QuantizerOptions", "ClassifierOptions", "LossOptions", "OptimOptions", "LoaderOptions",
    "MethodOptions", "MILOptions", "OneClassOptions", "ReconstructionOptions", "AttributionOptions",
]


def _years(first: int, last: int) -> list[str]:
    return [str(y) for y in range(first, last + 1)]


def _choices(*values: str) -> dict:
    return {"choices": values}


def _registered(registry: str) -> dict:
    """Choices read from a registry (``"module:NAME"``), imported when an option is checked."""
    return {"registry": registry}


@dataclass
class RunOptions:
    """Where a run writes, on which device, with which seed; test-time choices."""

    name: str = "test"
    dir_log: str = "./log"
    phase: str = field(default="train", metadata=_choices("train", "val", "test"))
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = field(default="auto", metadata={
        **_choices("auto", "none", "bf16", "fp16"),
        "help": "autocast dtype on CUDA (auto: bf16 on CUDA, none on CPU; CPU always runs float32)"})
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
    lambda_ortho: float = 10.0  # published option; no quantizer here has an orthogonal loss (no effect)


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
    lr_scaling: str = field(default="none", metadata={
        **_choices("none", "linear", "sqrt"),
        "help": "scale lr, lr_min and lr_warmup with batch_size x ranks against lr_reference_batch "
                "(docs/gpu-training.md)"})
    lr_reference_batch: int = field(default=1, metadata={
        "help": "the global batch (samples per optimiser step) that lr was chosen for"})
    fused_adam: bool = field(default=True, metadata={
        "help": "Adam/AdamW with fused=True when every parameter is on CUDA (no effect on CPU)"})


@dataclass
class LoaderOptions:
    """Where training batches come from (DataLoader workers, pinned memory, or the split on the device) and
    what the training step does on a GPU (host reads every sync_every steps, torch.compile, channels-last)."""

    n_workers: int = 0
    pin_memory: bool = True
    device_data: str = field(default="auto", metadata={
        **_choices("auto", "on", "off"),
        "help": "cut batches from the split held on the run's device (auto: on CUDA when it fits "
                "device_data_max_gb; on: also on CPU; off: DataLoader)"})
    device_data_max_gb: float = field(default=16.0, metadata={
        "help": "largest split (GB on the device) that device_data keeps there; larger ones use the DataLoader"})
    sync_every: int = field(default=50, metadata={
        "help": "training steps between reads of the loss sums and the non-finite-loss check "
                "(1: every step; the epoch end always reads)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the model's forward (first steps slower while it compiles)"})
    channels_last: bool = field(default=False, metadata={
        "help": "keep 3-D convolution weights channels-last (NDHWC, torch.channels_last_3d)"})


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
