"""Encoders by name: x [N, V, C, T, H, W] -> z [N, V, D, T, H, W], one unshared branch per variable."""

from __future__ import annotations

from torch import nn

ENCODERS = ("CNN_3D", "Swin_3D", "Mamba")


def build_encoder(cfg, n_vars: int) -> nn.Module:
    """``cfg.encoder`` -> encoder module (published attribute names ``layers_var`` / ``proj_var``)."""
    if cfg.encoder == "CNN_3D":
        from models.encoder.cnn3d import CNN3DEncoder

        return CNN3DEncoder(n_vars, cfg.in_channels, list(cfg.en_embed_dim), cfg.codebook_dim)
    if cfg.encoder == "Swin_3D":
        from models.encoder.swin3d import Swin3DEncoder

        return Swin3DEncoder(cfg, n_vars)
    if cfg.encoder == "Mamba":
        from models.encoder.mamba import MambaEncoder

        return MambaEncoder(cfg, n_vars)
    raise ValueError(f"option 'encoder' is {cfg.encoder!r}; choose one of {', '.join(ENCODERS)}")
