"""Matrix products whose bits do not depend on the machine.

``a @ b`` goes to BLAS, and OpenBLAS picks a kernel per CPU that sums each
dot product in an order of its own: the same float32 inputs gave different
last bits on Intel AVX-512, AVX2 and older CPUs, enough to flip a rounded
pixel of the default dataset and with it a content hash (the golden build
differed between CI machines). Where output bits must be the same on every
machine (a Ray cluster mixes CPUs), products are summed here term by term in
index order: each step is an elementwise IEEE multiply and add, which every
CPU rounds alike.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ordered_matmul"]


# Products held at once: bounds the memory of a large product (a batch of
# thumbnails) while a small one is still two numpy calls.
_TERMS_ELEMENTS = 1 << 17


def ordered_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D arrays (m, k) and (k, n), with each output element
    summed over k in index order, in the arrays' common dtype.

    Terms whose column of ``a`` or row of ``b`` is all zeros are left out:
    adding a zero product leaves every sum's bits as they are, and masks and
    blur kernels are mostly zeros."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"ordered_matmul: shapes {a.shape} and {b.shape} do not chain")
    dtype = np.result_type(a, b)
    out = np.zeros((a.shape[0], b.shape[1]), dtype=dtype)
    used = np.flatnonzero(a.any(axis=0) & b.any(axis=1))
    step = max(1, _TERMS_ELEMENTS // max(out.size, 1))
    for start in range(0, len(used), step):
        chosen = used[start : start + step]
        terms = np.multiply(a.T[chosen, :, None], b[chosen, None, :], dtype=dtype)
        # One elementwise add per term, in order (np.add.reduce sums pairwise
        # where the terms lie along its innermost axis; np.add.accumulate on
        # the first axis is 20x slower): an elementwise add rounds alike on
        # every CPU, whatever its vector width.
        for plane in terms:
            out += plane
    return out
