"""A seed ensemble of trained IDE runs, evaluated as one model (``--ensemble RUN [RUN ...]``).

Which driver variables a short run switches on depends on its random start: on benchmarks of
the published generator one model seed leaves some driver variables off for the whole run and
another seed leaves others off (docs/results/paper-size.md). The ensemble unites the members'
flags (a voxel is flagged where any member flags it) and averages their extreme probabilities,
so the extreme gate (``--driver_gate``) then keeps the united flags that a predicted extreme
follows. The members are runs trained with the same options and other ``--seed`` values; on a
CPU they train side by side, one thread each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FlagEnsemble"]

_EPS = 1e-6  # keeps the averaged probability's logit finite


class FlagEnsemble(nn.Module):
    """Members' outputs combined: flags united, extreme probabilities averaged (the rest from member 0)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor):
        outs = [m(x) for m in self.members]
        prob = torch.stack([torch.sigmoid(o.logits.float()) for o in outs]).mean(0)
        anomaly = torch.stack([o.anomaly for o in outs]).amax(0)
        return dataclasses.replace(outs[0], logits=torch.logit(prob.clamp(_EPS, 1 - _EPS)), anomaly=anomaly)
