"""Build the IDE model from a Config, and read/write checkpoints (ours and the published format).

Our ``state_dict()`` has exactly the published names and shapes, so loading is
a key clean-up (``module.`` prefixes from DataParallel/DDP) plus a strict
``load_state_dict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.ide import IDE
from models.methods import MethodSpec, register_method
from models.weight_init import init_weights
from utils.checkpoints import describe_mismatch, read_checkpoint
from utils.errors import CheckpointError


def build_model(cfg) -> IDE:
    """The IDE model for ``cfg`` (encoder, codebook, classifier, init scheme all from options)."""
    model = IDE(cfg)
    init_weights(model, cfg.init)
    return model


def extract_state_dict(obj: Any, path: str | Path = "checkpoint") -> dict[str, torch.Tensor]:
    """State dict of a checkpoint (model_state_dict / state_dict) or a bare one; ``module.`` stripped."""
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    elif isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise CheckpointError(
            f"{path} holds no state dict (expected 'model_state_dict' or a bare state dict): "
            "pass a model checkpoint"
        )
    out = {}
    for key, val in obj.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        out[key] = val
    return out


def load_checkpoint(model: nn.Module, path: str | Path, strict: bool = True) -> dict:
    """Load weights from ``path`` (our checkpoints, the published format, or a bare state dict).

    Returns the whole checkpoint object (so callers can read epoch, optimizer state, ...), on the
    CPU. The file is read without executing code; a mismatch is one line counting the missing,
    unknown and wrongly shaped entries.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    state = extract_state_dict(ckpt, path)
    complete = getattr(model, "complete_state_dict", None)  # a model that supplies entries files lack
    if complete is not None:
        state = complete(state)
    own = model.state_dict()
    mismatch = describe_mismatch(own, state)
    if mismatch and strict:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model built from these options ({mismatch}); "
            "check encoder, in_channels, spatial_anomaly, variables and delta_t, or pass the run's "
            "--config RUN/config.yaml"
        )
    state = {k: v for k, v in state.items() if k not in own or own[k].shape == v.shape}
    result = model.load_state_dict(state, strict=strict)
    if not strict and (result.missing_keys or result.unexpected_keys):
        import warnings

        warnings.warn(f"checkpoint {path}: {mismatch}", stacklevel=2)
    return ckpt if isinstance(ckpt, dict) else {"model_state_dict": state}


def export_published(
    model: nn.Module,
    path: str | Path,
    epoch: int = 0,
    mean_loss_train: float = 0.0,
    mean_loss_validation: float = 0.0,
) -> Path:
    """Write ``model`` in the published checkpoint format (loadable by the authors' code)."""
    model = getattr(model, "module", model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "epoch": epoch,
            "mean_loss_train": mean_loss_train,
            "mean_loss_validation": mean_loss_validation,
            "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer_state_dict": {},
        },
        path,
    )
    return path


register_method(MethodSpec("ide", "IDE", build=build_model, family="IDE",
                           summary="IDE: binary quantizer flags that a classifier must explain the extremes from"))
