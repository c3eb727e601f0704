"""Metrics against hand-computed cases (docs/reference/metrics.md definitions)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from utils.metrics import DriverVotes, ExtremeMetrics, driver_scores, naive_drivers, scores_from_counts


def test_extreme_micro_counts_over_updates():
    em = ExtremeMetrics(threshold=0.5)
    # pred [[1, 0], [1, 0]] (0.5 counts as positive) vs true [[1, 1], [0, 0]]: tp fn / fp tn
    em.update(torch.tensor([[[0.6, 0.4], [0.5, 0.1]]]), torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]))
    s = em.compute()
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5
    assert s["iou"] == pytest.approx(1 / 3) and s["oa"] == 0.5
    # a second batch adds counts (micro, not a mean of per-batch scores)
    em.update(torch.tensor([[[0.9, 0.9], [0.9, 0.9]]]), torch.tensor([[[1.0, 1.0], [1.0, 1.0]]]))
    s = em.compute()
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (5, 1, 1, 1)
    assert s["precision"] == pytest.approx(5 / 6) and s["f1"] == pytest.approx(10 / 12)
    assert s["oa"] == pytest.approx(6 / 8)


def test_extreme_valid_mask_and_zero_division():
    em = ExtremeMetrics(0.5)
    probs = torch.tensor([[[0.6, 0.4], [0.5, 0.1]]])
    target = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    em.update(probs, target, valid=torch.tensor([[[1.0, 1.0], [0.0, 1.0]]]))  # drop the false positive
    s = em.compute()
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (1, 0, 1, 1)
    assert s["precision"] == 1.0 and s["recall"] == 0.5
    assert s["f1"] == pytest.approx(2 / 3) and s["iou"] == 0.5 and s["oa"] == pytest.approx(2 / 3)
    # nothing true, nothing predicted: 0/0 -> 0, OA still 1
    empty = scores_from_counts(0, 0, 0, 10)
    assert empty["precision"] == empty["recall"] == empty["f1"] == empty["iou"] == 0.0 and empty["oa"] == 1.0
    with pytest.raises(ValueError):
        em.update(probs, target[:, :1])


def _flags(weeks_newest_first: list[int]) -> torch.Tensor:
    """[1, 1, T, 1, 1] flags of one sample, one variable, one pixel."""
    return torch.tensor(weeks_newest_first, dtype=torch.uint8).view(1, 1, -1, 1, 1)


def test_driver_votes_order_ties_edges_and_uncovered():
    # split weeks 1..6, T=2, windows end at 2, 3, 4 -> cover [1,2], [2,3], [3,4]; weeks 5, 6 uncovered
    dv = DriverVotes(1, 1, 6, 1, 1, delta_t=2)
    dv.update(_flags([1, 0]), [2])  # newest-first: week 2 flagged, week 1 not
    dv.update(_flags([0, 0]), [3])
    dv.update(_flags([1, 1]), [4])  # weeks 4 and 3
    assert dv.coverage.tolist() == [1, 2, 2, 1, 0, 0]
    assert dv.votes[0, :, 0, 0].tolist() == [0, 1, 1, 1, 0, 0]
    # week 1: 0/1 -> 0; week 2: 1/2 tie -> 1; week 3: 1/2 tie -> 1; week 4: 1/1 (split edge) -> 1
    assert dv.assembled()[0, :, 0, 0].tolist() == [0, 1, 1, 1, 0, 0]
    assert dv.assembled().dtype == np.uint8 and dv.votes.dtype == torch.uint8


def test_driver_votes_majority_of_three_overlapping_windows():
    # T=3, windows end at 3, 4, 5 over weeks 1..5: week 3 is covered by all three
    dv = DriverVotes(1, 1, 5, 1, 1, delta_t=3)
    dv.update(_flags([1, 0, 0]), [3])  # week 3 yes
    dv.update(_flags([1, 1, 0]), [4])  # week 4 yes, week 3 yes
    dv.update(_flags([1, 0, 0]), [5])  # week 5 yes, week 4 no, week 3 no
    dv2 = DriverVotes(1, 1, 5, 1, 1, delta_t=3)
    dv2.update(torch.cat([_flags([1, 0, 0]), _flags([0, 0, 0]), _flags([0, 0, 0])]), torch.tensor([3, 4, 5]))
    assert dv.coverage.tolist() == [1, 2, 3, 2, 1]
    assert dv.assembled()[0, :, 0, 0].tolist() == [0, 0, 1, 1, 1]  # week 3: 2/3; week 4: 1/2 tie
    assert dv2.assembled()[0, :, 0, 0].tolist() == [0, 0, 0, 0, 0]  # week 3: 1/3 < 0.5


def test_driver_votes_windows_outside_split_are_clipped_and_shape_checked():
    dv = DriverVotes(2, 10, 12, 1, 1, delta_t=4)
    dv.update(torch.ones(1, 2, 4, 1, 1), [11])  # covers 8..11: weeks 8, 9 fall before the split
    assert dv.coverage.tolist() == [1, 1, 0]
    with pytest.raises(ValueError):
        dv.update(torch.ones(1, 3, 4, 1, 1), [11])


def test_driver_scores_pooled_and_variable_without_drivers():
    truth = np.zeros((2, 2, 1, 2), dtype=np.uint8)
    pred = np.zeros_like(truth)
    truth[0, 0, 0, :] = 1  # var a: 2 true drivers
    pred[0, 0, 0, 0] = 1  # tp 1, fn 1
    pred[0, 1, 0, 0] = 1  # fp 1
    pred[1, 1, 0, :] = 1  # var b never drives: 2 false positives out of 4 negatives
    out = driver_scores(pred, truth, ["a", "b"])
    pooled, a, b = out["pooled"], out["per_variable"]["a"], out["per_variable"]["b"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (1, 3, 1, 3)
    assert pooled["precision"] == 0.25 and pooled["recall"] == 0.5
    assert pooled["f1"] == pytest.approx(2 / 6) and pooled["iou"] == 0.2 and pooled["oa"] == 0.5
    assert a["precision"] == 0.5 and a["recall"] == 0.5 and a["f1"] == 0.5 and a["fpr"] == 0.5
    assert b["f1"] is None and b["precision"] is None and b["recall"] is None and b["iou"] is None
    assert b["fpr"] == 0.5 and b["n_true"] == 0 and b["n_pred"] == 2
    # the pooled IoU equals F1 / (2 - F1) (the paper's table relation)
    assert pooled["iou"] == pytest.approx(pooled["f1"] / (2 - pooled["f1"]))
    # a valid-pixel mask (a datacube's --mask) leaves pixel 1 out of every count
    out = driver_scores(pred, truth, ["a", "b"], valid=np.array([[1.0, 0.0]]))
    pooled, a, b = out["pooled"], out["per_variable"]["a"], out["per_variable"]["b"]
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (1, 2, 0, 1)
    assert pooled["recall"] == 1.0 and pooled["oa"] == 0.5
    assert (a["tp"], a["fp"], a["fn"], a["tn"], a["fpr"]) == (1, 1, 0, 0, 1.0)
    assert b["n_pred"] == 1 and b["fpr"] == 0.5
    with pytest.raises(ValueError, match=r"valid-pixel mask \(2,\) does not match"):
        driver_scores(pred, truth, ["a", "b"], valid=np.ones(2))


def test_naive_drivers_same_vote():
    ext = np.zeros((4, 1, 2), dtype=np.uint8)
    ext[2, 0, 0] = 1  # class-1 extreme at split week index 2, pixel 0
    ext[0, 0, 1] = 2  # halo classes do not count
    # windows (T=2) end at 1, 2, 3: [0,1] no extreme; [1,2] and [2,3] have one
    out = naive_drivers(ext, delta_t=2)
    assert out.dtype == np.uint8
    assert out[:, 0, 0].tolist() == [0, 1, 1, 1]  # week 1: 1 of 2 windows (tie) -> 1
    assert out[:, 0, 1].tolist() == [0, 0, 0, 0]
