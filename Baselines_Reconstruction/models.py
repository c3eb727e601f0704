"""Reconstruction baselines: STEALNet (3-D conv autoencoder) and UniAD (masked transformer).

Both reconstruct the normalised inputs; a voxel's per-variable reconstruction
error is its driver score, and the flag is score > a threshold chosen on the
validation split (utils.metrics.ScoreThreshold; never on test labels). Parameter
names follow the published models (``baseline_keys_STEALNet.txt``, ``_UniAD.txt``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.methods import MethodSpec, ScoreOutput, ThresholdedScores, register_method

METHODS = ("stealnet", "uniad")


def _normal_mask(batch: dict, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """(normal, extreme) pixel masks [N, 1, H, W] from the window's extreme mask (and mask_valid)."""
    ext = batch["mask_extreme_loss"] > 0.5
    valid = batch["mask_valid"] > 0.5 if "mask_valid" in batch else torch.ones_like(ext)
    normal, extreme = (~ext & valid).unsqueeze(1), (ext & valid).unsqueeze(1)
    if normal.shape[-2:] != shape:  # pooled grid: a cell is normal only if every pixel in it is
        k = normal.shape[-1] // shape[-1]
        normal = -F.max_pool2d(-normal.float(), k) > 0.5
        extreme = F.max_pool2d(extreme.float(), k) > 0.5
    return normal, extreme


def _masked_mse(err: Tensor, mask: Tensor) -> Tensor:
    """Mean of err [N, ..., H, W] over pixels where mask [N, 1, H, W] (broadcast over the middle dims)."""
    m = mask.view(mask.shape[0], *([1] * (err.dim() - 3)), *mask.shape[-2:]).to(err.dtype).expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1.0)


# --------------------------------------------------------------------------------------
# STEALNet
# --------------------------------------------------------------------------------------

_STRIDES = ((1, 2, 2), (2, 2, 2), (2, 2, 2), (2, 1, 1))
_MULTIPLE = (8, 8, 8)  # total down-sampling of (T, H, W)


class _Coder(nn.Module):
    def __init__(self, layers: list[nn.Module], attr: str) -> None:
        super().__init__()
        setattr(self, attr, nn.Sequential(*layers))


def _stealnet_layers(c_in: int, widths: tuple[int, ...]) -> tuple[list[nn.Module], list[nn.Module]]:
    enc: list[nn.Module] = []
    chans = [c_in, *widths, widths[-1]]
    for i, s in enumerate(_STRIDES):
        enc += [
            nn.Conv3d(chans[i], chans[i + 1], 3, stride=s, padding=1, bias=False),
            nn.BatchNorm3d(chans[i + 1]),
            nn.LeakyReLU(0.2),
        ]
    dec: list[nn.Module] = []
    rev = chans[::-1]
    for i, s in enumerate(_STRIDES[::-1]):
        last = i == len(_STRIDES) - 1
        out_pad = tuple(k - 1 for k in s)
        dec.append(
            nn.ConvTranspose3d(rev[i], rev[i + 1], 3, stride=s, padding=1, output_padding=out_pad, bias=last)
        )
        if not last:
            dec += [nn.BatchNorm3d(rev[i + 1]), nn.LeakyReLU(0.2)]
    return enc, dec


class STEALNet(ThresholdedScores, nn.Module):
    """All variables as channels; loss = MSE(normal pixels) - MSE(pixels with an extreme in the window)."""

    def __init__(self, cfg) -> None:
        super().__init__()
        self.n_vars, self.c = len(cfg.variables), cfg.in_channels
        enc, dec = _stealnet_layers(self.n_vars * self.c, (96, 128, 256))
        self.encoder = _Coder(enc, "encoder")
        self.decoder = _Coder(dec, "decoder")
        self.out_scale = cfg.stealnet_out_scale
        self.threshold = math.inf  # set from the validation split (not a parameter: layouts stay exact)

    def reconstruct(self, x: Tensor) -> Tensor:
        n, v, c, t, h, w = x.shape
        y = x.reshape(n, v * c, t, h, w)
        pad = [(-s) % m for s, m in zip((t, h, w), _MULTIPLE)]
        if any(pad):
            y = F.pad(y, (0, pad[2], 0, pad[1], 0, pad[0]), mode="replicate")
        y = self.decoder.decoder(self.encoder.encoder(y))
        return (torch.tanh(y) * self.out_scale)[:, :, :t, :h, :w].reshape(n, v, c, t, h, w)

    def forward(self, x: Tensor) -> ScoreOutput:
        err = (self.reconstruct(x) - x).pow(2).mean(2)  # [N, V, T, H, W]
        return ScoreOutput.from_scores(err, self.threshold)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        normal, extreme = _normal_mask(batch, out.score.shape[-2:])
        l_norm, l_ext = _masked_mse(out.score, normal), _masked_mse(out.score, extreme)
        return l_norm - l_ext, {"mse_normal": float(l_norm.detach()), "mse_extreme": float(l_ext.detach())}


