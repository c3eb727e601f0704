"""The training and evaluation loops: one readable ``fit`` and one ``evaluate`` for every method.

The run API (``utils/run.py``) calls them; the runtime (device, DDP, AMP, RNG:
``utils/runtime.py``), the run folder and resume rules (``utils/run_folder.py``), checkpoint
files (``utils/checkpoints.py``), logging (``utils/logging.py``) and training crops
(``dataset/crops.py``) live in their own modules.

``fit(cfg, model, train_set, val_set, collectors_factory)`` trains, validates every
epoch and keeps checkpoints; ``evaluate(cfg, model, dataset, collectors)`` runs a
split through the model and hands each ``(batch, out)`` to *collectors*. Neither
knows the dataset or the method: the method interface (``models.methods.Method``) and the
collectors below are all they use.

Collectors (``utils.collectors.Collector``: ``update``, ``all_reduce``, ``result``, ``save``)
receive each ``(batch, out)``; a validation pass keeps ``best_<key>_model.pth`` for every
``checkpoint_keys`` entry its collectors declare (``ExtremeCollector``: ``F1``;
``DriverCollector``: ``driver_F1``) and always ``best_loss_model.pth``.

Learning rate: ``build_scheduler`` (``torch.optim.lr_scheduler``), stepped after every
optimiser step; its state is in ``last.pth``.

Optional model hooks: ``fit_epoch_start(epoch)``, ``fit_epoch_end(epoch)`` (e.g. a
baseline that fits a scikit-learn model on features gathered during the epoch),
``ddp_find_unused_parameters = True``. A loss without gradient (``requires_grad``
False) skips the optimiser step, so non-gradient methods train in the same loop.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dataset.crops import CroppingCollate
from utils.batch_transport import pooled_collate
from utils.checkpoints import save_checkpoint, write_error_message
from utils.collectors import Collector
from utils.distributed import ShardSampler, all_gather, all_reduce_sum
from utils.errors import CheckpointError, ConfigError, StorageError, UserError
from utils.logging import RERUN_TEST, RunFolderError, RunLogger, SampleImages, dig, flatten_metrics, log_epoch, progress
from utils.run_folder import (
    changed_options,
    check_resume_fits,
    clear_run_dir,
    load_checkpoint_dict,
    log_config_changes,
    run_dir_problem,
    versions,
)
from utils.runtime import (
    Runtime,
    prepare_model,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_runtime,
    to_device,
    unwrap,
)

__all__ = [
    "build_scheduler",
    "restore_scheduler",
    "build_optimizer",
    "train_one_epoch",
    "make_train_loader",
    "evaluate",
    "fit",
    "NonFiniteError",
]

CollectorsFactory = Callable[[Dataset], Sequence[Collector]]


# --------------------------------------------------------------------------------------
# runtime: device, process group, mixed precision
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# optimiser and learning-rate schedule
# --------------------------------------------------------------------------------------


def build_optimizer(cfg: Any, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer | None:
    """Adam / AdamW / SGD(momentum beta1) over trainable parameters (``lr``: default ``cfg.lr``); None
    when there are none. Adam and AdamW are fused when ``fused_adam`` and every parameter is on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None
    betas = (cfg.beta1, cfg.beta2)
    lr = cfg.lr if lr is None else lr
    # fused: one kernel for every parameter's update (CUDA only; the CPU keeps the default implementation)
    fused = {"fused": True} if getattr(cfg, "fused_adam", False) and all(p.is_cuda for p in params) else {}
    if cfg.optimizer == "Adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "AdamW":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "SGD":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.beta1, weight_decay=cfg.weight_decay)
    raise ValueError(f"option 'optimizer': unknown {cfg.optimizer!r}")


