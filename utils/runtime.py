"""Where and how a run executes: device, torchrun process group, mixed precision, seeds and RNG state.

Every rank's RNG streams are saved in ``last.pth`` (:func:`rng_state`) and restored on
``--resume`` (:func:`set_rng_state`), which makes a resumed run bitwise equal to an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from utils.cpu_memory import retain_freed_memory
from utils.distributed import DistInfo, init_distributed

__all__ = [
    "Runtime", "setup_runtime", "resolve_amp", "prepare_model", "seed_everything", "rng_state", "set_rng_state",
    "unwrap", "to_device",
]


@dataclass
class Runtime:
    dist: DistInfo
    amp_dtype: torch.dtype | None  # autocast dtype (see resolve_amp); None = full precision

    @property
    def amp_name(self) -> str:
        """What the log and benchmark records say: bf16, fp16 or none."""
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.amp_dtype, "none")

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
    return Runtime(dist=info, amp_dtype=resolve_amp(cfg.amp, info.device))


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--amp`` on ``device``.

    ``auto`` is bf16 on a CUDA GPU that supports it (fp32 master weights, no loss scaling) and float32
    elsewhere. ``bf16`` asked for by name also autocasts on the CPU (oneDNN's bf16 kernels), so the bf16
    numerics of a GPU run can be checked on a CPU; ``fp16`` is CUDA only (a CPU run stays float32).
    """
    if amp == "none":
        return None
    if device.type == "cuda":
        if amp == "auto":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.bfloat16 if amp == "bf16" and device.type == "cpu" else None


def prepare_model(cfg: Any, model: nn.Module) -> list[str]:
    """Apply ``channels_last`` and ``compile`` to a model already on its device; returns log lines.

    ``channels_last`` stores every 5-D weight (Conv3d) as NDHWC (``torch.channels_last_3d``), which
    lets cuDNN pick channels-last 3-D convolution kernels; 4-D and smaller weights are untouched.
    ``compile`` compiles the module's forward in place (``nn.Module.compile``), so parameter names
    and checkpoints stay those of the plain model. Call before building the optimiser.
    """
    notes = []
    if getattr(cfg, "channels_last", False):
        n = 0
        for p in model.parameters():
            if p.dim() == 5:
                p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
                n += 1
        notes.append(f"channels_last: {n} 3-D convolution weight(s) stored NDHWC")
    if getattr(cfg, "compile", False):
        model.compile()
        notes.append("compile: the model's forward is compiled by torch.compile at its first steps")
    return notes


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); call before building the model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
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


def set_rng_state(state: dict[str, Any]) -> None:
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


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    nb = device.type == "cuda"
    return {k: v.to(device, non_blocking=nb) if torch.is_tensor(v) else v for k, v in batch.items()}
