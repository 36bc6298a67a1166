"""ordered_matmul: a @ b summed term by term in index order."""

from __future__ import annotations

import numpy as np
import pytest

from gandata.util.ordered_product import ordered_matmul


def _index_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = np.result_type(a, b)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=dtype)
    for i in range(a.shape[0]):
        for k in range(b.shape[1]):
            total = dtype.type(0)
            for j in range(a.shape[1]):
                total = dtype.type(total + dtype.type(a[i, j]) * dtype.type(b[j, k]))
            out[i, k] = total
    return out


@pytest.mark.parametrize("shape", [(7, 13, 5), (1, 40, 1), (1, 40, 9), (9, 40, 1), (3, 1, 4), (12, 33, 12)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_bits_as_a_sum_in_index_order(shape: tuple[int, int, int], dtype: type) -> None:
    m, k, n = shape
    rng = np.random.default_rng(k)
    # Mixed magnitudes and signs, so a different summation order shows in the last bits.
    a = (rng.standard_normal((m, k)) * 10.0 ** rng.integers(-3, 4, (m, k))).astype(dtype)
    b = (rng.standard_normal((k, n)) * 10.0 ** rng.integers(-3, 4, (k, n))).astype(dtype)
    a[:, k // 2] = 0  # a zero column is left out; its zero products would not change a bit
    got = ordered_matmul(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    assert np.array_equal(got, _index_order(a, b))
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-3)


def test_all_zero_and_mismatched_inputs() -> None:
    assert np.array_equal(ordered_matmul(np.zeros((2, 3), np.float32), np.ones((3, 4), np.float32)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="do not chain"):
        ordered_matmul(np.zeros((2, 3)), np.zeros((4, 2)))
