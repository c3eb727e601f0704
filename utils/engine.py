"""The one training / evaluation engine used by every entry point and baseline.

``fit(cfg, model, train_set, val_set, collectors_factory)`` trains, validates every
epoch and keeps checkpoints; ``evaluate(cfg, model, dataset, collectors)`` runs a
split through the model and hands each ``(batch, out)`` to *collectors*. Neither
knows the dataset or the method: the model contract (docs/ARCHITECTURE.md) and the
collector protocol below are all they use.

Collector protocol (see ``utils.metrics.ExtremeCollector`` / ``DriverCollector``)::

    c.name                      # key of its result in the metrics dict (None: not reported)
    c.update(batch, out)        # batch on the device; out = model(batch["x"])
    c.all_reduce()              # sum state over DDP ranks (every rank calls it once)
    c.result() -> dict          # after all_reduce, on every rank
    c.save(run_dir, split)      # optional; rank 0 only, when evaluate() gets run_dir/split

Checkpoint selection reads ``metrics["extremes"]["f1"]`` (``best_F1_model.pth``) and
``metrics["drivers"]["pooled"]["f1"]`` (``best_driver_F1_model.pth``) when present,
and the validation loss (``best_loss_model.pth``).

Learning rate: set before every optimiser step from the fractional epoch
``e = epoch + i / steps_per_epoch``: linear warm-up ``lr_warmup -> lr`` over
``lr_warmup_epochs``, then ``cosine`` to ``lr_min`` at ``n_epochs`` (or ``step``:
``lr * lr_decay_rate ** (epoch // lr_decay_step)``, or ``constant``). It is a pure
function of (epoch, step), so resuming needs no scheduler state beyond the epoch.

Optional model hooks: ``fit_epoch_start(epoch)``, ``fit_epoch_end(epoch)`` (e.g. a
baseline that fits a scikit-learn model on features gathered during the epoch),
``ddp_find_unused_parameters = True``. A loss without gradient (``requires_grad``
False) skips the optimiser step, so non-gradient methods train in the same loop.
"""

from __future__ import annotations

import contextlib
import math
import platform
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from utils.batch_transport import pooled_collate
from utils.checkpoints import (
    check_checkpoint_path,
    describe_mismatch,
    read_checkpoint,
    save_checkpoint,
    write_error_message,
)
from utils.cpu_memory import retain_freed_memory
from utils.distributed import DistInfo, ShardSampler, all_gather, all_reduce_sum, init_distributed
from utils.errors import CheckpointError, StorageError, UserError
from utils.logging import RERUN_TEST, RUN_FILES, RunFolderError, RunLogger, flatten_metrics, progress, sample_images

__all__ = [
    "Runtime",
    "setup_runtime",
    "seed_everything",
    "learning_rate",
    "build_optimizer",
    "train_one_epoch",
    "make_train_loader",
    "evaluate",
    "fit",
    "prepare_test_run",
    "check_run_dir",
    "RunFolderError",
    "find_eval_checkpoint",
    "check_train_crop",
    "save_checkpoint",
    "load_checkpoint_dict",
    "SampleImages",
]

Collector = Any
CollectorsFactory = Callable[[Dataset], Sequence[Collector]]


# --------------------------------------------------------------------------------------
# runtime: device, process group, mixed precision
# --------------------------------------------------------------------------------------


@dataclass
class Runtime:
    dist: DistInfo
    amp_dtype: torch.dtype | None  # autocast dtype (set on CUDA only, see setup_runtime); None = full precision

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)


def setup_runtime(cfg: Any) -> Runtime:
    """Device from ``cfg.device``, the torchrun process group when WORLD_SIZE > 1, autocast dtype."""
    info = init_distributed(cfg.device)
    if info.device.type == "cpu":
        retain_freed_memory()  # ~1.5x faster CPU steps (utils/cpu_memory.py)
    amp = None
    if cfg.amp != "none":
        if info.device.type == "cuda":
            amp = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
    return Runtime(dist=info, amp_dtype=amp)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); call before building the model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(i) for i in x) if isinstance(x, (list, tuple)) else x


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _move(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) if torch.is_tensor(v) else v for k, v in batch.items()}


# --------------------------------------------------------------------------------------
# optimiser and learning-rate schedule
# --------------------------------------------------------------------------------------