def build_scheduler(
    cfg: Any, optimizer: torch.optim.Optimizer, steps_per_epoch: int, lrs: dict[str, float] | None = None
) -> LRScheduler:
    """The learning rate of every optimiser step (``torch.optim.lr_scheduler``, stepped once per step).

    Linear warm-up from ``lr_warmup`` to ``lr`` over ``lr_warmup_epochs`` (fractional epochs are
    rounded to whole steps), then ``cosine`` annealing to ``lr_min`` at ``n_epochs``, ``step`` decay
    by ``lr_decay_rate`` every ``lr_decay_step`` epochs, or ``constant``. Its state is saved in
    ``last.pth``, so a resumed run continues the same schedule. ``lrs`` (:func:`scaled_lr`) replaces
    ``lr``, ``lr_min`` and ``lr_warmup``.
    """
    from torch.optim import lr_scheduler as sched

    lrs = lrs or {"lr": cfg.lr, "lr_min": cfg.lr_min, "lr_warmup": cfg.lr_warmup}
    lr, lr_min, lr_warmup = lrs["lr"], lrs["lr_min"], lrs["lr_warmup"]
    steps = max(1, steps_per_epoch)
    warm = min(round(max(0.0, cfg.lr_warmup_epochs) * steps), cfg.n_epochs * steps)
    if cfg.lr_scheduler == "cosine":
        main: LRScheduler = sched.CosineAnnealingLR(optimizer, T_max=max(1, cfg.n_epochs * steps - warm),
                                                    eta_min=lr_min)
    elif cfg.lr_scheduler == "step":
        main = sched.StepLR(optimizer, step_size=max(1, cfg.lr_decay_step) * steps, gamma=cfg.lr_decay_rate)
    else:
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warm == 0:
        return main
    start = min(max(lr_warmup / lr, 1e-12), 1.0) if lr > 0 else 1.0
    warmup = sched.LinearLR(optimizer, start_factor=start, end_factor=1.0, total_iters=warm)
    return sched.SequentialLR(optimizer, [warmup, main], milestones=[warm])


def _cosine(scheduler: LRScheduler) -> Any:
    """The cosine part of a schedule built by :func:`build_scheduler`, or None."""
    from torch.optim import lr_scheduler as sched

    parts = scheduler._schedulers if isinstance(scheduler, sched.SequentialLR) else [scheduler]
    return next((p for p in parts if isinstance(p, sched.CosineAnnealingLR)), None)


def restore_scheduler(scheduler: LRScheduler, saved: dict) -> str | None:
    """Load a saved schedule into ``scheduler`` (built from this run's options) and keep this run's end.

    A resumed run may train for more (or fewer) epochs than the one that saved ``last.pth``. The saved
    cosine would then run past its end and climb again; instead its length becomes this run's, and
    the cosine continues from the saved learning rate to ``lr_min`` at the new last step. Returns a
    line for the log when the length changed.
    """
    cos = _cosine(scheduler)
    t_max = cos.T_max if cos is not None else None
    scheduler.load_state_dict(saved)
    cos = _cosine(scheduler)
    if cos is None or t_max is None or cos.T_max == t_max:
        return None
    old, cos.T_max = cos.T_max, t_max
    return (f"resume: the cosine schedule of last.pth ran {old} steps, this run's options give {t_max}; "
            "it continues from the saved learning rate to lr_min at the new end")


# --------------------------------------------------------------------------------------
# one epoch of training, one pass of evaluation
# --------------------------------------------------------------------------------------


def _reduce_means(sums: dict[str, float], count: float) -> tuple[dict[str, float], int]:
    """Sum per-key totals and the sample count over ranks; return means and the total count."""
    keys = sorted(sums)
    t = torch.tensor([count] + [sums[k] for k in keys], dtype=torch.float64)
    t = all_reduce_sum(t)
    n = int(round(t[0].item()))
    return {k: (t[i + 1].item() / n if n else float("nan")) for i, k in enumerate(keys)}, n