# --------------------------------------------------------------------------------------
# UniAD
# --------------------------------------------------------------------------------------


class PositionEmbedding(nn.Module):
    """Learned row / column embeddings (DETR style), concatenated to the hidden width."""

    def __init__(self, hidden: int, max_size: int = 100) -> None:
        super().__init__()
        self.row_embed = nn.Embedding(max_size, hidden // 2)
        self.col_embed = nn.Embedding(max_size, hidden // 2)

    def forward(self, h: int, w: int) -> Tensor:
        """[h * w, hidden] (row-major)."""
        if max(h, w) > self.row_embed.num_embeddings:
            raise ValueError(
                f"UniAD: feature grid {h}x{w} exceeds {self.row_embed.num_embeddings} positions per axis"
            )
        dev = self.row_embed.weight.device
        col = self.col_embed(torch.arange(w, device=dev)).unsqueeze(0).expand(h, w, -1)
        row = self.row_embed(torch.arange(h, device=dev)).unsqueeze(1).expand(h, w, -1)
        return torch.cat([col, row], -1).reshape(h * w, -1)


class EncoderLayer(nn.Module):
    """Post-norm self-attention layer; position added to queries and keys."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)

    def ffn(self, x: Tensor, norm: nn.LayerNorm) -> Tensor:
        return norm(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:
        q = x + pos
        x = self.norm1(x + self.dropout(self.self_attn(q, q, x, attn_mask=mask, need_weights=False)[0]))
        return self.ffn(x, self.norm2)


class DecoderLayer(EncoderLayer):
    """Learned per-position queries attend to the encoder memory, then to the previous layer's output."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, n_positions: int) -> None:
        super().__init__(d, heads, ff, dropout)
        self.learned_embed = nn.Embedding(n_positions, d)
        self.multihead_attn = nn.MultiheadAttention(d, heads, dropout=dropout)
        self.norm3 = nn.LayerNorm(d)

    def forward(self, out: Tensor, memory: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:  # type: ignore[override]
        length, n, _ = memory.shape
        if length > self.learned_embed.num_embeddings:
            raise ValueError(
                f"UniAD: {length} positions exceed the {self.learned_embed.num_embeddings} learned queries"
            )
        q = self.learned_embed.weight[:length].unsqueeze(1).expand(length, n, -1)
        a = self.self_attn(q + pos, memory + pos, memory, attn_mask=mask, need_weights=False)[0]
        q = self.norm1(q + self.dropout(a))
        a = self.multihead_attn(q + pos, out + pos, out, attn_mask=mask, need_weights=False)[0]
        q = self.norm2(q + self.dropout(a))
        return self.ffn(q, self.norm3)


class _Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        if norm is not None:
            self.norm = norm


class _Transformer(nn.Module):
    def __init__(self, d: int, heads: int, n_layers: int, n_positions: int, dropout: float) -> None:
        super().__init__()
        self.encoder = _Stack([EncoderLayer(d, heads, 4 * d, dropout) for _ in range(n_layers)])
        self.decoder = _Stack(
            [DecoderLayer(d, heads, 4 * d, dropout, n_positions) for _ in range(n_layers)], nn.LayerNorm(d)
        )


def neighbour_mask(h: int, w: int, size: int, device: torch.device) -> Tensor:
    """Bool [h*w, h*w], True = may not attend: the size x size neighbourhood of each token (UniAD).

    A row that would be fully masked (grid smaller than the neighbourhood) keeps every other token.
    """
    yy, xx = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    yy, xx = yy.reshape(-1), xx.reshape(-1)
    r = size // 2
    mask = ((yy[:, None] - yy[None]).abs() <= r) & ((xx[:, None] - xx[None]).abs() <= r)
    full = mask.all(1)
    if full.any():
        mask[full] = torch.eye(h * w, dtype=torch.bool, device=device)[full] if h * w > 1 else False
    return mask


def check_uniad_options(cfg) -> None:
    """Refuse a UniAD width the layers cannot take (ValueError naming the options)."""
    d, heads = cfg.uniad_hidden, cfg.uniad_heads
    if heads < 1 or d < 2 or d % 2 or d % heads:
        raise ValueError(
            f"options 'uniad_hidden' {d} and 'uniad_heads' {heads}: the width must be even (row and column "
            "position halves) and divisible by the heads, e.g. 96 and 3"
        )


class UniAD(ThresholdedScores, nn.Module):
    """Reconstruct each week's field of all variables at 1/pool resolution; error upsampled per variable."""

    def __init__(self, cfg) -> None:
        super().__init__()
        check_uniad_options(cfg)
        self.n_vars, self.c, self.pool = len(cfg.variables), cfg.in_channels, cfg.uniad_pool
        d, vc = cfg.uniad_hidden, len(cfg.variables) * cfg.in_channels
        self.neighbor = cfg.uniad_neighbor
        self.pos_embed = PositionEmbedding(d)
        self.transformer = _Transformer(d, cfg.uniad_heads, cfg.uniad_layers, 100 * 100, 0.1)
        self.input_proj = nn.Linear(vc, d)
        self.output_proj = nn.Linear(d, vc)
        self._masks: dict[tuple, Tensor] = {}  # neighbour masks by (h, w, device): built once each
        self.threshold = math.inf  # set from the validation split

    def _mask(self, h: int, w: int, device: torch.device) -> Tensor | None:
        if self.neighbor <= 0:
            return None
        key = (h, w, str(device))
        if key not in self._masks:
            self._masks[key] = neighbour_mask(h, w, self.neighbor, device)
        return self._masks[key]

    def reconstruct(self, fields: Tensor) -> Tensor:
        """fields [B, VC, h, w] (pooled) -> reconstruction of the same shape."""
        b, vc, h, w = fields.shape
        tokens = self.input_proj(fields.flatten(2).permute(2, 0, 1))  # [L, B, d]
        pos = self.pos_embed(h, w).unsqueeze(1)
        mask = self._mask(h, w, fields.device)
        mem = tokens
        for layer in self.transformer.encoder.layers:
            mem = layer(mem, pos, mask)
        out = mem
        for layer in self.transformer.decoder.layers:
            out = layer(out, mem, pos, mask)
        out = self.output_proj(self.transformer.decoder.norm(out))
        return out.permute(1, 2, 0).reshape(b, vc, h, w)

    def forward(self, x: Tensor) -> ScoreOutput:
        n, v, c, t, h, w = x.shape
        fields = x.permute(0, 3, 1, 2, 4, 5).reshape(n * t, v * c, h, w)
        p = self.pool
        if h % p or w % p:
            fields = F.pad(fields, (0, (-w) % p, 0, (-h) % p), mode="replicate")
        pooled = F.avg_pool2d(fields, p) if p > 1 else fields
        err = (self.reconstruct(pooled) - pooled).pow(2)
        err = err.view(n * t, v, c, *err.shape[-2:]).mean(2)
        if p > 1:
            err = F.interpolate(err, scale_factor=p, mode="bilinear", align_corners=False)[..., :h, :w]
        score = err.view(n, t, v, h, w).transpose(1, 2)
        return ScoreOutput.from_scores(score, self.threshold)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        normal, _ = _normal_mask(batch, out.score.shape[-2:])
        loss = _masked_mse(out.score, normal)
        return loss, {"mse_normal": float(loss.detach())}


register_method(MethodSpec("stealnet", "STEALNet", build=STEALNet, scores=True, family="reconstruction",
                           summary="STEALNet: reconstruction error of a convolutional autoencoder"))
register_method(MethodSpec("uniad", "UniAD", build=UniAD, scores=True, family="reconstruction",
                           check_training=check_uniad_options,
                           summary="UniAD: reconstruction error of a transformer"))
