"""The anomaly prior: early in training, teach each variable's flags to mark its own outliers.

Why: on benchmarks with the paper's event sizes an extreme is announced by anomalies that
occur together in several driver variables, while each variable alone also has random
anomalies of the same shape. A variable's flags therefore pay off only once the other
driver variables flag too, and the normal-code pull switches whole driver variables off
before that happens (docs/results/paper-size.md). The prior pulls every variable's flags
towards its own outliers from the first step, so the flags stay responsive until the
classifier can use their coincidences; its weight then falls to ``flag_prior_floor`` (0 by
default: the usual IDE loss alone then decides which flags stay). A floor above 0 keeps the
prior on for the whole run: a driver variable that the classifier has not come to need is
otherwise switched off by the normal-code pull as soon as the prior's weight falls well below
the pull's (docs/results/paper-size.md).

The target of a voxel is 1 where its value lies more than ``threshold`` robust standard
deviations (1.4826 x the median absolute deviation, per sample and variable) from the
median of its sample and variable: no labels are used. The loss is a class-balanced BCE
on the quantizer's score (a voxel is flagged where the score is positive).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its standard deviation


def outlier_targets(x: Tensor, threshold: float) -> Tensor:
    """x [N, V, T, H, W] (one channel per variable) -> bool [N, V, T, H, W]: robust |z| > threshold.

    Median and MAD are taken over each sample's and variable's voxels; a constant variable has
    no outliers.
    """
    flat = x.flatten(2)
    med = flat.median(dim=-1, keepdim=True).values
    mad = (flat - med).abs().median(dim=-1, keepdim=True).values
    scale = (MAD_TO_STD * mad).clamp(min=torch.finfo(x.dtype).tiny)
    z = (flat - med) / scale
    return ((z.abs() > threshold) & (mad > 0)).view_as(x)


def balanced_score_bce(score: Tensor, target: Tensor, keep: Tensor | None = None) -> Tensor:
    """BCE of the flag score against the targets, each class carrying half the loss per variable.

    score, target [N, V, ...]; ``keep`` (broadcastable to them) excludes voxels, e.g. invalid
    pixels; a class absent for a variable contributes nothing for it.
    """
    t = target.to(score.dtype)
    k = torch.ones_like(t) if keep is None else keep.to(score.dtype).expand_as(t)
    per_voxel = F.binary_cross_entropy_with_logits(score, t, reduction="none")
    dims = [0, *range(2, score.dim())]
    pos, neg = t * k, (1 - t) * k
    loss_pos = (per_voxel * pos).sum(dim=dims) / pos.sum(dim=dims).clamp(min=1)
    loss_neg = (per_voxel * neg).sum(dim=dims) / neg.sum(dim=dims).clamp(min=1)
    return 0.5 * (loss_pos + loss_neg).mean()


def prior_weight(epoch: float, weight: float, epochs: float, floor: float = 0.0) -> float:
    """The prior's weight at ``epoch`` (0-based): ``weight`` falling linearly to 0 at ``epochs``, but
    never below ``floor`` (a prior that stays on for the whole run; 0 = it ends)."""
    if weight <= 0:
        return 0.0
    if epochs <= 0 or epoch >= epochs:
        return floor
    return max(floor, weight * (1.0 - epoch / epochs))