def loss_function(model: nn.Module) -> Callable[[Any, dict], tuple[torch.Tensor, dict[str, Any]]]:
    """The model's ``compute_loss_tensors`` (parts as device tensors, no host read) where the class that
    defines its ``compute_loss`` defines that too; else ``compute_loss`` (a subclass that overrides only
    ``compute_loss`` keeps its own loss)."""
    owner = next((c for c in type(model).__mro__ if "compute_loss" in c.__dict__), None)
    if owner is not None and "compute_loss_tensors" in owner.__dict__:
        return model.compute_loss_tensors
    return model.compute_loss


class NonFiniteError(UserError, FloatingPointError):
    """Training diverged (a NaN or infinite loss or weight): one line for the user, not a traceback.

    Still a ``FloatingPointError`` (what the per-step check raised before, docs/guides/gpu-training.md);
    a :class:`UserError` because the cure is in the options or the data (learning rate, warm-up, inputs).
    """


def _non_finite_weights(model: nn.Module) -> list[str]:
    """Names of the parameters holding a NaN or infinity (one host read for the whole model)."""
    named = [(k, p) for k, p in model.named_parameters() if p.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in named]).tolist()
    return [k for (k, _), ok in zip(named, finite, strict=True) if not ok]


def _diverged(err: FloatingPointError, run: Path, epoch: int) -> NonFiniteError:
    """``err`` (in epoch index ``epoch``) with what is kept and what to do: a resume would replay the
    same steps bit for bit."""
    if epoch > 0:  # the epochs before this one were checkpointed
        kept = f"{run / 'last.pth'} (epoch {epoch}) is kept, but a resume would repeat this step"
    else:
        kept = "no checkpoint was written"
    return NonFiniteError(f"{err}; {kept}: train again (--overwrite true or another --name) with a lower --lr "
                          "or a longer --lr_warmup_epochs, or check the inputs for extreme values")


