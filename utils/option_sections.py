"""The sections of the configuration: one dataclass per part of a run, each with its options' defaults.

``config.Config`` inherits every section, so options keep their flat names everywhere (command
line, YAML, ``config.yaml``, published ``config.pkl``); a component takes its own section
(``cfg.section(EncoderOptions)``). ``metadata['help']`` is an option's one line of meaning (``--help``
and the generated option reference, docs/reference/options.md, show it; an option without one fails
tests/test_option_reference.py and the docs build). ``metadata['choices']`` restricts a string option,
``metadata['registry']`` reads its choices from a registry when it is checked. A section's docstring
says which methods and dataset families read it.
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
    """Where a run writes, on which device, with which seed; test-time choices.

    Read by every method and dataset family (the entry scripts, utils/run.py, utils/runtime.py).
    """

    name: str = field(default="test", metadata={"help": "run name: the run folder is <dir_log>/<name>"})
    dir_log: str = field(default="./log", metadata={"help": "parent folder of the run folders"})
    phase: str = field(default="train", metadata={
        **_choices("train", "val", "test"),
        "help": "published option, kept so a config.pkl reads; not read here (the entry script decides)"})
    seed: int = field(default=0, metadata={
        "help": "seed of Python, NumPy and torch (model init, augmentation, crops, subsamples)"})
    device: str = field(default="auto", metadata={
        "help": "auto (CUDA when available, else CPU), cpu, cuda (under torchrun: the rank's local GPU) or cuda:N"})
    amp: str = field(default="auto", metadata={
        **_choices("auto", "none", "bf16", "fp16"),
        "help": "autocast dtype (auto: bf16 on CUDA, float32 on CPU; bf16 by name autocasts on CPU too; "
                "fp16 is CUDA only)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the run in <dir_log>/<name> from its last.pth (optimiser, schedule, RNG state)"})
    overwrite: bool = field(default=False, metadata={
        "help": "train into a run folder that already holds a run, replacing it (refused otherwise)"})
    checkpoint: str | None = field(default=None, metadata={
        "help": "test scripts: checkpoint to evaluate; none = the run folder's refit_model.pth (while it "
                "is the refit of its source checkpoint), best_driver_F1, best_F1, best_loss, then last"})
    split: str = field(default="test", metadata={
        **_choices("train", "val", "test"), "help": "test scripts: the split to evaluate"})
    ensemble: list[str] = field(default_factory=list, metadata={
        "help": "test scripts: names of more runs (folders under dir_log, trained with the same options and "
                "other seeds) evaluated with this one as a seed ensemble: flags united, extreme "
                "probabilities averaged (models/ensemble.py)"})
    # each start continued to the end can lose a different driver variable (docs/results/paper-size.md)
    ensemble_starts: bool = field(default=False, metadata={
        "help": "test scripts: evaluate the run with the other starts that restart_keep continued to the end "
                "(starts/seed_S) as a seed ensemble: flags united, extreme probabilities averaged"})
    save_predictions: bool = field(default=False, metadata={
        "help": "test scripts: also write drivers_<split>.nc (driver flags and extremes) into the run folder"})
    gpu_id: str = field(default="0", metadata={
        "help": "published option without effect; choose devices with CUDA_VISIBLE_DEVICES, torchrun or --device"})


@dataclass
class DataOptions:
    """What every dataset family reads: variables, window length, crop, normalisation.

    Read by every dataset family and method (``x_min``..``y_max`` by the synthetic and reanalysis loaders,
    ``window_size`` by the reanalysis loaders only; config.ONLY_WHEN lists what each option needs).
    """

    dataset: str = field(default="synthetic", metadata={
        **_registered("dataset.families:DATASETS"),
        "help": "dataset family; the entry scripts set it (train_<family>.py)"})
    variables: list[str] = field(default_factory=lambda: list(SYNTHETIC_VARIABLES), metadata={
        "help": "input variables, in order (one encoder branch and one driver map each)"})
    variables_static: list[str] = field(default_factory=lambda: ["latitude", "longitude"], metadata={
        "help": "published option, kept so a config.pkl reads; not read here (no static inputs)"})
    in_channels: int = field(default=1, metadata={
        "help": "input channels per variable: 1 synthetic, 2 ERA5-Land and CERRA (weekly mean and std), "
                "datacube: one per statistic"})
    in_channels_dynamic: int = field(default=6, metadata={
        "help": "number of input variables; must equal the length of 'variables'"})
    delta_t: int = field(default=8, metadata={
        "help": "window length in time steps (weeks): the target week and the delta_t - 1 before it; "
                "2, 4, 8, 16 or 32"})
    x_min: int = field(default=0, metadata={"help": "first column (pixel) of the grid crop, inclusive"})
    x_max: int = field(default=200, metadata={"help": "end column (pixel) of the grid crop, exclusive"})
    y_min: int = field(default=0, metadata={"help": "first row (pixel) of the grid crop, inclusive"})
    y_max: int = field(default=200, metadata={"help": "end row (pixel) of the grid crop, exclusive"})
    window_size: int = field(default=1, metadata={
        "help": "real data: spatial coarsening factor (NaN-aware average over window_size x window_size pixels)"})
    is_norm: bool = field(default=True, metadata={
        "help": "normalise the inputs (by the climatology or by global statistics); false = raw values"})
    is_clima_scale: bool = field(default=True, metadata={
        "help": "normalise per pixel and week of year by the climatology (median, std); false = global mean, std"})
    is_aug: bool = field(default=True, metadata={
        "help": "training split: random 180-degree rotations and flips of each sample"})
    is_shuffle: bool = field(default=False, metadata={
        "help": "published option without effect (the published loader did not read it either)"})
    nan_fill: float = field(default=0.0, metadata={
        "help": "value that replaces missing inputs (NaN) after normalisation"})
    clip_value: float = field(default=10.0, metadata={
        "help": "normalised inputs are clipped to [-clip_value, clip_value]"})


@dataclass
class SyntheticOptions:
    """Synthetic benchmarks (dataset/synthetic.py).

    Read by the ``synthetic`` family (train_synthetic.py, test_synthetic.py and the baseline shortcuts).
    """

    root_synthetic: str = field(default="./data/synthetic/small", metadata={
        "help": "benchmark folder written by python -m dataset.generate_synthetic (datacube_<exp>.nc and friends)"})
    times_train: tuple[int, int] = field(default=(1, 1768), metadata={
        "help": "training weeks START END (1-based, inclusive)"})
    times_val: tuple[int, int] = field(default=(1769, 2080), metadata={
        "help": "validation weeks START END (1-based, inclusive)"})
    times_test: tuple[int, int] = field(default=(2081, 2392), metadata={
        "help": "test weeks START END (1-based, inclusive)"})


@dataclass
class ReanalysisOptions:
    """ERA5-Land and CERRA with NOAA drought labels (dataset/real_dataset.py).

    Read by the ``ERA5_Land`` and ``CERRA`` families (train_/test_ERA5_Land.py, train_/test_CERRA.py).
    """

    region: str = field(default="EUR-11", metadata={
        **_choices(*REGIONS), "help": "ERA5-Land: CORDEX region (the folder under root_ERA5_Land and root_NOAA)"})
    root_ERA5_Land: str = field(default="../ERA5-Land", metadata={
        "help": "ERA5-Land folder (holding <region>/) or the region folder itself"})
    root_NOAA: str = field(default="../NOAA_CORDEX", metadata={
        "help": "NOAA VHI labels on the CORDEX grids, for ERA5-Land (holding <region>/ or the region folder)"})
    root_CERRA: str = field(default="../CERRA", metadata={
        "help": "CERRA folder (CERRA_statistic_train.json, the climatology and <YYYY>/ weekly files)"})
    root_NOAA_CERRA: str = field(default="../NOAA_CERRA", metadata={
        "help": "NOAA VHI labels on the CERRA grid"})
    store: str | None = field(default=None, metadata={
        "help": "a zarr store written by python -m dataset.to_zarr; read instead of the root_* trees"})
    years_train: list[str] = field(default_factory=lambda: _years(1984, 2017), metadata={
        "help": "years of the training split (52 weeks each)"})
    years_val: list[str] = field(default_factory=lambda: _years(2018, 2020), metadata={
        "help": "years of the validation split"})
    years_test: list[str] = field(default_factory=lambda: _years(2021, 2024), metadata={
        "help": "years of the test split"})
    threshold: float = field(default=26.0, metadata={
        "help": "a pixel-week is an extreme drought where VHI is below this"})
    threshold_anomaly: float = field(default=35.0, metadata={
        "help": "VHI below this in any week of the window marks a pixel as not normal in training (no "
                "normal-code pull; a positive MIL bag; left out of the one-class and reconstruction fits)"})
    alpha: float = field(default=0.5, metadata={"help": "VHI = alpha VCI + (1 - alpha) TCI"})


@dataclass
class DatacubeOptions:
    """Your own datacube (dataset/datacube.py, docs/guides/datacube.md).

    Read by the ``datacube`` family (train_datacube.py, test_datacube.py).
    """

    data: str | None = field(default=None, metadata={
        "help": "the datacube: a netCDF file, a glob of netCDF files or a zarr store (anything xarray opens)"})
    target: str | None = field(default=None, metadata={
        "help": "variable of the extremes: 0/1, or a continuous index with target_below / target_above"})
    target_below: float | None = field(default=None, metadata={
        "help": "extreme where target < this (per source step; a step is extreme if any of its source steps is)"})
    target_above: float | None = field(default=None, metadata={
        "help": "extreme where target > this (per source step, as target_below)"})
    mask: str | None = field(default=None, metadata={
        "help": "optional variable of valid pixels (1 = valid); others count in no loss and no metric"})
    truth_drivers: str | None = field(default=None, metadata={
        "help": "optional 0/1 true drivers (variable, time, lat, lon): enables driver F1 and the val_f1 rule"})
    period_train: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"], metadata={
        "help": "training period START END (ISO dates, inclusive)"})
    period_val: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"], metadata={
        "help": "validation period START END (ISO dates, inclusive)"})
    period_test: list[str] = field(default_factory=lambda: ["1900-01-01", "1900-12-31"], metadata={
        "help": "test period START END (ISO dates, inclusive)"})
    step: str | None = field(default=None, metadata={
        "help": "time step the data are aggregated to (a pandas offset, e.g. 7D); none = the data's own step"})
    statistics: list[str] = field(default_factory=lambda: ["mean"], metadata={
        "help": "per-step statistics of each variable (mean, std), one input channel each"})
    # e.g. the run folder's datacube_climatology.nc of another run
    climatology: str | None = field(default=None, metadata={
        "help": "netCDF with median and std, dims (variable, statistic, step_of_year, y, x), to normalise by "
                "instead of the training period's climatology"})
    lat_min: float | None = field(default=None, metadata={"help": "southern edge of a lat/lon box (degrees)"})
    lat_max: float | None = field(default=None, metadata={"help": "northern edge of a lat/lon box (degrees)"})
    lon_min: float | None = field(default=None, metadata={"help": "western edge of a lat/lon box (degrees)"})
    lon_max: float | None = field(default=None, metadata={"help": "eastern edge of a lat/lon box (degrees)"})


@dataclass
class EncoderOptions:
    """The per-variable encoder (models/encoder/) and the weight initialisation.

    Read by IDE and the baselines that encode with it (DeepMIL, ARNet, RTFM, MGFN, SimpleNet's backbone);
    the Mamba options by ``encoder: Mamba`` only, the window and attention options by Swin_3D and Mamba.
    """

    encoder: str = field(default="Swin_3D", metadata={
        **_choices("CNN_3D", "Swin_3D", "Mamba"), "help": "encoder architecture of each variable's branch"})
    en_embed_dim: list[int] = field(default_factory=lambda: [16, 16], metadata={
        "help": "feature width of each encoder stage (CNN_3D: one width for all)"})
    en_depths: list[int] = field(default_factory=lambda: [2, 1], metadata={
        "help": "blocks per stage (Swin_3D, Mamba)"})
    en_n_heads: list[int] = field(default_factory=lambda: [2, 2], metadata={
        "help": "attention heads per stage; each stage's width must divide by it"})
    en_window_size: list[tuple[int, int, int]] = field(default_factory=lambda: [(2, 4, 4), (8, 1, 1)], metadata={
        "help": "attention / scan window (time, y, x) per stage, three integers each"})
    en_patch_size: tuple[int, int, int] = field(default=(1, 1, 1), metadata={
        "help": "patch (time, y, x) of the input embedding; only (1, 1, 1) is supported (a flag per voxel)"})
    en_patch_norm: bool = field(default=False, metadata={
        "help": "published option, kept so a config.pkl reads; not read here (no norm after the embedding)"})
    en_mlp_ratio: float = field(default=4.0, metadata={"help": "hidden width of a block's MLP / its input width"})
    en_qkv_bias: bool = field(default=True, metadata={"help": "bias in the query, key and value projections"})
    en_qk_scale: float | None = field(default=None, metadata={
        "help": "attention logit scale; none = head width ** -0.5"})
    en_drop_rate: float = field(default=0.0, metadata={"help": "dropout in the encoder blocks"})
    en_attn_drop_rate: float = field(default=0.0, metadata={"help": "dropout on the attention weights"})
    en_attention: str = field(default="auto", metadata={
        **_choices("auto", "fused", "matmul"),
        "help": "Swin_3D window attention: fused = F.scaled_dot_product_attention, matmul = batched matmul + "
                "softmax; auto = fused on CUDA, matmul elsewhere (faster on CPU, docs/design/performance.md)"})
    en_drop_path_rate: float = field(default=0.0, metadata={
        "help": "stochastic depth: largest drop-path rate, reached at the last block (linear from 0)"})
    en_use_checkpoint: bool = field(default=False, metadata={
        "help": "gradient checkpointing of the blocks: less memory, about one more forward pass of time"})
    en_de_pretrained: str | None = field(default=None, metadata={
        "help": "published option, kept so a config.pkl reads; not read here (SimpleNet: use simplenet_backbone)"})
    d_state: list[int] = field(default_factory=lambda: [1, 1], metadata={
        "help": "Mamba: state size of the selective scan, per stage"})
    d_conv: list[int] = field(default_factory=lambda: [3, 3], metadata={
        "help": "Mamba: kernel of the causal depthwise convolution, per stage"})
    expand: list[int] = field(default_factory=lambda: [1, 1], metadata={
        "help": "Mamba: inner width / block width, per stage"})
    dt_min: float = field(default=0.01, metadata={"help": "Mamba: smallest initial time step dt (log-uniform)"})
    dt_max: float = field(default=0.1, metadata={"help": "Mamba: largest initial time step dt (log-uniform)"})
    mamba_impl: str = field(default="auto", metadata={
        **_choices("auto", "torch", "kernel"),
        "help": "Mamba scan: kernel = mamba_ssm's CUDA kernel, torch = plain PyTorch, auto = kernel when available"})
    init: str = field(default="corrected", metadata={
        **_choices("corrected", "published"),
        "help": "weight initialisation: corrected (trunc-normal 0.02, zero bias) or the published N(0.02, 0.02)"})


@dataclass
class QuantizerOptions:
    """The binary quantizer (models/codebook.py) and its loss weights.

    Read by IDE (``codebook_dim`` also by the baselines that use the encoder: it is the encoder's output width).
    """

    codebook: str = field(default="LFQ", metadata={
        **_choices("LFQ", "FSQ", "VQ", "LatentQuantize", "RandomProjectionVQ"),
        "help": "quantizer that turns each voxel's features into a code (code 0 = normal, others = driver)"})
    codebook_size: int = field(default=2, metadata={
        "help": "number of codes (2: normal and driver; LFQ needs a power of 2)"})
    codebook_dim: int = field(default=16, metadata={"help": "width of the encoder's output and of the codes"})
    # published 3.0 / 0.1 / 0.1 hold every flag at "normal" on short runs
    lambda_commitment: float = field(default=0.1, metadata={
        "help": "weight of the quantizer's commitment loss (published: 3.0)"})
    lambda_entropy: float = field(default=0.01, metadata={
        "help": "LFQ: weight of the entropy loss (published: 0.1); must be > 0"})
    diversity_gamma: float = field(default=0.01, metadata={
        "help": "LFQ: weight of the codebook-usage (diversity) term in the total loss (published: 0.1)"})
    lambda_ortho: float = field(default=10.0, metadata={
        "help": "published option without effect: no quantizer here has an orthogonal loss"})


@dataclass
class ClassifierOptions:
    """The extreme classifier (models/classifier.py) and the inputs IDE gives the encoder.

    Read by IDE (``cls_dim`` and ``cls_drop_rate`` also by the integrated-gradients baselines).
    """

    classifier: str = field(default="CNN_3D", metadata={
        **_choices("CNN_3D"), "help": "extreme classifier over the quantized codes of the window"})
    cls_dim: int = field(default=16, metadata={"help": "hidden width of the classifier"})
    cls_drop_rate: float = field(default=0.0, metadata={"help": "dropout rate in the extreme classifier"})
    # Non-negative weights keep driver variables from staying switched off (docs/results/recipe.md);
    # training only: the flags and the extreme prediction do not depend on it.
    # A run can leave a driver variable off for good when the joint head leans on the others; hiding
    # random variables from it makes each one count (models/ide.py). Training only.
    cls_var_dropout: float = field(default=0.0, metadata={
        "help": "training: share of (sample, variable) pairs the joint classifier sees at the normal code "
                "(the per-variable heads see every flag); 0 = off, as published"})
    monotone_heads: bool = field(default=False, metadata={
        "help": "per-variable heads read the driver flags through non-negative weights, so a flag can only "
                "raise the extreme logit; false = the published heads"})
    # 'always' removes what the whole region shares and the climatology missed (a seasonal cycle out of
    # step with the 52-week calendar, a region-wide shift) so local anomalies stand out; 'auto' measures
    # the training split (dataset/grid_signal.py; docs/results/paper-size.md)
    spatial_anomaly: str = field(default="none", metadata={
        **_choices("none", "always", "auto"),
        "help": "always: each input channel also minus its spatial median per week (doubles the input "
                "channels); none: the published input; auto: always when the grid shares at least half "
                "of the median variable's variance"})


@dataclass
class LossOptions:
    """IDE's loss: the normal-code pull and the extreme BCE.

    Read by IDE (``extreme_threshold`` by every method that predicts extremes).
    """

    lambda_anomaly: float = field(default=30.0, metadata={
        "help": "weight of the L1 pull of the codes of pixels without an extreme in the window towards the "
                "normal code (published: 100)"})
    # A full-strength pull from step 0 switches every flag off before the classifier can ask for any
    # (docs/results/recipe.md).
    lambda_anomaly_start: float = field(default=1.0, metadata={
        "help": "lambda_anomaly at the first epoch, ramped geometrically to lambda_anomaly"})
    lambda_anomaly_warmup_epochs: float = field(default=5.0, metadata={
        "help": "epochs of the lambda_anomaly ramp (0 = lambda_anomaly from the start)"})
    # Pulls every variable's flags towards its own outliers early on, so fewer driver variables are
    # switched off before the classifier can use them (models/flag_prior.py).
    flag_prior: float = field(default=0.0, metadata={
        "help": "weight of the anomaly prior at the first epoch: a balanced BCE pulling each voxel's flag "
                "towards 'its value is an outlier of its sample and variable'; 0 = off"})
    flag_prior_epochs: float = field(default=6.0, metadata={
        "help": "epochs over which the anomaly prior's weight falls linearly to 0"})
    flag_prior_floor: float = field(default=0.0, metadata={
        "help": "the anomaly prior's weight never falls below this (with flag_prior > 0), so it stays on "
                "for the whole run; 0 = it ends after flag_prior_epochs"})
    flag_prior_threshold: float = field(default=3.0, metadata={
        "help": "anomaly prior: robust standard deviations (1.4826 x MAD) from the median that make an outlier"})
    loss_weighting: str = field(default="balanced", metadata={
        **_choices("published", "balanced"),
        "help": "class weights of the extreme BCE: balanced w_c = n / (2 n_c); published "
                "w_c = ln((n_c / n) ** -0.5 + 1.1), nearly flat"})
    extreme_threshold: float | None = field(default=None, metadata={
        "help": "probability above which a pixel is predicted extreme; none = 0.5 synthetic, 0.35 real data"})


@dataclass
class OptimOptions:
    """Optimiser, learning-rate schedule, batch, crops and caps of the training loop.

    Read by the engine (utils/engine.py) for every method and dataset family.
    """

    n_epochs: int = field(default=100, metadata={"help": "number of training epochs"})
    batch_size: int = field(default=1, metadata={"help": "samples per batch (per process under torchrun)"})
    optimizer: str = field(default="Adam", metadata={
        **_choices("Adam", "AdamW", "SGD"), "help": "optimiser of the trainable parameters (SGD: momentum beta1)"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate after the warm-up"})
    lr_min: float = field(default=1e-5, metadata={"help": "cosine schedule: learning rate at the last epoch"})
    lr_warmup: float = field(default=1e-6, metadata={"help": "learning rate at the first step of the warm-up"})
    lr_warmup_epochs: float = field(default=0.2, metadata={
        "help": "epochs of the linear warm-up (may be fractional; published: 2)"})
    lr_scheduler: str = field(default="cosine", metadata={
        **_choices("cosine", "step", "constant"), "help": "learning-rate schedule after the warm-up"})
    lr_decay_rate: float = field(default=0.9, metadata={"help": "step schedule: factor per decay"})
    lr_decay_step: int = field(default=20, metadata={"help": "step schedule: epochs between decays"})
    weight_decay: float = field(default=3e-3, metadata={"help": "weight decay of the optimiser"})
    beta1: float = field(default=0.9, metadata={"help": "Adam / AdamW beta1; SGD momentum"})
    beta2: float = field(default=0.999, metadata={"help": "Adam / AdamW beta2 (second-moment decay)"})
    train_crop: int = field(default=0, metadata={
        "help": "> 0: train on random train_crop x train_crop pixel patches of each sample (faster steps); "
                "0 = the whole grid"})
    train_crop_focus: float = field(default=0.0, metadata={
        "help": "share of training crops placed on an extreme pixel of the target week, in [0, 1]"})
    max_train_batches: int = field(default=0, metadata={
        "help": "> 0: at most this many training batches per epoch (quick runs); 0 = the whole epoch"})
    max_eval_batches: int = field(default=0, metadata={
        "help": "> 0: at most this many batches per validation or test pass; 0 = the whole split"})
    lr_scaling: str = field(default="none", metadata={
        **_choices("none", "linear", "sqrt"),
        "help": "scale lr, lr_min and lr_warmup with batch_size x ranks against lr_reference_batch "
                "(docs/guides/gpu-training.md)"})
    lr_reference_batch: int = field(default=1, metadata={
        "help": "the global batch (samples per optimiser step) that lr was chosen for"})
    fused_adam: bool = field(default=True, metadata={
        "help": "Adam/AdamW with fused=True when every parameter is on CUDA (no effect on CPU)"})
    restarts: int = field(default=1, metadata={
        "help": "> 1: train this many starts (seeds seed, seed + 1, ...) for restart_epochs epochs each and "
                "continue the one with the best validation score to n_epochs (utils/restarts.py)"})
    restart_epochs: int = field(default=6, metadata={
        "help": "restarts > 1: epochs each start trains before the best one is chosen"})
    restart_keep: int = field(default=1, metadata={
        "help": "restarts > 1: continue this many of the best starts to n_epochs, then keep the one with the "
                "best validation score at the end (utils/restarts.py)"})
    classifier_refit_epochs: int = field(default=0, metadata={
        "help": "> 0: once trained, train the classifier alone for this many epochs on the frozen flags of the "
                "checkpoint the test uses, into refit_model.pth, which the test then uses (utils/refit.py)"})
    classifier_refit_lr: float = field(default=5e-4, metadata={
        "help": "classifier_refit_epochs > 0: the refit's learning rate, down a cosine to lr_min"})


@dataclass
class LoaderOptions:
    """Where training batches come from (DataLoader workers, pinned memory, or the split on the device) and
    what the training step does on a GPU (host reads every sync_every steps, torch.compile, channels-last).

    Read by the engine for every dataset family (device_data: the synthetic family).
    """

    n_workers: int = field(default=0, metadata={
        "help": "data-loading worker processes (0 = load in the main process)"})
    pin_memory: bool = field(default=True, metadata={
        "help": "page-locked batches for faster copies to the GPU (CUDA only)"})
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
    """Which method runs, and how a scoring method's driver threshold is chosen (docs/guides/baselines.md).

    Read by every method; the threshold options by the scoring baselines (MIL, one-class, reconstruction,
    attribution) at test time.
    """

    method: str = field(default="ide", metadata={
        **_registered("models.methods:METHODS"), "help": "method to train or test: IDE or a baseline"})
    driver_threshold_rule: str = field(default="val_f1", metadata={
        **_choices("val_f1", "normal_percentile", "fixed"),
        "help": "scoring methods: threshold that best fits the true drivers of the validation split (val_f1), "
                "a percentile of scores at extreme-free pixels (normal_percentile) or driver_threshold (fixed)"})
    driver_threshold: float | None = field(default=None, metadata={
        "help": "score threshold of rule fixed; MIL methods: the probability above which they flag (none = 0.5)"})
    driver_threshold_percentile: float = field(default=99.0, metadata={
        "help": "rule normal_percentile: the percentile of scores at extreme-free validation pixels"})
    # A per-variable encoder cannot tell a driver from a random anomaly of the same shape; what follows
    # can (utils/driver_gate.py, docs/results/paper-size.md)
    driver_gate: str = field(default="none", metadata={
        **_choices("none", "extreme", "auto"),
        "help": "extreme: a flag counts as a driver only where the model predicts an extreme at its pixel "
                "within driver_gate_weeks weeks after it; none: every flag (the published output); auto: "
                "extreme for IDE where the flags are re-assembled and the threshold can be chosen, else none"})
    driver_gate_weeks: int | None = field(default=None, metadata={
        "help": "weeks after a flag in which the gate looks for a predicted extreme (none = delta_t - 1)"})
    # the published generator's drivers run from 9 weeks before to 4 weeks after their extreme's onset
    driver_gate_weeks_before: int = field(default=0, metadata={
        "help": "weeks before a flag in which a predicted extreme also opens the gate (a driver can outlast "
                "its extreme's onset)"})
    driver_gate_window: str = field(default="fixed", metadata={
        **_choices("fixed", "val"),
        "help": "fixed: the gate looks driver_gate_weeks_before weeks before and driver_gate_weeks after a flag; "
                "val: both chosen with the threshold on the validation split (0, 2 or 4 before; delta_t - 1 or "
                "delta_t + 1 after; needs true drivers)"})
    driver_gate_threshold: float | None = field(default=None, metadata={
        "help": "extreme probability that opens the gate; none = chosen on the validation split by driver "
                "F1 (needs true drivers)"})
    driver_gate_model: str = field(default="classifier", metadata={
        **_choices("classifier", "input_trees", "flag_trees"),
        "help": "what predicts the extremes the gate looks for: classifier (the model's own head), "
                "input_trees (gradient-boosted trees fit at test time on the inputs of the training split) "
                "or flag_trees (the same on the checkpoint's flags); models/gate_trees.py"})
    # the published generator's exp-1 drivers are four of six variables (docs/results/paper-size.md)
    driver_gate_variables: str = field(default="all", metadata={
        **_choices("all", "trees"),
        "help": "all: every variable's flags can drive; trees (with driver_gate_model input_trees): a variable "
                "whose inputs alone predict the validation extremes no better than driver_gate_variable_lift "
                "times chance never drives (its flags set to normal)"})
    driver_gate_variable_lift: float = field(default=4.0, metadata={
        "help": "driver_gate_variables trees: the validation average precision over the share of extremes "
                "that trees fit on one variable's inputs must reach for its flags to drive"})
    gate_trees_box: int = field(default=5, metadata={
        "help": "driver_gate_model flag_trees: width in pixels of the neighbourhood whose share of flags is a feature"})


@dataclass
class MILOptions:
    """DeepMIL, ARNet, RTFM and MGFN (Baselines_MIL/).

    Read by ``--method deepmil``, ``arnet``, ``rtfm`` and ``mgfn`` (``mgfn_*`` by MGFN only).
    """

    mil_topk: int = field(default=100, metadata={
        "help": "k of each top-k bag when mil_topk_fraction is none (published: 100)"})
    # RTFM/MGFN take 3 of 32 snippets; the published absolute k (100 for 6 x 200 x 200 instances)
    # collapses on crops
    mil_topk_fraction: float | None = field(default=0.1, metadata={
        "help": "k of each top-k bag = ceil(fraction x bag size); none = the absolute mil_topk"})
    mil_topk_per: str = field(default="row", metadata={
        **_choices("row", "variable"),
        "help": "bag rows: row = (sample, week) over all variables and pixels (published); variable = "
                "(sample, variable, week) over pixels, a top-k per variable"})
    mil_hidden: list[int] = field(default_factory=lambda: [512, 256], metadata={
        "help": "hidden widths of the instance MLP (DeepMIL, ARNet, RTFM)"})
    mil_dropout: float = field(default=0.5, metadata={"help": "dropout in the instance MLP"})
    mil_instance_dropout: float = field(default=0.5, metadata={
        "help": "DeepMIL: share of instances dropped from the bags in training"})
    mil_match_bags: bool = field(default=False, metadata={
        "help": "DeepMIL with a fraction: subsample the larger of each row's positive and negative bags to "
                "the size of the other"})
    arnet_lambda_center: float = field(default=20.0, metadata={
        "help": "ARNet: weight of the center loss on the scores of normal instances"})
    rtfm_alpha: float = field(default=1e-4, metadata={"help": "RTFM: weight of the feature-magnitude margin loss"})
    rtfm_margin: float = field(default=100.0, metadata={
        "help": "RTFM and MGFN: margin between feature magnitudes of positive and negative bags"})
    mgfn_mag_ratio: float = field(default=0.1, metadata={
        "help": "MGFN: weight of the feature-magnitude channel added in the glance-and-focus head"})
    mgfn_lambda_mc: float = field(default=1e-3, metadata={
        "help": "MGFN: weight of the magnitude-contrastive loss"})
    mgfn_dims: list[int] = field(default_factory=lambda: [512, 256], metadata={
        "help": "MGFN: widths of the head's stages (the first a multiple of codebook_dim)"})
    mgfn_heads: list[int] = field(default_factory=lambda: [32, 2], metadata={
        "help": "MGFN: attention heads of the head's stages (as many as mgfn_dims)"})


@dataclass
class OneClassOptions:
    """SimpleNet, OCSVM and Isolation Forest (Baselines_OneClass/).

    Read by ``--method simplenet``, ``ocsvm`` and ``iforest``.
    """

    simplenet_backbone: str | None = field(default=None, metadata={
        "help": "SimpleNet: IDE checkpoint whose frozen encoder gives the features (needed to train)"})
    simplenet_noise_std: float = field(default=1.5, metadata={
        "help": "SimpleNet: std of the Gaussian noise that makes the fake (anomalous) features"})
    simplenet_feature_scale: float = field(default=0.01, metadata={
        "help": "SimpleNet: factor on the backbone's features before the projection"})
    simplenet_proj_dim: int = field(default=512, metadata={"help": "SimpleNet: width of the feature projection"})
    simplenet_dsc_hidden: int = field(default=96, metadata={"help": "SimpleNet: hidden width of the discriminator"})
    oneclass_n_fit: int = field(default=20000, metadata={
        "help": "OCSVM / Isolation Forest: extreme-free training vectors per variable (a random subsample)"})
    oneclass_window: int = field(default=3, metadata={
        "help": "OCSVM / Isolation Forest: weeks of a voxel's feature vector (centred on the voxel)"})
    ocsvm_nu: float = field(default=0.05, metadata={
        "help": "OCSVM: nu, an upper bound on the share of training vectors outside the boundary"})
    iforest_n_estimators: int = field(default=100, metadata={"help": "Isolation Forest: number of trees"})


@dataclass
class ReconstructionOptions:
    """STEALNet and UniAD (Baselines_Reconstruction/).

    Read by ``--method stealnet`` and ``uniad``.
    """

    stealnet_out_scale: float = field(default=10.0, metadata={
        "help": "STEALNet: reconstructions are tanh(output) x this (the range of normalised inputs)"})
    uniad_hidden: int = field(default=96, metadata={"help": "UniAD: width of the transformer tokens"})
    uniad_layers: int = field(default=3, metadata={"help": "UniAD: encoder and decoder layers (each)"})
    uniad_heads: int = field(default=3, metadata={"help": "UniAD: attention heads per layer"})
    uniad_neighbor: int = field(default=9, metadata={
        "help": "UniAD: a token may not attend to its neighbor x neighbor neighbourhood (0 = no mask)"})
    uniad_pool: int = field(default=2, metadata={
        "help": "UniAD: average-pooling factor of the fields it reconstructs (errors are upsampled back)"})


@dataclass
class AttributionOptions:
    """Integrated gradients I and II (Baselines_Attribution/).

    Read by the integrated-gradients methods.
    """

    ig_n_steps: int = field(default=16, metadata={
        "help": "integration steps of the path integral (forward and backward passes per batch)"})


#: the sections of the configuration, in the order of --help and config.yaml
SECTIONS = (
    RunOptions, DataOptions, SyntheticOptions, ReanalysisOptions, DatacubeOptions, EncoderOptions, QuantizerOptions,
    ClassifierOptions, LossOptions, OptimOptions, LoaderOptions, MethodOptions, MILOptions, OneClassOptions,
    ReconstructionOptions, AttributionOptions,
)
