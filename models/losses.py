"""Training losses of the IDE model: class-weighted BCE and the normal-code L1 pull."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def class_weights(target: Tensor, valid: Tensor | None = None, mode: str = "published") -> Tensor:
    """Per-pixel class weights counted over the valid pixels of the batch.

    ``published``: w_c = ln((count_c / total) ** -0.5 + 1.1), nearly flat (about 3x
    for 1% positives), which lets the extreme head collapse to "no extreme" on short
    runs. ``balanced``: w_c = total / (2 count_c), so each class carries half the loss.
    A class absent from the batch gets a finite weight (its count is clamped to 1;
    no pixel uses it), so a batch without positives stays finite; invalid pixels get 0.
    """
    t = target.float()
    v = torch.ones_like(t) if valid is None else valid.float()
    total = v.sum().clamp(min=1.0)
    pos = (t * v).sum()
    neg = total - pos
    if mode == "balanced":
        w_pos = total / (2 * pos.clamp(min=1.0))
        w_neg = total / (2 * neg.clamp(min=1.0))
    elif mode == "published":
        w_pos = torch.log((pos.clamp(min=1.0) / total) ** -0.5 + 1.1)
        w_neg = torch.log((neg.clamp(min=1.0) / total) ** -0.5 + 1.1)
    else:
        raise ValueError(f"option 'loss_weighting': unknown {mode!r} (published, balanced)")
    return torch.where(t > 0.5, w_pos, w_neg) * v


def weighted_bce(logits: Tensor, target: Tensor, valid: Tensor | None = None, mode: str = "published") -> Tensor:
    """Class-weighted BCE, mean over valid pixels.

    logits [N, K, H, W] (K heads, e.g. 1 joint or V per-variable) against
    target [N, H, W]: returns the SUM over the K heads of each head's mean loss,
    i.e. ``sum_k BCE_w(logits[:, k], target)``, in one vectorised call.
    """
    if logits.dim() != target.dim() + 1:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be [N, K, H, W] for target {tuple(target.shape)}"
        )
    t = target.to(logits.dtype)
    w = class_weights(t, valid, mode).to(logits.dtype)
    n_valid = (w > 0).sum() if valid is not None else torch.tensor(t.numel(), device=t.device)
    per_pixel = F.binary_cross_entropy_with_logits(logits, t.unsqueeze(1).expand_as(logits), reduction="none")
    weighted = (per_pixel.sum(dim=1) * w).sum()
    return weighted / n_valid.clamp(min=1).to(logits.dtype)


def normal_code_l1(z_q: Tensor, normal_code: Tensor, normal: Tensor, valid: Tensor | None = None) -> Tensor:
    """Mean |z_q - code(0)| over every (v, d, t) of the pixels marked ``normal``.

    z_q [N, V, D, T, H, W]; normal_code [D] (detached: only z_q is pulled);
    normal [N, H, W] bool (no extreme in any week of the window). Computed by
    broadcasting the code and reducing to [N, H, W] before masking, so no
    masked or expanded [N, V, D, T, H, W] copies are made.
    """
    n, v, d, t, h, w = z_q.shape
    m = normal.bool() if valid is None else normal.bool() & (valid > 0.5)
    code = normal_code.detach().to(z_q.dtype).view(1, 1, d, 1, 1, 1)
    per_pixel = (z_q - code).abs().sum(dim=(1, 2, 3))  # [N, H, W]
    count = m.sum() * (v * d * t)
    return (per_pixel * m).sum() / count.clamp(min=1).to(z_q.dtype)