class _DeviceSums:
    """Loss sums of a training epoch kept where the loss is (float64), read on the host every
    ``sync_every`` steps and at the end of the epoch, so a step needs no host synchronisation.

    The non-finite-loss check runs on the device too: the first step whose loss is not finite and
    that loss are recorded there, and :meth:`read` raises the engine's error for that step. The sums
    are the same float64 additions of ``float(loss) * n`` as a per-step read would make.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.bad_step: torch.Tensor | None = None  # 1-based step of the first non-finite loss, 0 = none
        self.bad_loss: torch.Tensor | None = None

    def add(self, loss: torch.Tensor, parts: dict[str, Any], n: int, step: int) -> None:
        value = loss.detach()
        if self.bad_step is None:
            self.bad_step = torch.zeros((), dtype=torch.int64, device=value.device)
            self.bad_loss = torch.zeros((), dtype=torch.float64, device=value.device)
        first = (self.bad_step == 0) & ~torch.isfinite(value)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_loss = torch.where(first, value.double(), self.bad_loss)
        for k, v in (("loss", value), *(parts or {}).items()):
            term = v.detach().double() * n if torch.is_tensor(v) else float(v) * n
            self.sums[k] = self.sums[k] + term if k in self.sums else term

    def read(self, epoch: int) -> dict[str, float]:
        """The sums as floats (one host synchronisation); raises :class:`NonFiniteError` after a non-finite loss."""
        if self.bad_step is not None:
            step = int(self.bad_step)
            if step:
                raise NonFiniteError(
                    f"non-finite training loss {float(self.bad_loss)} at epoch {epoch + 1}, step {step}"
                )
        return {k: float(v) for k, v in self.sums.items()}


def train_one_epoch(
    cfg: Any,
    rt: Runtime,
    model: nn.Module,
    loader: Iterable[dict],
    optimizer: torch.optim.Optimizer | None,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
    scheduler: LRScheduler | None = None,
) -> dict[str, float]:
    """Train ``model`` (maybe DDP-wrapped) for one epoch; returns rank-averaged losses and the lr range.

    The loss sums and the non-finite-loss check stay on the device and are read every
    ``cfg.sync_every`` steps and at the end of the epoch (``sync_every`` 1: every step, before the
    optimiser step, as a plain loop would). ``loader`` is a DataLoader or device batches
    (``dataset.device_cube``): anything with ``len`` that yields batch dicts.
    """
    raw = unwrap(model)
    compute_loss = loss_function(raw)
    model.train()
    steps = len(loader) if cfg.max_train_batches <= 0 else min(len(loader), cfg.max_train_batches)
    every = max(1, int(getattr(cfg, "sync_every", 1)))
    acc = _DeviceSums()
    sums: dict[str, float] = {"loss": 0.0}
    count = 0
    lr = optimizer.param_groups[0]["lr"] if optimizer is not None else 0.0
    t0 = time.perf_counter()
    # islice: a capped epoch (max_train_batches) fetches, augments and crops only the batches it uses
    bar = progress(itertools.islice(loader, steps), rt.is_main, total=steps, desc=f"train {epoch + 1}/{cfg.n_epochs}")
    report_every = max(1, steps // 5)
    next_report = report_every  # the no-terminal progress line: at the first read past each fifth
    for i, batch in enumerate(bar):
        lr = optimizer.param_groups[0]["lr"] if optimizer is not None else 0.0
        batch = to_device(batch, rt.device)
        with rt.autocast():
            out = model(batch["x"])
            loss, parts = compute_loss(out, batch)
        n = int(batch["x"].shape[0])
        count += n
        acc.add(loss, parts, n, i + 1)
        report = False
        if (i + 1) % every == 0 or i + 1 == steps:
            sums = acc.read(epoch)  # raises before the optimiser step of a non-finite loss read here
            if not bar.disable:
                bar.set_postfix(loss=f"{sums['loss'] / max(count, 1):.4g}", lr=f"{lr:.2e}")
            report = rt.is_main and bar.disable and i + 1 >= next_report and i + 1 < steps
            while next_report <= i + 1:
                next_report += report_every
        if optimizer is not None and loss.requires_grad:
            optimizer.zero_grad(set_to_none=True)
            stepped = True
            if scaler is not None and scaler.is_enabled():
                scale = scaler.get_scale()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                stepped = scaler.get_scale() >= scale  # fp16: a step with inf/NaN gradients is skipped
            else:
                loss.backward()
                optimizer.step()
            if scheduler is not None and stepped:
                scheduler.step()  # the learning rate of the next optimiser step
        if report:
            # no terminal (a log file, CI, a batch job): a line every fifth of an epoch instead of a bar
            elapsed = time.perf_counter() - t0
            print(f"  epoch {epoch + 1} step {i + 1}/{steps}  loss {sums['loss'] / max(count, 1):.4g}  "
                  f"lr {lr:.2e}  {elapsed / (i + 1):.2f} s/step", flush=True)
    sums = acc.read(epoch) if count else sums
    means, n_total = _reduce_means(sums, count)
    means.update(lr=lr, samples=n_total, seconds=time.perf_counter() - t0)
    return means


def make_train_loader(
    cfg: Any, rt: Runtime, dataset: Dataset, device_data: bool | None = None
) -> tuple[Iterable[dict], DistributedSampler]:
    """Shuffled per epoch (``sampler.set_epoch``) from ``cfg.seed``; each rank a 1/K share (padded);
    batches cropped to ``train_crop`` (``dataset.crops``). With ``device_data`` (default: what
    ``dataset.device_cube.plan`` says for ``--device_data``) the batches are cut on the run's device
    (``dataset.device_cube``) in the same order with the same draws; else a DataLoader makes them."""
    from dataset import device_cube

    sampler = DistributedSampler(
        dataset, num_replicas=rt.dist.world_size, rank=rt.dist.rank, shuffle=True, seed=cfg.seed
    )
    if device_data is None:
        device_data = device_cube.plan(cfg, rt.device, dataset)[0]
    if device_data:
        cube = device_cube.device_cube(dataset, rt.device)
        focus = getattr(cfg, "train_crop_focus", 0.0)
        return device_cube.DeviceBatches(cube, sampler, cfg.batch_size, cfg.train_crop, focus), sampler
    collate: Callable = pooled_collate
    if cfg.train_crop > 0:
        collate = CroppingCollate(pooled_collate, cfg.train_crop, getattr(cfg, "train_crop_focus", 0.0))
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.n_workers,
        collate_fn=collate,
        pin_memory=cfg.pin_memory and rt.device.type == "cuda",
        drop_last=False,
    )
    return loader, sampler


def _eval_loader(cfg: Any, rt: Runtime, dataset: Dataset) -> Iterable[dict]:
    from dataset import device_cube

    sampler = ShardSampler(len(dataset), rt.dist.rank, rt.dist.world_size)
    if device_cube.plan(cfg, rt.device, dataset)[0]:
        cube = device_cube.device_cube(dataset, rt.device)
        return device_cube.DeviceBatches(cube, sampler, cfg.batch_size, augment=False)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.n_workers,
        collate_fn=pooled_collate,
        pin_memory=cfg.pin_memory and rt.device.type == "cuda",
    )


def scaled_lr(cfg: Any, world_size: int = 1) -> dict[str, float]:
    """``lr``, ``lr_min`` and ``lr_warmup`` for the global batch (``batch_size`` x ranks) by ``lr_scaling``:
    ``linear`` multiplies them by global / ``lr_reference_batch``, ``sqrt`` by its square root, ``none``
    keeps them (docs/guides/gpu-training.md)."""
    base = {"lr": cfg.lr, "lr_min": cfg.lr_min, "lr_warmup": cfg.lr_warmup}
    rule = getattr(cfg, "lr_scaling", "none")
    if rule == "none":
        return base
    ref = int(getattr(cfg, "lr_reference_batch", 1))
    if ref < 1:
        raise ConfigError(f"option 'lr_reference_batch' is {ref}; it is a number of samples, at least 1")
    ratio = cfg.batch_size * world_size / ref
    factor = ratio if rule == "linear" else math.sqrt(ratio)
    return {k: v * factor for k, v in base.items()}


def evaluate(
    cfg: Any,
    model: nn.Module,
    dataset: Dataset,
    collectors: Iterable[Collector],
    *,
    runtime: Runtime | None = None,
    with_loss: bool = True,
    run_dir: str | Path | None = None,
    split: str | None = None,
    desc: str = "eval",
) -> dict[str, Any]:
    """Run ``dataset`` through ``model`` once (each sample exactly once over all ranks).

    Returns ``{collector.name: collector.result()}`` plus ``loss`` and ``loss_parts``
    (rank-averaged) when ``with_loss``. ``cfg.max_eval_batches`` caps batches per rank.
    With ``run_dir`` and ``split``, rank 0 calls each collector's ``save``.
    """
    rt = runtime or setup_runtime(cfg)
    collectors = list(collectors)
    raw = unwrap(model).to(rt.device)
    was_training = raw.training
    raw.eval()
    loader = _eval_loader(cfg, rt, dataset)
    steps = len(loader) if cfg.max_eval_batches <= 0 else min(len(loader), cfg.max_eval_batches)
    sums: dict[str, float] = {"loss": 0.0} if with_loss else {}
    count = 0
    with torch.no_grad():
        for batch in progress(itertools.islice(loader, steps), rt.is_main, total=steps, desc=desc):
            batch = to_device(batch, rt.device)
            with rt.autocast():
                out = raw(batch["x"])
                if with_loss:
                    loss, parts = raw.compute_loss(out, batch)
            n = int(batch["x"].shape[0])
            count += n
            if with_loss:
                sums["loss"] += float(loss) * n
                for k, v in (parts or {}).items():
                    sums[k] = sums.get(k, 0.0) + float(v) * n
            for c in collectors:
                c.update(batch, out)
    means, n_total = _reduce_means(sums, count)
    for c in collectors:
        c.all_reduce()
    results: dict[str, Any] = {}
    for c in collectors:
        if c.name:
            results[c.name] = c.result()
    results["n_samples"] = n_total
    if with_loss:
        results["loss"] = means.pop("loss")
        results["loss_parts"] = means
    if run_dir is not None and split is not None and rt.is_main:
        for c in collectors:
            try:
                c.save(Path(run_dir), split)
            except OSError as err:
                where = err.filename or run_dir
                raise StorageError(write_error_message(where, err, RERUN_TEST)) from None
    raw.train(was_training)
    return results


# --------------------------------------------------------------------------------------
# checkpoints and the run folder
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


#: options whose values a resume takes from the optimiser and scheduler state in last.pth, not from the command
_OPTIMIZER_STATE_OPTIONS = ("lr", "lr_min", "lr_warmup", "weight_decay", "beta1", "beta2", "lr_scaling",
                            "lr_reference_batch")


def _kept_by_optimizer_state(cfg: Any, state: dict[str, Any]) -> list[str]:
    """``option (saved -> given)`` for each changed option that ``optimizer.load_state_dict`` and the
    scheduler's saved state override, so the user is not left believing the new value trains."""
    saved, now = state.get("config") or {}, cfg.to_dict()
    return [f"{k} ({saved[k]!r} -> {now[k]!r})" for k in _OPTIMIZER_STATE_OPTIONS
            if k in saved and k in now and saved[k] != now[k]]


