"""Weight initialisation (``cfg.init``).

- ``corrected`` (default): Linear weights trunc-normal(0, 0.02) with zero bias,
  as Swin does; relative-position tables trunc-normal(0, 0.02); LayerNorm 1/0;
  convolutions keep PyTorch's defaults; Mamba keeps its own dt / A / D init
  (``dt_proj`` is not touched).
- ``published``: reproduces the published defect: every Linear and Conv weight
  drawn from N(mean=0.02, std=0.02) (a typo for mean 0), biases zeroed. This
  also overwrites Mamba's dt_proj (weight and inverse-softplus dt bias).
  The published source is not available to us, so this is our reading of the
  defect described in MODEL.md.
"""

from __future__ import annotations

from torch import nn

from models.encoder.mamba import MambaMixer
from models.encoder.swin3d import WindowAttention3D


def _quantizer(model: nn.Module) -> nn.Module | None:
    return getattr(model, "vq", None)


def init_weights(model: nn.Module, scheme: str) -> nn.Module:
    if scheme not in ("corrected", "published"):
        raise ValueError(f"option 'init' is {scheme!r}; choose corrected or published")
    vq = _quantizer(model)
    skip = set(vq.modules()) if vq is not None and scheme == "corrected" else set()
    dt_projs = {m.dt_proj for m in model.modules() if isinstance(m, MambaMixer)}
    for m in model.modules():
        if m in skip:
            continue
        if scheme == "published":
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv3d)):
                nn.init.normal_(m.weight, mean=0.02, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        else:
            if isinstance(m, nn.Linear) and m not in dt_projs:
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention3D):
                nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
        if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model
