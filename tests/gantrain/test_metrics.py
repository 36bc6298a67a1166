from __future__ import annotations

import numpy as np
import pytest

from gantrain.metrics import (
    class_histogram,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)


def test_frechet_distance_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(20000, 4))
    b = rng.normal(1.0, 2.0, size=(20000, 4))
    # ||mu||^2 + tr(I + 4I - 2*2I) = 4 + 4 * (1 + 4 - 4)
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_of_singular_covariances_is_finite():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(10, 32))
    assert np.isfinite(frechet_distance(a, a[::-1] + 0.1))


def test_kid_near_zero_for_the_same_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    kid, std = kernel_inception_distance(a, b, subsets=10, subset_size=200)
    assert abs(kid) < 0.05
    far, _ = kernel_inception_distance(a, b + 3, subsets=10, subset_size=200)
    assert far > 1.0


def test_precision_recall():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(400, 2))
    p, r = precision_recall(real, rng.normal(size=(400, 2)))
    assert p > 0.8 and r > 0.8
    # Collapsed samples: precise but no recall.
    p, r = precision_recall(real, np.zeros((400, 2)) + rng.normal(scale=0.01, size=(400, 2)))
    assert p > 0.9 and r < 0.2


def test_class_histogram():
    assert class_histogram(np.array([0, 2, 2]), 4) == [1, 0, 2, 0]