def _is_better(value: float | None, best: float | None, lower: bool) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if lower else value > best


def fit(
    cfg: Any,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: CollectorsFactory | None = None,
    *,
    n_images: int = 2,
    stop_epoch: int | None = None,
) -> dict[str, Any]:
    """Train ``model`` for ``cfg.n_epochs`` into ``<dir_log>/<name>/``; returns bests and the last metrics.

    A fresh run refuses an existing run folder unless ``cfg.overwrite``; ``cfg.resume``
    continues ``last.pth`` (model, optimiser, scaler, epoch, every rank's RNG state, bests).
    ``stop_epoch`` ends the run after that many epochs of the ``n_epochs`` schedule (a resume
    continues it exactly; utils/restarts.py).
    """
    from config import save_config

    rt = setup_runtime(cfg)
    run = Path(cfg.run_dir)
    problem = all_gather(run_dir_problem(cfg) if rt.is_main else None)[0]
    if problem:
        raise RunFolderError(problem)
    state = load_checkpoint_dict(run / "last.pth", "--resume true:") if cfg.resume else None
    if rt.is_main:
        try:  # checked writable above; a disk or permission that fails now is still one line
            run.mkdir(parents=True, exist_ok=True)
            if cfg.overwrite:
                clear_run_dir(run)
        except OSError as err:
            raise StorageError(write_error_message(
                err.filename or run, err, then="pass a --dir_log that is a folder you can write to")) from None
        if state is None:
            save_config(cfg, run / "config.yaml")  # raises StorageError itself
    start_epoch = 0 if state is None else int(state["epoch"]) + 1
    log = RunLogger(run, enabled=rt.is_main, purge_step=start_epoch + 1 if state is not None else None)
    try:
        return _fit(cfg, rt, model, train_set, val_set, collectors_factory, state, start_epoch, log, n_images,
                    cfg.n_epochs if stop_epoch is None else min(stop_epoch, cfg.n_epochs))
    except UserError as err:  # a resume that does not fit, a full disk: recorded before the script reports it
        log.error(str(err))
        raise
    finally:
        log.close()


