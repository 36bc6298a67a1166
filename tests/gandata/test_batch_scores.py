"""The batched scores computed at ingest equal the per-image definition."""

from __future__ import annotations

import numpy as np
import pytest

from gandata.clean.scores import batch_image_scores, image_scores
from gandata.ingest.partition import _pixel_sums


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [64, 48, 128], ids=["64px", "48px-per-image-thumbnails", "128px"])
def test_batch_scores_match_per_image_scores(channels: int, size: int) -> None:
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.repeat(rng.integers(0, 255, (6, 8, 8, channels)), size // 8, axis=1), size // 8, axis=2)
    noisy = rng.integers(0, 255, (4, size, size, channels))
    flat = np.full((2, size, size, channels), 128)
    images = np.concatenate([smooth, noisy, flat]).astype(np.uint8)
    upscales = np.ones(len(images))
    upscales[1] = 2.0  # the per-image blur path at the original resolution
    scores, hashes, thumbs = batch_image_scores(images, upscales)
    for i, image in enumerate(images):
        one, phash, thumb = image_scores(image, float(upscales[i]))
        assert set(one) == set(scores)
        for name, value in one.items():
            assert np.isclose(scores[name][i], value, rtol=1e-4, atol=1e-4) or (np.isinf(value) and np.isinf(scores[name][i])), (i, name)
        assert hashes[i] == phash and thumbs[i] == thumb


@pytest.mark.parametrize("shape", [(94, 64, 64, 3), (3, 17, 9, 1), (0, 8, 8, 3), (2, 1500, 1500, 3)])
def test_pixel_sums_are_exact(shape: tuple[int, int, int, int]) -> None:
    # float64 sums of integers stay exact (and chunking, for large images, changes nothing).
    rng = np.random.default_rng(sum(shape))
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    if len(images):
        images[0] = 255  # the largest sums
    sums, squares = _pixel_sums(images)
    flat = images.reshape(shape[0], shape[1] * shape[2], shape[3])
    assert np.array_equal(sums, flat.sum(axis=1, dtype=np.uint64).astype(np.float64))
    assert np.array_equal(squares, np.square(flat, dtype=np.uint64).sum(axis=1, dtype=np.uint64).astype(np.float64))
