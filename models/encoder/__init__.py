"""Encoders by name: x [N, V, C, T, H, W] -> z [N, V, D, T, H, W], one unshared branch per variable."""

from __future__ import annotations

from torch import nn

from utils.option_sections import EncoderOptions

ENCODERS = ("CNN_3D", "Swin_3D", "Mamba")


def build_encoder(enc: EncoderOptions, n_vars: int, in_channels: int, out_dim: int) -> nn.Module:
    """``enc.encoder`` -> encoder module (published attribute names ``layers_var`` / ``proj_var``).

    ``enc``: the encoder section of the configuration; ``in_channels`` per variable in, ``out_dim``
    (the quantizer's ``codebook_dim``) features per voxel out.
    """
    if enc.encoder == "CNN_3D":
        from models.encoder.cnn3d import CNN3DEncoder

        return CNN3DEncoder(n_vars, in_channels, list(enc.en_embed_dim), out_dim)
    if enc.encoder == "Swin_3D":
        from models.encoder.swin3d import Swin3DEncoder

        return Swin3DEncoder(enc, n_vars, in_channels, out_dim)
    if enc.encoder == "Mamba":
        from models.encoder.mamba import MambaEncoder

        return MambaEncoder(enc, n_vars, in_channels, out_dim)
    raise ValueError(f"option 'encoder' is {enc.encoder!r}; choose one of {', '.join(ENCODERS)}")