def _fit(
    cfg: Any,
    rt: Runtime,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: CollectorsFactory | None,
    state: dict[str, Any] | None,
    start_epoch: int,
    log: RunLogger,
    n_images: int,
    stop_epoch: int,
) -> dict[str, Any]:
    run = Path(cfg.run_dir)
    if start_epoch > cfg.n_epochs:
        raise ConfigError(
            f"--resume true: {run / 'last.pth'} has trained {start_epoch} epochs, more than n_epochs "
            f"{cfg.n_epochs}; pass --n_epochs {start_epoch} (the run as it is) or more (to train on)"
        )
    if state is None:
        seed_everything(cfg.seed + rt.dist.rank)  # augmentation stream of this rank (data order: sampler)
    model.to(rt.device)
    speed_notes = prepare_model(cfg, model)
    lrs = scaled_lr(cfg, rt.dist.world_size)
    optimizer = build_optimizer(cfg, model, lrs["lr"])
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
    best: dict[str, dict[str, Any]] = {"loss": {"value": None, "epoch": None}}
    if state is not None:
        check_resume_fits(cfg, model, state)
        model.load_state_dict(state["model_state_dict"])
        if optimizer is not None and state.get("optimizer_state_dict"):
            try:
                optimizer.load_state_dict(state["optimizer_state_dict"])
            except ValueError as err:  # another optimizer or parameter grouping
                raise CheckpointError(
                    f"--resume true: the optimiser state in {run / 'last.pth'} does not fit these options "
                    f"({err}); {changed_options(cfg, state)}resume with the run's own options"
                ) from None
        if state.get("scaler_state_dict"):
            scaler.load_state_dict(state["scaler_state_dict"])
        best = state.get("best", best)
        rngs = state.get("rng_state") or []
        if len(rngs) == rt.dist.world_size:
            set_rng_state(rngs[rt.dist.rank])
        else:
            log.warning(f"checkpoint has RNG states of {len(rngs)} ranks, this run has {rt.dist.world_size}")
            seed_everything(cfg.seed + start_epoch + rt.dist.rank)
        log_config_changes(cfg, state.get("config") or {}, log)
        kept = _kept_by_optimizer_state(cfg, state)
        if kept:
            log.warning(f"resume: {', '.join(kept)} not applied: the optimiser and its schedule continue as saved "
                        "in last.pth; to train with the new values start a new run (--overwrite true or another "
                        "--name)")
        if start_epoch < cfg.n_epochs:
            log.info(f"resuming {run} at epoch {start_epoch + 1}/{cfg.n_epochs}")
        else:
            log.info(f"{run} has finished its {cfg.n_epochs} epochs; nothing to train (a larger --n_epochs "
                     "trains on)")

    trainable = any(p.requires_grad for p in model.parameters())
    net: nn.Module = model
    if rt.dist.distributed and trainable:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[rt.device.index] if rt.device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(model, "ddp_find_unused_parameters", False)),
        )
    if int(getattr(cfg, "sync_every", 1)) < 1:
        raise ConfigError(f"option 'sync_every' is {cfg.sync_every}; use 1 (read every step) or more")
    from dataset.device_cube import plan

    on_device, data_path = plan(cfg, rt.device, train_set)
    loader, sampler = make_train_loader(cfg, rt, train_set, on_device)
    if len(loader) == 0:
        raise ValueError("the training split has no samples")
    steps = len(loader) if cfg.max_train_batches <= 0 else min(len(loader), cfg.max_train_batches)
    scheduler = build_scheduler(cfg, optimizer, steps, lrs) if optimizer is not None else None
    if scheduler is not None and state is not None:
        saved = state.get("scheduler_state_dict") or {}
        if "last_epoch" in saved or "_last_lr" in saved:
            note = restore_scheduler(scheduler, saved)
            if note:
                log.info(note)
            for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
                group["lr"] = lr  # building the scheduler reset it; the saved schedule says where it was
        else:  # a checkpoint written before the schedule was a torch scheduler: replay its steps
            with warnings.catch_warnings():  # replaying, no optimiser step is due
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(start_epoch * steps):
                    scheduler.step()
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"run {run}: {len(train_set)} train / {len(val_set) if val_set is not None else 0} val samples, "
        f"{steps} steps per epoch per rank, {rt.dist.world_size} rank(s) on {rt.device}, "
        f"amp {rt.amp_name}, {n_params:,} parameters"
    )
    log.info(f"training data: {data_path}")
    for note in speed_notes:
        log.info(note)
    if getattr(cfg, "lr_scaling", "none") != "none":
        log.info(f"lr_scaling {cfg.lr_scaling}: lr {lrs['lr']:.3g}, lr_min {lrs['lr_min']:.3g}, "
                 f"lr_warmup {lrs['lr_warmup']:.3g} for a global batch of {cfg.batch_size * rt.dist.world_size} "
                 f"(reference {cfg.lr_reference_batch})")
    for message in [*cfg.split_overlaps(), *getattr(train_set, "warnings", []), *getattr(val_set, "warnings", [])]:
        log.warning(message)
    if cfg.amp not in ("none", "auto") and rt.amp_dtype is None:
        log.warning(f"amp {cfg.amp} needs CUDA (bf16 also runs on CPU); running in float32 on {rt.device}")

    history: list[dict[str, Any]] = []
    val_metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, stop_epoch):
        sampler.set_epoch(epoch)
        if hasattr(model, "fit_epoch_start"):
            model.fit_epoch_start(epoch)
        try:
            train = train_one_epoch(cfg, rt, net, loader, optimizer, epoch, scaler, scheduler)
            if hasattr(model, "fit_epoch_end"):
                model.fit_epoch_end(epoch)
            bad = _non_finite_weights(model)  # the epoch's last update is checked by no loss
            if bad:
                raise FloatingPointError(f"non-finite weights after epoch {epoch + 1} ({len(bad)} tensor(s), "
                                         f"e.g. {bad[0]})")
        except FloatingPointError as err:  # never checkpointed: last.pth keeps the last finite epoch
            raise _diverged(err, run, epoch) from None

        val_metrics, images = {}, SampleImages(n_images if rt.is_main else 0)
        collectors: list[Collector] = []
        if val_set is not None and len(val_set) > 0:
            collectors = [*(collectors_factory(val_set) if collectors_factory else []), images]
            val_metrics = evaluate(cfg, model, val_set, collectors, runtime=rt, desc=f"val {epoch + 1}")
        val_loss = val_metrics.get("loss", train["loss"])
        candidates = {"loss": (val_loss, True, "best_loss_model.pth")}  # + what the collectors declare
        for c in collectors:
            for key, (path, lower) in c.checkpoint_keys.items():
                candidates[key] = (dig(val_metrics, c.name or "", *path), lower, f"best_{key}_model.pth")
        improved = []
        for key, (value, lower, _) in candidates.items():
            best.setdefault(key, {"value": None, "epoch": None})
            if _is_better(value, best[key]["value"], lower):
                best[key] = {"value": float(value), "epoch": epoch}
                improved.append(key)

        rngs = all_gather(rng_state())  # every rank's stream, so a resumed DDP run continues each
        if rt.is_main:
            payload = {
                "epoch": epoch,
                "mean_loss_train": float(train["loss"]),
                "mean_loss_validation": float(val_loss),
                "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else {},
                "scheduler_state_dict": scheduler.state_dict() if scheduler is not None else {},
                "scaler_state_dict": scaler.state_dict() if scaler.is_enabled() else {},
                "rng_state": rngs,
                "config": cfg.to_dict(),
                "best": best,
                "metrics_validation": flatten_metrics(
                    {k: v for k, v in val_metrics.items() if k != "loss_parts"}
                ),
                "versions": versions(),
            }
            for key in improved:
                save_checkpoint(run / candidates[key][2], payload)
            save_checkpoint(run / "last.pth", payload)
            log_epoch(log, cfg, epoch, train, val_metrics, improved, images)
        history.append({"epoch": epoch, "train": train, "val": val_metrics})
    return {"best": best, "history": history, "val": val_metrics, "run_dir": str(run)}


