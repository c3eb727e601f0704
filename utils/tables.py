"""The paper-style results table of a synthetic test run, one definition for every output.

Rows: the Naive reference (when the metrics have one), then the method; columns: driver F1,
IoU and OA and extreme F1, in %. ``test_synthetic.py`` prints it as Markdown and
``vis.report`` renders it as HTML from the same rows, so the two never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PAPER_COLUMNS = ("driver F1", "driver IoU", "driver OA", "extreme F1")


def method_label(config: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> str:
    """The registered method's label, with the encoder for IDE ('IDE (Swin_3D)'); the name if unknown.

    An ensemble's size is counted from the members the test used (``metrics["ensemble"]``), so an
    ensemble of ``--ensemble_starts`` is named too; without metrics, from ``--ensemble``."""
    from models.methods import METHODS

    method = str(config.get("method") or "ide")
    label = METHODS.get(method).label if method in METHODS else method
    if method == "ide" and config.get("encoder"):
        label = f"{label} ({config['encoder']})"
    if metrics is not None:
        members = len(metrics.get("ensemble") or [])  # recorded by a test of more than one member
    else:
        members = len(config.get("ensemble") or []) + 1
    if members > 1:
        label += f", ensemble of {members}"
    return label


def _pooled(block: Any) -> Mapping[str, Any]:
    if not isinstance(block, Mapping):
        return {}
    return block.get("pooled", block)


def paper_rows(metrics: Mapping[str, Any], method: str) -> list[tuple[str, list[float | None]]]:
    """[(row label, [driver F1, driver IoU, driver OA, extreme F1])] as fractions (None: not defined).

    The Naive reference flags every week of a window that ends in a true extreme, so it has no
    extreme prediction of its own: its extreme F1 is None.
    """
    rows: list[tuple[str, list[float | None]]] = []
    if "naive" in metrics:
        d = _pooled(metrics["naive"])
        rows.append(("Naive", [d.get("f1"), d.get("iou"), d.get("oa"), None]))
    d = _pooled(metrics.get("drivers", {}))
    ext = metrics.get("extremes") or {}
    rows.append((method, [d.get("f1"), d.get("iou"), d.get("oa"), ext.get("f1")]))
    return rows


def percent(v: Any) -> str:
    """A fraction as '12.34' (%), '-' when missing or not finite."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return f"{100 * v:.2f}"
    return "-"


def paper_markdown(metrics: Mapping[str, Any], method: str) -> str:
    """``paper_rows`` as a Markdown table (values in %)."""
    header = ["method", *PAPER_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for label, values in paper_rows(metrics, method):
        lines.append("| " + " | ".join([label, *map(percent, values)]) + " |")
    return "\n".join(lines)