def build_optimizer(cfg: Any, model: nn.Module) -> torch.optim.Optimizer | None:
    """Adam / AdamW / SGD(momentum beta1) over trainable parameters; None when there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return None
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "Adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "AdamW":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "SGD":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.beta1, weight_decay=cfg.weight_decay)
    raise ValueError(f"option 'optimizer': unknown {cfg.optimizer!r}")


def learning_rate(cfg: Any, epoch: float) -> float:
    """Learning rate at fractional epoch ``epoch`` (warm-up, then cosine / step / constant)."""
    warm = max(0, cfg.lr_warmup_epochs)
    if epoch < warm:
        return cfg.lr_warmup + (cfg.lr - cfg.lr_warmup) * epoch / warm
    if cfg.lr_scheduler == "cosine":
        span = max(cfg.n_epochs - warm, 1e-12)
        p = min(max((epoch - warm) / span, 0.0), 1.0)
        return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * p))
    if cfg.lr_scheduler == "step":
        return cfg.lr * cfg.lr_decay_rate ** (int(epoch) // max(1, cfg.lr_decay_step))
    return cfg.lr


def _set_lr(optimizer: torch.optim.Optimizer | None, lr: float) -> None:
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr


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


def load_for_evaluation(model: nn.Module, checkpoint: str | Path) -> None:
    """Load ``checkpoint`` (ours or published format) strictly; a mismatch says how to fix it."""
    from models.build import load_checkpoint

    load_checkpoint(model, checkpoint)


def check_train_crop(cfg: Any, dataset: Dataset) -> None:
    """A ``train_crop`` larger than the training samples is a mistake, not a request for the whole grid."""
    if cfg.train_crop <= 0 or len(dataset) == 0:
        return
    h, w = (int(n) for n in dataset[0]["x"].shape[-2:])
    if cfg.train_crop > min(h, w):
        raise ValueError(
            f"option 'train_crop' is {cfg.train_crop} but the training samples are {h} x {w} pixels; "
            f"use at most {min(h, w)}, or 0 to train on the whole window"
        )


def random_crop(batch: dict, size: int, focus: float = 0.0) -> dict:
    """A random ``size`` x ``size`` window of every spatial tensor of each sample.

    Training on patches is cheaper per step; the models are convolutional/windowed, so
    they run on any size. Spatial tensors are those whose last two dims equal ``x``'s;
    all of a sample's tensors are cut at the same place. With ``focus`` > 0, that share
    of the samples that have an extreme at the target week (``mask_extreme``) get a window
    that contains one of its extreme pixels (chosen at random): a random window of a
    sparse label map often holds no positive pixel, and then the extreme loss carries no
    signal about drivers.
    """
    h, w = batch["x"].shape[-2:]
    if size >= h and size >= w:
        return batch
    sh, sw = min(size, h), min(size, w)
    n = int(batch["x"].shape[0])
    y0 = torch.randint(0, h - sh + 1, (n,))
    x0 = torch.randint(0, w - sw + 1, (n,))
    if focus > 0 and "mask_extreme" in batch:
        target = batch["mask_extreme"].detach().reshape(n, -1).cpu()
        for i in torch.nonzero(torch.rand(n) < focus).flatten().tolist():
            pixels = torch.nonzero(target[i] > 0.5).flatten()
            if len(pixels) == 0:
                continue
            p = int(pixels[torch.randint(0, len(pixels), ())])
            py, px = divmod(p, w)  # window [y0, y0 + sh) must hold py: y0 in [py - sh + 1, py]
            y0[i] = int(torch.randint(max(0, py - sh + 1), min(py, h - sh) + 1, ()))
            x0[i] = int(torch.randint(max(0, px - sw + 1), min(px, w - sw) + 1, ()))
    same = len(set(y0.tolist())) == 1 and len(set(x0.tolist())) == 1
    out = {}
    for key, val in batch.items():
        if torch.is_tensor(val) and val.dim() >= 2 and tuple(val.shape[-2:]) == (h, w):
            if same or val.dim() < 3 or val.shape[0] != n:  # one window (or a tensor without batch dim)
                val = val[..., int(y0[0]) : int(y0[0]) + sh, int(x0[0]) : int(x0[0]) + sw]
            else:
                val = torch.stack([val[i, ..., int(y0[i]) : int(y0[i]) + sh, int(x0[i]) : int(x0[i]) + sw]
                                   for i in range(n)])
        out[key] = val
    return out


def train_one_epoch(
    cfg: Any,
    rt: Runtime,
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer | None,
    epoch: int,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, float]:
    """Train ``model`` (maybe DDP-wrapped) for one epoch; returns rank-averaged losses and the lr range."""
    raw = _unwrap(model)
    model.train()
    steps = len(loader) if cfg.max_train_batches <= 0 else min(len(loader), cfg.max_train_batches)
    sums: dict[str, float] = {"loss": 0.0}
    count = 0
    lr = learning_rate(cfg, epoch)
    t0 = time.perf_counter()
    bar = progress(loader, rt.is_main, total=steps, desc=f"train {epoch + 1}/{cfg.n_epochs}")
    for i, batch in enumerate(bar):
        if i >= steps:
            break
        lr = learning_rate(cfg, epoch + i / max(steps, 1))
        _set_lr(optimizer, lr)
        batch = _move(batch, rt.device)
        if cfg.train_crop > 0:
            batch = random_crop(batch, cfg.train_crop, getattr(cfg, "train_crop_focus", 0.0))
        with rt.autocast():
            out = model(batch["x"])
            loss, parts = raw.compute_loss(out, batch)
        if not torch.isfinite(loss.detach()):
            raise FloatingPointError(
                f"non-finite training loss {loss.item()} at epoch {epoch + 1}, step {i + 1}"
            )
        if optimizer is not None and loss.requires_grad:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None and scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        n = int(batch["x"].shape[0])
        count += n
        sums["loss"] += float(loss.detach()) * n
        for k, v in (parts or {}).items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{float(loss.detach()):.4g}", lr=f"{lr:.2e}")
        elif rt.is_main and (i + 1) % max(1, steps // 5) == 0 and i + 1 < steps:
            # no terminal (a log file, CI, a batch job): a line every fifth of an epoch instead of a bar
            elapsed = time.perf_counter() - t0
            print(f"  epoch {epoch + 1} step {i + 1}/{steps}  loss {sums['loss'] / max(count, 1):.4g}  "
                  f"lr {lr:.2e}  {elapsed / (i + 1):.2f} s/step", flush=True)
    means, n_total = _reduce_means(sums, count)
    means.update(lr=lr, samples=n_total, seconds=time.perf_counter() - t0)
    return means


class SampleImages:
    """Collector that keeps TensorBoard images of the first ``n`` samples seen on this rank."""

    name = None

    def __init__(self, n: int = 2) -> None:
        self.n = n
        self.images: list[dict[str, np.ndarray]] = []

    def update(self, batch: dict, out: Any) -> None:
        for i in range(int(batch["x"].shape[0])):
            if len(self.images) >= self.n:
                return
            self.images.append(sample_images(batch, out, i))

    def all_reduce(self) -> None:
        pass

    def result(self) -> dict:
        return {}


def make_train_loader(cfg: Any, rt: Runtime, dataset: Dataset) -> tuple[DataLoader, DistributedSampler]:
    """Shuffled per epoch (``sampler.set_epoch``) from ``cfg.seed``; each rank a 1/K share (padded)."""
    sampler = DistributedSampler(
        dataset, num_replicas=rt.dist.world_size, rank=rt.dist.rank, shuffle=True, seed=cfg.seed
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.n_workers,
        collate_fn=pooled_collate,
        pin_memory=cfg.pin_memory and rt.device.type == "cuda",
        drop_last=False,
    )
    return loader, sampler


def _eval_loader(cfg: Any, rt: Runtime, dataset: Dataset) -> DataLoader:
    sampler = ShardSampler(len(dataset), rt.dist.rank, rt.dist.world_size)
    return DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.n_workers,
        collate_fn=pooled_collate,
        pin_memory=cfg.pin_memory and rt.device.type == "cuda",
    )


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
    raw = _unwrap(model).to(rt.device)
    was_training = raw.training
    raw.eval()
    loader = _eval_loader(cfg, rt, dataset)
    steps = len(loader) if cfg.max_eval_batches <= 0 else min(len(loader), cfg.max_eval_batches)
    sums: dict[str, float] = {"loss": 0.0} if with_loss else {}
    count = 0
    with torch.no_grad():
        for i, batch in enumerate(progress(loader, rt.is_main, total=steps, desc=desc)):
            if i >= steps:
                break
            batch = _move(batch, rt.device)
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
        if getattr(c, "name", None):
            results[c.name] = c.result()
    results["n_samples"] = n_total
    if with_loss:
        results["loss"] = means.pop("loss")
        results["loss_parts"] = means
    if run_dir is not None and split is not None and rt.is_main:
        for c in collectors:
            if hasattr(c, "save"):
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


def load_checkpoint_dict(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """One of our own checkpoints (a dict of tensors and plain values), loaded without running code."""
    ckpt = read_checkpoint(path, what)
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt:
        raise CheckpointError(f"{what} {path} is not a checkpoint of an IDEE run (no model_state_dict)")
    return ckpt


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
    }


def _run_dir_problem(cfg: Any) -> str | None:
    run = Path(cfg.run_dir)
    if cfg.resume and cfg.overwrite:
        return "options 'resume' and 'overwrite' are both true; choose one"
    if cfg.resume:
        if not (run / "last.pth").is_file():
            return f"--resume true but {run / 'last.pth'} does not exist (nothing to continue)"
        return None
    existing = [f for f in RUN_FILES if (run / f).exists()]
    existing += sorted(p.name for p in run.glob("events.out.tfevents.*"))
    if existing and not cfg.overwrite:
        return (
            f"run folder {run} already holds a run ({', '.join(existing[:4])}"
            f"{', ...' if len(existing) > 4 else ''}); pass --resume true to continue it, "
            "--overwrite true to replace it, or pick another --name"
        )
    return None


def check_run_dir(cfg: Any) -> None:
    """Raise :class:`RunFolderError` if training into ``cfg.run_dir`` would overwrite or miss a run."""
    problem = _run_dir_problem(cfg)
    if problem:
        raise RunFolderError(problem)


def _clear_run_dir(run: Path) -> None:
    """``--overwrite true``: remove the files of the previous run (and its now stale test outputs)."""
    patterns = [*RUN_FILES, "events.out.tfevents.*", "metrics_*.json", "drivers_*.nc", "config_test_*.yaml"]
    for pattern in patterns:
        for p in run.glob(pattern):
            if p.is_file():
                p.unlink()


def prepare_test_run(cfg: Any, split: str | None = None) -> Path:
    """Create the run folder if needed and save the test config as ``config_test_<split>.yaml``."""
    from config import save_config

    split = split or cfg.split
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    return save_config(cfg, run / f"config_test_{split}.yaml")


def find_eval_checkpoint(cfg: Any) -> Path:
    """``cfg.checkpoint`` or, in the run folder, best_driver_F1 -> best_F1 -> best_loss -> last."""
    if cfg.checkpoint:
        return check_checkpoint_path(cfg.checkpoint, "option 'checkpoint':")
    run = Path(cfg.run_dir)
    for name in ("best_driver_F1_model.pth", "best_F1_model.pth", "best_loss_model.pth", "last.pth"):
        if (run / name).is_file():
            return run / name
    raise FileNotFoundError(f"no checkpoint in {run}; train first or pass --checkpoint PATH")


# --------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------


def _is_better(value: float | None, best: float | None, lower: bool) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best if lower else value > best


def _dig(d: dict, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def fit(
    cfg: Any,
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: CollectorsFactory | None = None,
    *,
    n_images: int = 2,
) -> dict[str, Any]:
    """Train ``model`` for ``cfg.n_epochs`` into ``<dir_log>/<name>/``; returns bests and the last metrics.

    A fresh run refuses an existing run folder unless ``cfg.overwrite``; ``cfg.resume``
    continues ``last.pth`` (model, optimiser, scaler, epoch, every rank's RNG state, bests).
    """
    from config import save_config

    rt = setup_runtime(cfg)
    run = Path(cfg.run_dir)
    problem = all_gather(_run_dir_problem(cfg) if rt.is_main else None)[0]
    if problem:
        raise RunFolderError(problem)
    state = load_checkpoint_dict(run / "last.pth", "--resume true:") if cfg.resume else None
    if rt.is_main:
        run.mkdir(parents=True, exist_ok=True)
        if cfg.overwrite:
            _clear_run_dir(run)
        if state is None:
            save_config(cfg, run / "config.yaml")
    start_epoch = 0 if state is None else int(state["epoch"]) + 1
    log = RunLogger(run, enabled=rt.is_main, purge_step=start_epoch + 1 if state is not None else None)
    try:
        return _fit(cfg, rt, model, train_set, val_set, collectors_factory, state, start_epoch, log, n_images)
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
) -> dict[str, Any]:
    run = Path(cfg.run_dir)
    if state is None:
        seed_everything(cfg.seed + rt.dist.rank)  # augmentation stream of this rank (data order: sampler)
    model.to(rt.device)
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
    best: dict[str, dict[str, Any]] = {k: {"value": None, "epoch": None} for k in ("loss", "F1", "driver_F1")}
    if state is not None:
        _check_resume_fits(cfg, model, state)
        model.load_state_dict(state["model_state_dict"])
        if optimizer is not None and state.get("optimizer_state_dict"):
            try:
                optimizer.load_state_dict(state["optimizer_state_dict"])
            except ValueError as err:  # another optimizer or parameter grouping
                raise CheckpointError(
                    f"--resume true: the optimiser state in {run / 'last.pth'} does not fit these options "
                    f"({err}); {_changed_options(cfg, state)}resume with the run's own options"
                ) from None
        if state.get("scaler_state_dict"):
            scaler.load_state_dict(state["scaler_state_dict"])
        best = state.get("best", best)
        rngs = state.get("rng_state") or []
        if len(rngs) == rt.dist.world_size:
            _set_rng_state(rngs[rt.dist.rank])
        else:
            log.warning(f"checkpoint has RNG states of {len(rngs)} ranks, this run has {rt.dist.world_size}")
            seed_everything(cfg.seed + start_epoch + rt.dist.rank)
        _log_config_changes(cfg, state.get("config") or {}, log)
        log.info(f"resuming {run} at epoch {start_epoch + 1}/{cfg.n_epochs}")

    trainable = any(p.requires_grad for p in model.parameters())
    net: nn.Module = model
    if rt.dist.distributed and trainable:
        net = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[rt.device.index] if rt.device.type == "cuda" else None,
            find_unused_parameters=bool(getattr(model, "ddp_find_unused_parameters", False)),
        )
    loader, sampler = make_train_loader(cfg, rt, train_set)
    if len(loader) == 0:
        raise ValueError("the training split has no samples")
    steps = len(loader) if cfg.max_train_batches <= 0 else min(len(loader), cfg.max_train_batches)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        f"run {run}: {len(train_set)} train / {len(val_set) if val_set is not None else 0} val samples, "
        f"{steps} steps per epoch per rank, {rt.dist.world_size} rank(s) on {rt.device}, "
        f"amp {cfg.amp if rt.amp_dtype else 'none'}, {n_params:,} parameters"
    )
    split_overlaps = getattr(cfg, "split_overlaps", lambda: [])
    for message in [*split_overlaps(), *getattr(train_set, "warnings", []), *getattr(val_set, "warnings", [])]:
        log.warning(message)
    if cfg.amp != "none" and rt.amp_dtype is None:
        log.warning(f"amp {cfg.amp} needs CUDA; running in float32 on {rt.device}")

    history: list[dict[str, Any]] = []
    val_metrics: dict[str, Any] = {}
    for epoch in range(start_epoch, cfg.n_epochs):
        sampler.set_epoch(epoch)
        if hasattr(model, "fit_epoch_start"):
            model.fit_epoch_start(epoch)
        train = train_one_epoch(cfg, rt, net, loader, optimizer, epoch, scaler)
        if hasattr(model, "fit_epoch_end"):
            model.fit_epoch_end(epoch)

        val_metrics, images = {}, SampleImages(n_images if rt.is_main else 0)
        if val_set is not None and len(val_set) > 0:
            collectors = [*(collectors_factory(val_set) if collectors_factory else []), images]
            val_metrics = evaluate(cfg, model, val_set, collectors, runtime=rt, desc=f"val {epoch + 1}")
        val_loss = val_metrics.get("loss", train["loss"])
        candidates = {
            "loss": (val_loss, True, "best_loss_model.pth"),
            "F1": (_dig(val_metrics, "extremes", "f1"), False, "best_F1_model.pth"),
            "driver_F1": (_dig(val_metrics, "drivers", "pooled", "f1"), False, "best_driver_F1_model.pth"),
        }
        improved = []
        for key, (value, lower, _) in candidates.items():
            if _is_better(value, best[key]["value"], lower):
                best[key] = {"value": float(value), "epoch": epoch}
                improved.append(key)

        rngs = all_gather(_rng_state())  # every rank's stream, so a resumed DDP run continues each
        if rt.is_main:
            payload = {
                "epoch": epoch,
                "mean_loss_train": float(train["loss"]),
                "mean_loss_validation": float(val_loss),
                "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict() if optimizer is not None else {},
                "scheduler_state_dict": {
                    "name": cfg.lr_scheduler,
                    "steps_per_epoch": steps,
                    "next_epoch": epoch + 1,
                    "lr": float(train["lr"]),
                },
                "scaler_state_dict": scaler.state_dict() if scaler.is_enabled() else {},
                "rng_state": rngs,
                "config": cfg.to_dict(),
                "best": best,
                "metrics_validation": flatten_metrics(
                    {k: v for k, v in val_metrics.items() if k != "loss_parts"}
                ),
                "versions": _versions(),
            }
            for key in improved:
                save_checkpoint(run / candidates[key][2], payload)
            save_checkpoint(run / "last.pth", payload)
            _log_epoch(log, cfg, epoch, train, val_metrics, improved, images)
        history.append({"epoch": epoch, "train": train, "val": val_metrics})
    return {"best": best, "history": history, "val": val_metrics, "run_dir": str(run)}


def _config_changes(cfg: Any, saved: dict[str, Any]) -> list[str]:
    now = cfg.to_dict()
    changed = [k for k in now if k not in ("resume", "overwrite") and k in saved and saved[k] != now[k]]
    return [f"{k} ({saved[k]!r} -> {now[k]!r})" for k in changed]


def _log_config_changes(cfg: Any, saved: dict[str, Any], log: RunLogger) -> None:
    changed = _config_changes(cfg, saved)
    if changed:
        log.warning("config differs from the run's config.yaml in: " + ", ".join(changed))


def _changed_options(cfg: Any, state: dict[str, Any]) -> str:
    changed = [c for c in _config_changes(cfg, state.get("config") or {}) if not c.startswith("n_epochs ")]
    return f"options changed since the run started: {', '.join(changed[:6])}; " if changed else ""


def _check_resume_fits(cfg: Any, model: nn.Module, state: dict[str, Any]) -> None:
    """A resume with options that build another model fails in one line naming the changed options."""
    mismatch = describe_mismatch(model.state_dict(), state["model_state_dict"])
    if mismatch:
        raise CheckpointError(
            f"--resume true: {Path(cfg.run_dir) / 'last.pth'} does not fit the model these options build "
            f"({mismatch}); {_changed_options(cfg, state)}resume with the run's own options or train under "
            "a new --name"
        )


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _log_epoch(
    log: RunLogger,
    cfg: Any,
    epoch: int,
    train: dict[str, float],
    val: dict[str, Any],
    improved: list[str],
    images: SampleImages,
) -> None:
    step = epoch + 1
    scalars = {f"train/{k}": v for k, v in train.items() if k not in ("samples", "seconds", "lr")}
    scalars["lr"] = train["lr"]
    scalars["time/train_seconds"] = train["seconds"]
    scalars["time/train_samples_per_s"] = train["samples"] / max(train["seconds"], 1e-9)
    if val:
        scalars["val/loss"] = val["loss"]
        scalars.update({f"val/{k}": v for k, v in val.get("loss_parts", {}).items()})
        rest = {k: v for k, v in val.items() if k not in ("loss", "loss_parts", "n_samples")}
        scalars.update(flatten_metrics(rest, "val"))
    log.scalars(scalars, step)
    for i, imgs in enumerate(images.images):
        for tag, img in imgs.items():
            log.image(f"val_sample{i}/{tag}", img, step)
    msg = (
        f"epoch {step}/{cfg.n_epochs}  train loss {train['loss']:.4f}  lr {train['lr']:.2e}  "
        f"({train['seconds']:.1f} s, {train['samples']} samples)"
    )
    if val:
        msg += (
            f"  | val loss {val['loss']:.4f}  extreme F1 {_fmt(_dig(val, 'extremes', 'f1'))}"
            f"  driver F1 {_fmt(_dig(val, 'drivers', 'pooled', 'f1'))}"
        )
    if improved:
        msg += "  [best: " + ", ".join(improved) + "]"
    log.info(msg)
