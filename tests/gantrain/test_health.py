from __future__ import annotations

import math

import pytest
import torch

from gantrain.health import (
    CollapseMonitor,
    all_finite,
    normalized_entropy,
    pairwise_diversity,
)


def test_all_finite():
    assert all_finite([torch.ones(3), torch.zeros(2)])
    assert not all_finite([torch.ones(3), torch.tensor([1.0, math.nan])])
    assert not all_finite([torch.tensor([math.inf])])


def test_diversity_and_entropy():
    assert pairwise_diversity(torch.ones(8, 3, 4, 4)) == 0.0
    assert pairwise_diversity(torch.randn(8, 3, 4, 4)) > 1.0
    assert normalized_entropy([10, 10, 10]) == pytest.approx(1.0)
    assert normalized_entropy([30, 0, 0]) == 0.0


def test_d_loss_alarm_fires_once_after_patience():
    m = CollapseMonitor(d_loss_threshold=0.05, windows=3)
    alarms = [m.observe_d_loss(step, 0.01, 10) for step in range(5)]
    assert [a is not None for a in alarms] == [False, False, True, False, False]
    assert "D wins" in alarms[2].message
    assert m.observe_d_loss(6, 1.0, 10) is None  # recovers
    state = m.state_dict()
    other = CollapseMonitor(0.05, 3)
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_diversity_and_class_alarms():
    m = CollapseMonitor(0.05, 3)
    assert m.observe_diversity(1, 0.9, 1.0) is None
    assert m.observe_diversity(2, 0.1, 1.0).kind == "low_diversity"
    assert m.observe_class_entropy(3, 0.2, 0.99).kind == "class_collapse"
    assert m.observe_class_entropy(4, 0.95, 0.99) is None
