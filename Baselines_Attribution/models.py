"""Integrated-gradients references (the paper's "Integrated Gradients I / II" rows).

The same encoder and extreme classifier as IDE but without the quantizer are
trained to predict the extreme map; at evaluation, the prediction is attributed
to the inputs with integrated gradients (captum) and the attribution is the
driver score (flag = score > a threshold chosen on the validation split).

- ``ig1``: zero baseline. Inputs are normalised by the per-pixel weekly
  climatology, so 0 is the climatological median of every voxel.
- ``ig2``: "climatology" baseline taken from the sample itself: each pixel's and
  variable's mean over the window's weeks. (The weekly-climatology median would
  again be 0 in normalised units, i.e. variant I, and the model sees no week
  index, so a per-week climatology cannot be looked up from ``x`` alone.)

The attributed quantity is the sum of the extreme logits at the pixels the model
predicts as extreme (probability >= the extreme threshold): one backward pass per
integration step attributes every predicted extreme at once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.classifier import ExtremeClassifier
from models.encoder import build_encoder
from models.losses import weighted_bce
from models.methods import MethodSpec, ScoreOutput, ThresholdedScores, register_method
from models.weight_init import init_weights
from utils.option_sections import EncoderOptions

METHODS = ("ig1", "ig2")


class IGModel(ThresholdedScores, nn.Module):
    """Encoder -> classifier (no quantizer); drivers by integrated gradients at evaluation."""

    def __init__(self, cfg) -> None:
        super().__init__()
        if cfg.method not in METHODS:
            raise ValueError(
                f"option 'method': {cfg.method!r} is not an attribution method ({', '.join(METHODS)})"
            )
        n_vars = len(cfg.variables)
        self.method, self.n_steps, self.pred_threshold = cfg.method, cfg.ig_n_steps, cfg.pred_threshold
        self.loss_weighting = getattr(cfg, "loss_weighting", "published")  # IDE's class weights
        self.encoder = build_encoder(cfg.section(EncoderOptions), n_vars, cfg.in_channels, cfg.codebook_dim)
        self.cls = ExtremeClassifier(n_vars, cfg.codebook_dim, cfg.cls_dim, cfg.delta_t, cfg.cls_drop_rate)
        init_weights(self, cfg.init)
        self.threshold = math.inf
        # False: eval-mode forward skips the attributions (n_steps passes per batch); training
        # turns them off for its validation passes, which score extremes only
        self._attribute_in_eval = True

    def scores_drivers_in_validation(self, on: bool) -> None:
        self._attribute_in_eval = on

    def logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls(self.encoder(x))

    def baseline(self, x: Tensor) -> Tensor:
        if self.method == "ig1":
            return torch.zeros_like(x)
        return x.mean(3, keepdim=True).expand_as(x)

    def attributions(self, x: Tensor, logits: Tensor) -> Tensor:
        """Integrated gradients of the summed predicted-extreme logits w.r.t. x -> [N, V, T, H, W]."""
        from captum.attr import IntegratedGradients

        target = (torch.sigmoid(logits.detach()) >= self.pred_threshold).to(x.dtype)  # [N, 1, H, W]

        def summed(inp: Tensor) -> Tensor:
            reps = inp.shape[0] // x.shape[0]  # captum may batch several steps together
            return (self.logits(inp)[0] * target.repeat(reps, 1, 1, 1)).sum((1, 2, 3))

        with torch.enable_grad():
            attr = IntegratedGradients(summed).attribute(
                x, baselines=self.baseline(x), n_steps=self.n_steps, internal_batch_size=x.shape[0]
            )
        return attr.sum(2).detach()

    def forward(self, x: Tensor) -> ScoreOutput:
        logits, heads = self.logits(x)
        if self.training or not self._attribute_in_eval:  # attributions cost n_steps passes
            n, v, _, t, h, w = x.shape
            return ScoreOutput.from_scores(x.new_zeros(n, v, t, h, w), self.threshold, logits, heads=heads)
        return ScoreOutput.from_scores(self.attributions(x, logits), self.threshold, logits, heads=heads)

    def compute_loss(self, out: ScoreOutput, batch: dict) -> tuple[Tensor, dict]:
        """Class-weighted BCE of the joint and per-variable extreme logits (IDE's loss without the codes)."""
        valid = batch.get("mask_valid")
        joint = weighted_bce(out.logits, batch["mask_extreme"], valid, self.loss_weighting)
        heads = weighted_bce(out.extra["heads"], batch["mask_extreme"], valid, self.loss_weighting)
        return joint + heads, {"bce_joint": float(joint.detach()), "bce_heads": float(heads.detach())}


register_method(MethodSpec("ig1", "Integrated Gradients I", build=IGModel, scores=True, family="attribution",
                           summary="integrated gradients of an extreme classifier, zero baseline"))
register_method(MethodSpec("ig2", "Integrated Gradients II", build=IGModel, scores=True, family="attribution",
                           summary="integrated gradients, the window's own mean as baseline"))
