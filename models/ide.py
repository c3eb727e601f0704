"""The IDE model: encoder -> binary quantizer -> extreme classifier, and its training loss.

    out = model(x)                                 # x [N, V, C, T, H, W], newest week first
    loss, parts = model.compute_loss(out, batch)   # batch: mask_extreme, mask_extreme_loss [, mask_valid]

The engine needs only ``out.logits``, ``out.anomaly`` and ``compute_loss``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.classifier import ExtremeClassifier
from models.codebook import build_quantizer
from models.encoder import build_encoder
from models.flag_prior import balanced_score_bce, outlier_targets, prior_weight
from models.losses import normal_code_l1, weighted_bce
from utils.option_sections import EncoderOptions, QuantizerOptions


@dataclass
class IDEOutput:
    """What one forward pass returns (all newest-first in time).

    logits  [N, 1, H, W]        extreme logit of the target week (t = 0)
    anomaly [N, V, T, H, W]     uint8 driver flags (quantizer index != 0)
    heads   [N, V, H, W]        per-variable extreme logits
    z       [N, V, D, T, H, W]  encoder features before quantization
    z_q     [N, V, D, T, H, W]  quantized codes (straight-through in training)
    aux_loss []                 quantizer auxiliary loss (0 in eval mode)
    """

    logits: Tensor
    anomaly: Tensor
    heads: Tensor
    z: Tensor
    z_q: Tensor
    aux_loss: Tensor


class IDE(nn.Module):
    """Identify drivers of extremes. Attribute names (encoder, vq, cls) match the published checkpoints."""

    def __init__(self, cfg) -> None:
        super().__init__()
        n_vars = len(cfg.variables)
        if cfg.in_channels_dynamic != n_vars:
            raise ValueError(
                f"option 'in_channels_dynamic' is {cfg.in_channels_dynamic} "
                f"but 'variables' has {n_vars} entries"
            )
        self.n_vars, self.in_channels, self.delta_t = n_vars, cfg.in_channels, cfg.delta_t
        self.lambda_anomaly_final = cfg.lambda_anomaly
        self.lambda_anomaly_start = getattr(cfg, "lambda_anomaly_start", cfg.lambda_anomaly)
        self.lambda_anomaly_warmup = getattr(cfg, "lambda_anomaly_warmup_epochs", 0.0)
        self.lambda_anomaly = cfg.lambda_anomaly
        self.loss_weighting = getattr(cfg, "loss_weighting", "published")
        self.flag_prior_start = float(getattr(cfg, "flag_prior", 0.0))
        self.flag_prior_epochs = float(getattr(cfg, "flag_prior_epochs", 0.0))
        self.flag_prior_threshold = float(getattr(cfg, "flag_prior_threshold", 3.0))
        self.flag_prior_floor = float(getattr(cfg, "flag_prior_floor", 0.0))
        self.flag_prior = self.flag_prior_start
        for name, value in (("flag_prior", self.flag_prior_start), ("flag_prior_epochs", self.flag_prior_epochs),
                            ("flag_prior_floor", self.flag_prior_floor)):
            if value < 0:
                raise ValueError(f"option '{name}' is {value:g}; it must be 0 or more (flag_prior 0 = off)")
        if self.flag_prior_threshold <= 0:
            raise ValueError(
                f"option 'flag_prior_threshold' is {self.flag_prior_threshold:g}; it must be above 0 "
                "(robust standard deviations, e.g. 3)"
            )
        if self.flag_prior_start > 0 and (cfg.codebook != "LFQ" or cfg.codebook_size != 2):
            raise ValueError(
                f"option 'flag_prior' needs the binary LFQ codebook (codebook LFQ, codebook_size 2), got "
                f"{cfg.codebook} with {cfg.codebook_size} codes: set flag_prior 0"
            )
        mode = getattr(cfg, "spatial_anomaly", "none")
        if mode not in ("none", "always"):
            raise ValueError(
                f"option 'spatial_anomaly' is {mode!r} at model build; the entry scripts resolve 'auto' from "
                "the training data (dataset.grid_signal.resolve_spatial_anomaly): pass 'always' or 'none'"
            )
        self.spatial_anomaly = mode == "always"
        in_channels = 2 * cfg.in_channels if self.spatial_anomaly else cfg.in_channels
        self.encoder = build_encoder(cfg.section(EncoderOptions), n_vars, in_channels, cfg.codebook_dim)
        monotone_heads = getattr(cfg, "monotone_heads", False)
        if monotone_heads and cfg.codebook_size != 2:
            raise ValueError(
                f"option 'monotone_heads' needs a binary codebook (codebook_size 2), got {cfg.codebook_size}"
            )
        self.cls = ExtremeClassifier(
            n_vars, cfg.codebook_dim, cfg.cls_dim, cfg.delta_t, cfg.cls_drop_rate, monotone_heads
        )
        self.vq = build_quantizer(cfg.section(QuantizerOptions))
        self.flags_frozen = False
        self.var_dropout = float(getattr(cfg, "cls_var_dropout", 0.0))
        if not 0.0 <= self.var_dropout < 1.0:
            raise ValueError(f"option 'cls_var_dropout' is {self.var_dropout:g}; use a share in [0, 1), e.g. 0.3")

    def forward(self, x: Tensor) -> IDEOutput:
        """Encode each variable, quantize to codes (code 0 = normal), classify the target week's extremes."""
        if (
            x.dim() != 6
            or x.shape[1] != self.n_vars
            or x.shape[2] != self.in_channels
            or x.shape[3] != self.delta_t
        ):
            raise ValueError(
                f"IDE expects x [N, V={self.n_vars}, C={self.in_channels}, T={self.delta_t}, H, W], "
                f"got {tuple(x.shape)}"
            )
        with torch.no_grad() if self.flags_frozen else contextlib.nullcontext():
            z = self.encode(x)
            z_q, idx, aux, codes = self.vq.quantize_with_codes(z)
        flags = self.flag_coordinate(z_q) if self.cls.monotone_heads else None
        logits, heads = self.cls(z_q, flags, codes, self.hide_variables(z_q))
        return IDEOutput(
            logits=logits, anomaly=(idx != 0).to(torch.uint8), heads=heads, z=z, z_q=z_q, aux_loss=aux
        )

    def freeze_flags(self) -> None:
        """Train the classifier alone from here on (utils/refit.py): encoder and quantizer get no
        gradient and stay in eval mode, and the loss is the two extreme terms only, so the flags of
        every sample stay what they are while the classifier learns to predict extremes from them."""
        self.flags_frozen = True
        for module in (self.encoder, self.vq):
            module.requires_grad_(False)
            module.eval()

    def train(self, mode: bool = True) -> IDE:
        """nn.Module.train, except that frozen flags keep encoder and quantizer in eval mode."""
        super().train(mode)
        if self.flags_frozen:
            self.encoder.eval()
            self.vq.eval()
        return self

    def hide_variables(self, z_q: Tensor) -> Tensor | None:
        """Training with ``cls_var_dropout``: z_q with random (sample, variable) pairs set to the normal
        code, for the joint head. It must then predict extremes without those variables' flags, so it
        cannot rest on a few driver variables while the normal-code pull switches the others off for good.
        None (the joint head reads z_q) in evaluation or when off."""
        if not (self.training and self.var_dropout > 0):
            return None
        n, v = z_q.shape[:2]
        hidden = torch.rand(n, v, 1, 1, 1, 1, device=z_q.device) < self.var_dropout
        normal = self.vq.normal_code().detach().to(z_q.dtype).view(1, 1, -1, 1, 1, 1)
        return torch.where(hidden, normal, z_q)

    def encode(self, x: Tensor) -> Tensor:
        """x [N, V, C, T, H, W] -> z [N, V, D, T, H, W], with the spatial anomaly channels when asked."""
        return self.encoder(with_spatial_anomaly(x) if self.spatial_anomaly else x)

    def flag_coordinate(self, z_q: Tensor) -> Tensor:
        """z_q [N, V, D, T, H, W] -> [N, V, 1, T, H, W]: its projection on code(1) - code(0), 0 at the
        normal code and 1 at the driver code; linear, so the straight-through gradient passes."""
        c0, c1 = self.vq.code(0).detach().to(z_q.dtype), self.vq.code(1).detach().to(z_q.dtype)
        diff = c1 - c0
        shape = (1, 1, -1, 1, 1, 1)
        return ((z_q - c0.view(shape)) * (diff / diff.dot(diff)).view(shape)).sum(dim=2, keepdim=True)

    def fit_epoch_start(self, epoch: int) -> None:
        """Engine hook: set this epoch's lambda_anomaly (geometric ramp start -> final over the warm-up)."""
        self.lambda_anomaly = anomaly_weight(
            epoch, self.lambda_anomaly_start, self.lambda_anomaly_final, self.lambda_anomaly_warmup
        )
        self.flag_prior = prior_weight(epoch, self.flag_prior_start, self.flag_prior_epochs, self.flag_prior_floor)

    def compute_loss(self, out: IDEOutput, batch: dict) -> tuple[Tensor, dict[str, float]]:
        """:meth:`compute_loss_tensors` with the parts read as floats (one host synchronisation)."""
        total, parts = self.compute_loss_tensors(out, batch)
        values = torch.stack(list(parts.values())).tolist()
        return total, dict(zip(parts, values))

    def compute_loss_tensors(self, out: IDEOutput, batch: dict) -> tuple[Tensor, dict[str, Tensor]]:
        """BCE_w(joint) + sum_v BCE_w(head_v) + lambda_anomaly * L1_normal(z_q) + aux.

        Uses ``mask_extreme`` [N, H, W] as target, ``mask_extreme_loss`` [N, H, W]
        (pixels with any extreme in the window are exempt from the normal pull) and,
        on real data, ``mask_valid`` [N, H, W] (invalid pixels count nowhere).
        """
        dev = out.logits.device
        target = batch["mask_extreme"].to(dev, non_blocking=True)
        any_extreme = batch["mask_extreme_loss"].to(dev, non_blocking=True)
        valid = batch.get("mask_valid")
        valid = valid.to(dev, non_blocking=True) if valid is not None else None
        bce_joint = weighted_bce(out.logits, target, valid, self.loss_weighting)
        bce_heads = weighted_bce(out.heads, target, valid, self.loss_weighting)
        if self.flags_frozen and self.training:  # the other terms are constants of the frozen flags
            total = bce_joint + bce_heads
            values = torch.stack([bce_joint, bce_heads, total]).detach().float()
            return total, dict(zip(["bce_joint", "bce_heads", "total"], values.unbind()))
        l1 = normal_code_l1(out.z_q, self.vq.normal_code(), any_extreme < 0.5, valid)
        total = bce_joint + bce_heads + self.lambda_anomaly * l1 + out.aux_loss
        names, parts = ["bce_joint", "bce_heads", "anomaly_l1", "aux"], [bce_joint, bce_heads, l1, out.aux_loss]
        if self.flag_prior > 0 and self.training:
            prior = self.flag_prior_loss(out, batch["x"].to(dev, non_blocking=True), valid)
            total = total + self.flag_prior * prior
            names.append("flag_prior")
            parts.append(prior)
        values = torch.stack([*parts, total]).detach().float()
        # 0-d float32 tensors on the loss's device: the engine sums them there (no read per step)
        return total, dict(zip([*names, "total"], values.unbind()))

    def flag_prior_loss(self, out: IDEOutput, x: Tensor, valid: Tensor | None = None) -> Tensor:
        """The anomaly prior (models/flag_prior.py): the flag score against each variable's outliers in
        the input the encoder reads (its first channel, minus the spatial median when that channel is on)."""
        v0 = x[:, :, 0]  # [N, V, T, H, W]
        if self.spatial_anomaly:
            v0 = spatial_residual(v0)
        target = outlier_targets(v0.float(), self.flag_prior_threshold)
        score = self.vq.project_in(out.z.movedim(2, -1))[..., 0]  # [N, V, T, H, W]; flagged where > 0
        keep = None if valid is None else valid[:, None, None].bool()
        return balanced_score_bce(score, target, keep)


def anomaly_weight(epoch: float, start: float, final: float, warmup_epochs: float) -> float:
    """lambda_anomaly at ``epoch`` (0-based): ``start * (final / start) ** (epoch / warmup)``, then ``final``."""
    if warmup_epochs <= 0 or epoch >= warmup_epochs or start <= 0 or final <= 0:
        return final
    return start * (final / start) ** (epoch / warmup_epochs)


def with_spatial_anomaly(x: Tensor) -> Tensor:
    """x [N, V, C, T, H, W] -> [N, V, 2C, T, H, W]: x, then x minus its median over (H, W).

    The median is taken per sample, variable, channel and week, so it follows what the whole
    grid shares (a residual seasonal cycle, a region-wide shift) and ignores a local anomaly that
    covers less than half of the grid.
    """
    return torch.cat([x, spatial_residual(x)], dim=2)


def spatial_residual(x: Tensor) -> Tensor:
    """x [..., H, W] minus its median over (H, W): the spatial-anomaly channel."""
    return x - x.flatten(-2).median(dim=-1).values[..., None, None]
