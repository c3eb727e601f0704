"""Quantizers by name (``cfg.codebook``), all behind one contract.

    z_q, indices, aux_loss = quantizer.quantize_features(z)   # z [N, V, D, T, H, W]
    quantizer.normal_code()                          # [D], the code of index 0 ("normal")
    quantizer.code(i)                                # [D], the code of index i

``quantizer.quantize_with_codes(z)`` returns the same plus, for quantizers whose
``z_q`` is a linear map of a few code channels (LFQ, FSQ: ``project_out``), those
channels as :class:`AffineCodes`, so the classifier can convolve k + 1 channels per
variable instead of D (same values to float rounding, same gradients).

``z_q`` has z's shape, ``indices`` [N, V, T, H, W] (int64; a driver flag is
``indices != 0``), ``aux_loss`` a scalar tensor (0 in eval mode). Each class
subclasses the ``vector_quantize_pytorch`` module directly, so its parameter
names sit right under ``vq.`` as in the published checkpoints (LFQ: ``vq.mask``,
``vq.project_in``, ``vq.project_out``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from vector_quantize_pytorch import FSQ, LFQ, LatentQuantize, RandomProjectionQuantizer, VectorQuantize

from utils.option_sections import QuantizerOptions

CODEBOOKS = ("LFQ", "FSQ", "VQ", "LatentQuantize", "RandomProjectionVQ")


def _tokens(z: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """[N, V, D, T, H, W] -> [N, V*T*H*W, D] (the published token layout: one token per (v, t, h, w))."""
    n, v, d, t, h, w = z.shape
    return z.movedim(2, -1).reshape(n, v * t * h * w, d), (n, v, d, t, h, w)


def _untokens(q: Tensor, idx: Tensor, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    n, v, d, t, h, w = shape
    return q.view(n, v, t, h, w, d).movedim(-1, 2), idx.reshape(n, v, t, h, w).long()


class AffineCodes(NamedTuple):
    """z_q = weight @ code + bias at every token; the code has k << D channels."""

    codes: Tensor  # [N, V, k, T, H, W], straight-through in training (grads reach the encoder)
    weight: Tensor  # [D, k]
    bias: Tensor | None  # [D]


class _Contract:
    """Mixin: zero aux loss outside training, scalar shape; the normal code."""

    def normal_code(self) -> Tensor:
        return self.code(0)  # type: ignore[attr-defined]

    def quantize_with_codes(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, AffineCodes | None]:
        """``quantize_features`` plus the code channels that ``project_out`` maps to z_q (None if absent).

        The library computes them inside its forward; a hook on ``project_out`` for the
        duration of this call takes its input, so nothing is computed twice.
        """
        proj = getattr(self, "project_out", None)
        if not isinstance(proj, nn.Linear) or proj.in_features + 1 >= proj.out_features:
            return (*self.quantize_features(z), None)  # type: ignore[attr-defined]
        seen: list[Tensor] = []
        handle = proj.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0]))
        try:
            z_q, idx, aux = self.quantize_features(z)  # type: ignore[attr-defined]
        finally:
            handle.remove()
        n, v, _, t, h, w = z.shape
        if len(seen) != 1 or seen[0].numel() != n * v * t * h * w * proj.in_features:
            return z_q, idx, aux, None
        codes = seen[0].reshape(n, v, t, h, w, proj.in_features).movedim(-1, 2)
        return z_q, idx, aux, AffineCodes(codes, proj.weight, proj.bias)

    def _aux(self, aux: Tensor | float, ref: Tensor) -> Tensor:
        if not self.training or not torch.is_tensor(aux):  # type: ignore[attr-defined]
            return ref.new_zeros(())
        return aux.sum() if aux.numel() > 1 else aux.reshape(())


class LFQQuantizer(LFQ, _Contract):
    """Lookup-free binary quantizer (paper default). Index 0 = code -1 = normal."""

    def quantize_features(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The contract on LFQ: features to tokens, lookup-free quantization, back to voxels."""
        tok, shape = _tokens(z)
        q, idx, aux = LFQ.forward(self, tok)
        z_q, idx = _untokens(q, idx, shape)
        return z_q, idx, self._aux(aux, z)

    def code(self, index: int = 0) -> Tensor:
        """The code of ``index`` (0 = normal), to pull normal pixels towards it."""
        idx = torch.full((1, 1), index, dtype=torch.long, device=self.mask.device)
        return self.indices_to_codes(idx).reshape(-1)


