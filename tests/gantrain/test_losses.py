from __future__ import annotations

import torch
from torch import nn

from gantrain.losses import (
    bce_d_loss,
    bce_g_loss,
    d_output_summary,
    get_losses,
    hinge_d_loss,
    hinge_g_loss,
)


def test_bce_matches_sigmoid_plus_bceloss():
    real, fake = torch.randn(64), torch.randn(64)
    bce = nn.BCELoss()
    expected_d = bce(torch.sigmoid(real), torch.ones(64)) + bce(torch.sigmoid(fake), torch.zeros(64))
    assert torch.allclose(bce_d_loss(real, fake), expected_d, atol=1e-5)
    assert torch.allclose(bce_g_loss(fake), bce(torch.sigmoid(fake), torch.ones(64)), atol=1e-5)


def test_bce_is_finite_for_extreme_logits():
    big = torch.tensor([200.0, -200.0])
    assert torch.isfinite(bce_d_loss(big, big))
    assert torch.isfinite(bce_g_loss(big))


def test_bce_in_bf16_is_computed_in_float32():
    logits = torch.randn(8, dtype=torch.bfloat16)
    assert bce_d_loss(logits, logits).dtype == torch.float32


def test_hinge_values():
    real = torch.tensor([2.0, 0.0])
    fake = torch.tensor([-2.0, 0.5])
    assert hinge_d_loss(real, fake).item() == 0.5 + 0.75
    assert hinge_g_loss(fake).item() == 0.75


def test_registry_and_summary():
    assert get_losses("hinge") == (hinge_d_loss, hinge_g_loss)
    logits = torch.zeros(4)
    assert d_output_summary(logits, "bce").item() == 0.5
    assert d_output_summary(logits + 3, "hinge").item() == 3.0
