"""spatial_anomaly 'auto': the grid-shared share of the training inputs, and the choice it makes."""

from __future__ import annotations

import pytest
import torch

from config import Config
from dataset.grid_signal import grid_shared_share, resolve_spatial_anomaly
from models import build_model


class _Items(list):
    """A list of sample dicts is all the measurement needs (len and integer indexing)."""


def _sample(values_a, values_b):
    # x [V=2, C=1, T=1, H=1, W=4]
    return {"x": torch.tensor([values_a, values_b], dtype=torch.float32).view(2, 1, 1, 1, 4)}


def test_grid_shared_share_hand_computed():
    # variable a: sample 0 all +1, sample 1 all -1 -> everything is shared by the grid (share 1)
    # variable b: +1 -1 +1 -1 in both samples -> grid mean 0 every time (share 0)
    data = _Items([_sample([1, 1, 1, 1], [1, -1, 1, -1]), _sample([-1, -1, -1, -1], [1, -1, 1, -1])])
    share = grid_shared_share(data)
    assert share.tolist() == pytest.approx([1.0, 0.0])


def test_auto_chooses_by_median_share_and_keeps_the_random_stream():
    shared = _Items([_sample([s] * 4, [s + 0.1, s - 0.1, s, s]) for s in (1.0, -2.0, 3.0)])
    local = _Items([_sample([1, -1, 1, -1], [2, -2, 0, 0]) for _ in range(3)])
    cfg = Config(variables=["a", "b"], in_channels_dynamic=2, spatial_anomaly="auto")
    torch.manual_seed(5)
    state = torch.get_rng_state()
    lines: list[str] = []
    assert resolve_spatial_anomaly(cfg, shared, log=lines.append).spatial_anomaly == "always"
    assert resolve_spatial_anomaly(cfg, local, log=lines.append).spatial_anomaly == "none"
    assert torch.equal(state, torch.get_rng_state())
    assert "auto -> always" in lines[0] and "a 100.0 %" in lines[0]
    fixed = Config(variables=["a", "b"], in_channels_dynamic=2, spatial_anomaly="none")
    assert resolve_spatial_anomaly(fixed, shared) is fixed  # only 'auto' is measured


def test_unresolved_auto_at_model_build_is_a_clear_error():
    cfg = Config(variables=["a", "b"], in_channels_dynamic=2, spatial_anomaly="auto")
    with pytest.raises(ValueError, match="spatial_anomaly.*'auto'.*pass 'always' or 'none'"):
        build_model(cfg)
    with pytest.raises(ValueError, match="spatial_anomaly.*no samples"):
        grid_shared_share(_Items())
