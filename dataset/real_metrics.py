"""Engine collectors for real data (ERA5-Land, CERRA): per-class drought metrics and the prediction file.

``DroughtClassCollector`` (name ``drought_classes``): confusion counts of ``sigmoid(logits) >=
threshold`` against ``mask_extreme`` on the valid pixels (``mask_valid``), micro over the split,
reported per class — ``drought`` (positive = drought) and ``no_drought`` (positive = no drought) —
with precision, recall, F1, IoU and their ``mean`` over the two classes, plus OA.

``DroughtPredictionWriter`` (``drivers_<split>.nc`` on the data's own grid and week labels) lives
in ``utils.predictions``, the one writer of prediction files; it is re-exported here.
"""

from __future__ import annotations

from typing import Any

import torch

from utils.collectors import Collector
from utils.metrics import ExtremeMetrics, scores_from_counts
from utils.predictions import DroughtPredictionWriter

__all__ = ["DroughtClassCollector", "DroughtPredictionWriter", "class_scores"]

KEYS = ("precision", "recall", "f1", "iou")


def class_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, Any]:
    """Per-class (drought / no drought) precision, recall, F1, IoU, their means, OA and the counts."""
    drought = scores_from_counts(tp, fp, fn, tn)
    no_drought = scores_from_counts(tn, fn, fp, tp)  # the other class as positive
    return {
        "drought": {k: drought[k] for k in KEYS},
        "no_drought": {k: no_drought[k] for k in KEYS},
        "mean": {k: 0.5 * (drought[k] + no_drought[k]) for k in KEYS},
        "oa": drought["oa"],
        "counts": {k: drought[k] for k in ("tp", "fp", "fn", "tn")},
    }


class DroughtClassCollector(Collector):
    """Drought / no-drought metrics on valid pixels (engine collector protocol)."""

    name = "drought_classes"

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)
        self.metrics = ExtremeMetrics(threshold)

    def update(self, batch: dict, out: Any) -> None:
        if getattr(out, "logits", None) is None:
            return
        probs = torch.sigmoid(out.logits.detach().float())[:, 0]
        self.metrics.update(probs, batch["mask_extreme"], batch.get("mask_valid"))

    def all_reduce(self) -> None:
        self.metrics.all_reduce()

    def result(self) -> dict[str, Any]:
        return {"threshold": self.threshold, **class_scores(*self.metrics.counts.tolist())}
