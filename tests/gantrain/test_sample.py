from __future__ import annotations

import numpy as np
import pytest
import torch

from gantrain.errors import ConfigError, RunError
from gantrain.sample import grid_layout, load_generator
from gantrain.train import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def conditional_run(tiny_dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("cond") / "run"
    torch.set_num_threads(1)
    train(tiny_config(tiny_dataset, run, conditional=True, ema=True, steps=2))
    return run


def test_load_and_generate(conditional_run):
    g = load_generator(conditional_run)
    assert g.ema and g.step == 2 and g.conditional
    assert g.classes == ("a", "b", "c")
    assert not g.module.training
    images, labels = g.generate_uint8(6, labels=g.class_index("b"), seed=1)
    assert images.shape == (6, 3, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [1] * 6
    again, _ = g.generate_uint8(6, labels=1, seed=1)
    assert np.array_equal(images, again)
    balanced, labels = g.generate_uint8(6)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_samples_do_not_depend_on_the_batch(conditional_run):
    # Eval mode: BatchNorm uses running statistics, so an image does not
    # depend on which other images share its batch.
    g = load_generator(conditional_run, ema=False)
    z = torch.randn(4, g.config.nz)
    y = torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        assert torch.allclose(g.module(z, y)[:2], g.module(z[:2], y[:2]), atol=1e-6)


def test_errors_name_the_option(conditional_run, tiny_dataset, tmp_path):
    g = load_generator(conditional_run, checkpoint="last", ema=False)
    with pytest.raises(ConfigError, match="--class: 'zebra' is not a class.*a, b, c"):
        g.class_index("zebra")
    with pytest.raises(ConfigError, match="labels"):
        g.generate_uint8(2, labels=[0, 7])
    plain = tmp_path / "plain"
    train(tiny_config(tiny_dataset, plain, steps=1))
    with pytest.raises(RunError, match="--ema"):
        load_generator(plain, ema=True)
    with pytest.raises(ConfigError, match="unconditional"):
        load_generator(plain).class_index("a")


def test_grid_layout():
    labels, cols = grid_layout(3, True)
    assert cols == 8 and labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    labels, cols = grid_layout(100, True)
    assert len(labels) == 16 * 8
    assert grid_layout(0, False) == (None, 8)
