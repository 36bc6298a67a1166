from __future__ import annotations

import pytest
import torch

from gantrain.augment import cutout, diff_augment, translation


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("policies", [("color",), ("translation",), ("cutout",), ("color", "translation", "cutout")])
def test_shape_determinism_and_gradient(policies):
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    a = diff_augment(x, policies, _gen())
    b = diff_augment(x, policies, _gen())
    assert a.shape == x.shape
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_content_and_fills_zeros():
    x = torch.ones(8, 1, 16, 16)
    out = translation(x, _gen(1))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert (out == 0).any()


def test_cutout_zeroes_a_square():
    x = torch.ones(2, 3, 16, 16)
    out = cutout(x, _gen(2))
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros > 0).all() and (zeros <= 64).all()
