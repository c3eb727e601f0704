"""Classifier re-training: refit the extreme classifier on the chosen checkpoint's frozen flags.

Why: during training the flags move under the classifier every step, so its extreme
predictions may lag the flags it is tested with, and the extreme gate (utils/driver_gate.py)
depends on those predictions. Measured on paper-size events it does not help (gains of 1.5-2.5
points on two runs, losses of 10 and 31 on two others; docs/results/recipe.md, section 10), so
no preset uses it.

With ``classifier_refit_epochs: K`` the run, once trained, takes the checkpoint the test would use
(``utils.run_folder.EVAL_ORDER``), freezes its encoder and quantizer (so its flags stay exactly
those of that checkpoint) and trains the classifier alone for K epochs of the same size, from
``classifier_refit_lr`` down a cosine to ``lr_min``. This is classifier re-training as in
decoupled representation/classifier learning; each step costs an encoder forward and a
classifier step, a fraction of a training step.

Run folder: ``refit_model.pth`` (the refit model; ``refit`` in it records its source checkpoint,
epochs, learning rate and seed, ``metrics_validation`` its validation metrics). A test without
``--checkpoint`` uses it first, while the checkpoint it was made from is unchanged. A resumed or
repeated run whose ``refit_model.pth`` already records the same refit keeps it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from utils import engine
from utils.checkpoints import save_checkpoint
from utils.errors import ConfigError
from utils.logging import RunLogger, SampleImages, flatten_metrics, log_epoch
from utils.run_folder import REFIT_FILE, best_checkpoint, load_checkpoint_dict
from utils.runtime import seed_everything, setup_runtime

__all__ = ["check_refit", "refit_classifier"]


def check_refit(cfg: Any, model: nn.Module) -> None:
    """A refit of a method without a classifier fails in one line before anything trains (the option
    ranges are checked with the options, ``config.OPTION_RANGES``)."""
    if cfg.classifier_refit_epochs > 0 and not hasattr(model, "freeze_flags"):
        raise ConfigError(
            f"option 'classifier_refit_epochs' needs a method that predicts extremes from flags (ide); "
            f"method {cfg.method!r} has no classifier to refit: set classifier_refit_epochs 0"
        )


def refit_classifier(
    cfg: Any,
    build: Callable[[Any], nn.Module],
    train_set: Dataset,
    val_set: Dataset | None,
    collectors_factory: Callable[[Any], list] | None = None,
) -> dict[str, Any] | None:
    """Refit the classifier of the run's test checkpoint into ``refit_model.pth``; returns its record.

    None when ``classifier_refit_epochs`` is 0 or the run has no checkpoint.
    """
    epochs = int(cfg.classifier_refit_epochs)
    run = Path(cfg.run_dir)
    source = best_checkpoint(run, refit=False)  # the checkpoint the test would use without a refit
    if epochs <= 0 or source is None:
        return None
    state = load_checkpoint_dict(source, "classifier refit:")
    record = {"source": source.name, "source_epoch": int(state["epoch"]) + 1, "epochs": epochs,
              "lr": float(cfg.classifier_refit_lr), "seed": int(cfg.seed)}
    target = run / REFIT_FILE
    earlier = load_checkpoint_dict(target, "classifier refit:").get("refit") if target.is_file() else None
    if earlier == record:
        return record  # a resumed run: this refit is already done
    rt = setup_runtime(cfg)
    shown = dataclasses.replace(cfg, n_epochs=cfg.n_epochs + epochs)  # log lines count on past n_epochs
    log = RunLogger(run, enabled=rt.is_main, tensorboard=False)
    try:
        seed_everything(cfg.seed + rt.dist.rank)
        model = build(cfg)
        model.load_state_dict(state["model_state_dict"])
        model.to(rt.device)
        model.freeze_flags()
        net: nn.Module = model
        if rt.dist.distributed:
            net = nn.parallel.DistributedDataParallel(
                model, device_ids=[rt.device.index] if rt.device.type == "cuda" else None
            )
        optimizer = engine.build_optimizer(cfg, model, cfg.classifier_refit_lr)
        scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
        loader, sampler = engine.make_train_loader(cfg, rt, train_set, False)
        steps = len(loader) if cfg.max_train_batches <= 0 else min(len(loader), cfg.max_train_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(steps * epochs, cfg.classifier_refit_lr,
                                                                          cfg.lr_min))
        if earlier is not None:
            log.info(f"classifier refit: {target.name} holds the refit of {earlier}; it is replaced")
        log.info(f"classifier refit: {epochs} epochs of {steps} steps on the frozen flags of {source.name} "
                 f"(epoch {record['source_epoch']}), lr {cfg.classifier_refit_lr:g} -> {cfg.lr_min:g}")
        val: dict[str, Any] = {}
        for k in range(epochs):
            epoch = cfg.n_epochs + k
            sampler.set_epoch(epoch)
            train = engine.train_one_epoch(shown, rt, net, loader, optimizer, epoch, scaler, scheduler)
            if k == epochs - 1 and val_set is not None and len(val_set) > 0:
                collectors = list(collectors_factory(val_set)) if collectors_factory else []
                val = engine.evaluate(cfg, model, val_set, collectors, runtime=rt, desc="val refit")
            log_epoch(log, shown, epoch, train, val, [], SampleImages(0))
        if rt.is_main:
            payload = {k: v for k, v in state.items()
                       if k not in ("optimizer_state_dict", "scheduler_state_dict", "scaler_state_dict", "rng_state")}
            payload.update(model_state_dict=model.state_dict(), refit=record, metrics_validation=flatten_metrics(
                {k: v for k, v in val.items() if k != "loss_parts"}))
            save_checkpoint(target, payload)
            log.info(f"wrote {target}")
    finally:
        log.close()
    return record


def _cosine(total: int, lr: float, lr_min: float) -> Callable[[int], float]:
    """LambdaLR factor: ``lr`` down a half cosine to ``lr_min`` over ``total`` steps."""
    floor = min(lr_min / lr, 1.0)

    def factor(step: int) -> float:
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))

    return factor