class FSQQuantizer(FSQ, _Contract):
    """Finite scalar quantization with one dimension of ``codebook_size`` levels; no aux loss."""

    def quantize_features(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The contract on FSQ: features to tokens, scalar quantization, back to voxels."""
        tok, shape = _tokens(z)
        q, idx = FSQ.forward(self, tok)
        z_q, idx = _untokens(q, idx, shape)
        return z_q, idx, self._aux(0.0, z)

    def code(self, index: int = 0) -> Tensor:
        """The code of ``index`` (0 = normal), to pull normal pixels towards it."""
        idx = torch.full((1, 1), index, dtype=torch.long, device=self._levels.device)
        return self.indices_to_codes(idx).reshape(-1)


class VQQuantizer(VectorQuantize, _Contract):
    """Plain vector quantization (EMA codebook, commitment loss)."""

    def quantize_features(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The contract on VectorQuantize: nearest codebook entry per voxel."""
        tok, shape = _tokens(z)
        q, idx, aux = VectorQuantize.forward(self, tok)
        z_q, idx = _untokens(q, idx, shape)
        return z_q, idx, self._aux(aux, z)

    def code(self, index: int = 0) -> Tensor:
        """The codebook entry ``index`` (0 = normal), to pull normal pixels towards it."""
        idx = torch.full((1, 1), index, dtype=torch.long, device=self.codebook.device)
        return self.get_output_from_indices(idx).reshape(-1)


class LatentQuantizer(LatentQuantize, _Contract):
    """Latent quantization (learned per-dimension values), commitment + quantization losses."""

    def quantize_features(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The contract on LatentQuantize (which takes [B, D, n] tokens)."""
        tok, shape = _tokens(z)
        q, idx, aux = LatentQuantize.forward(self, tok.transpose(1, 2))  # it takes [B, D, n]
        z_q, idx = _untokens(q.transpose(1, 2), idx, shape)
        return z_q, idx, self._aux(aux, z)

    def code(self, index: int = 0) -> Tensor:
        """The code of ``index`` (0 = normal), to pull normal pixels towards it."""
        idx = torch.full((1, 1), index, dtype=torch.long, device=self._levels.device)
        return self.indices_to_codes(idx).reshape(-1)


class RandomProjectionVQQuantizer(RandomProjectionQuantizer, _Contract):
    """``RandomProjectionVQ``: a frozen random projection and a frozen random codebook.

    Tokens are layer-normalised (no affine), projected to ``dim`` channels by a fixed random
    matrix (``rand_projs``, Xavier normal) and matched by cosine similarity to a fixed random
    codebook (``vq._codebook.embed``: no EMA, no gradient). Both are buffers, so they are saved
    with the checkpoint and nothing in the quantizer learns: only the encoder adapts, through
    the straight-through ``z_q`` (the unit-norm code, D channels) and the commitment loss
    (``lambda_commitment``). ``RandomProjectionQuantizer`` of vector-quantize-pytorch builds
    both; its ``forward`` returns indices only, so ``quantize_features`` calls its parts.
    """

    def __init__(self, dim: int, codebook_size: int, commitment_weight: float) -> None:
        super().__init__(
            dim=dim,
            codebook_size=codebook_size,
            codebook_dim=dim,
            norm=True,
            freeze_codebook=True,
            ema_update=False,
            commitment_weight=commitment_weight,
        )

    def quantize_features(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Frozen random projection of the normalised features, then the frozen codebook."""
        tok, shape = _tokens(z)
        proj = torch.einsum("b n d, h d e -> b n h e", self.norm(tok), self.rand_projs).flatten(2)
        self.vq.train(self.training)  # straight-through and commitment loss while training
        q, idx, aux = self.vq(proj)
        z_q, idx = _untokens(q, idx, shape)
        return z_q, idx, self._aux(aux, z)

    def code(self, index: int = 0) -> Tensor:
        """The codebook entry ``index`` (0 = normal), to pull normal pixels towards it."""
        idx = torch.full((1, 1), index, dtype=torch.long, device=self.rand_projs.device)
        return self.vq.get_output_from_indices(idx).reshape(-1)


def build_quantizer(cfg: QuantizerOptions) -> torch.nn.Module:
    """``cfg.codebook`` -> quantizer module (see the module docstring for the contract); ``cfg``: the
    quantizer section of the configuration."""
    name, k, d = cfg.codebook, cfg.codebook_size, cfg.codebook_dim
    if k < 2:
        raise ValueError(f"option 'codebook_size' is {k}; need at least 2 codes (normal + driver)")
    if name == "LFQ":
        if not math.log2(k).is_integer():
            raise ValueError(f"option 'codebook_size' is {k}; LFQ needs a power of 2")
        if cfg.lambda_entropy <= 0:
            raise ValueError("option 'lambda_entropy' must be > 0 for LFQ (diversity_gamma is divided by it)")
        return LFQQuantizer(
            dim=d,
            codebook_size=k,
            entropy_loss_weight=cfg.lambda_entropy,
            commitment_loss_weight=cfg.lambda_commitment,
            diversity_gamma=cfg.diversity_gamma / cfg.lambda_entropy,
        )
    if name == "FSQ":
        return FSQQuantizer(levels=[k], dim=d, preserve_symmetry=(k == 2))
    if name == "VQ":
        return VQQuantizer(dim=d, codebook_size=k, commitment_weight=cfg.lambda_commitment)
    if name == "LatentQuantize":
        return LatentQuantizer(levels=[k], dim=d, commitment_loss_weight=cfg.lambda_commitment)
    if name == "RandomProjectionVQ":
        return RandomProjectionVQQuantizer(dim=d, codebook_size=k, commitment_weight=cfg.lambda_commitment)
    raise ValueError(f"option 'codebook' is {name!r}; choose one of {', '.join(CODEBOOKS)}")
