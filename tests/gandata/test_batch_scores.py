"""The batched scores computed at ingest equal the per-image definition."""

from __future__ import annotations

import numpy as np
import pytest

from gandata.clean.scores import batch_image_scores, channel_moments, image_scores, luma
from tests.common.imports import imports_module


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
    sums, squares = channel_moments(images)
    flat = images.reshape(shape[0], shape[1] * shape[2], shape[3])
    assert np.array_equal(sums, flat.sum(axis=1, dtype=np.uint64).astype(np.float64))
    assert np.array_equal(squares, np.square(flat, dtype=np.uint64).sum(axis=1, dtype=np.uint64).astype(np.float64))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [64, 5, 200])
def test_batch_percentiles_are_exactly_the_partitioned_ranks(channels: int, size: int) -> None:
    # p01/p99 come from the luma histogram's bin and a sort of that bin only;
    # they must be the very values np.partition picks, for busy images, flat
    # ones (one crowded bin), two-tone ones and smooth ramps alike.
    rng = np.random.default_rng(size * channels)
    noisy = rng.integers(0, 256, (5, size, size, channels))
    flat = np.full((2, size, size, channels), 77)
    two_tone = np.where(rng.random((2, size, size, 1)) < 0.5, 10, 240).repeat(channels, axis=3)
    ramp = np.broadcast_to(np.linspace(0, 255, size)[None, None, :, None], (2, size, size, channels)).copy()
    ramp[1] = ramp[1] // 37 * 37  # a few levels, each many values wide
    images = np.concatenate([noisy, flat, two_tone, ramp]).astype(np.uint8)
    scores, _, _ = batch_image_scores(images, np.ones(len(images)))
    gray = luma(images).reshape(len(images), -1)
    k01, k99 = int(0.01 * (gray.shape[1] - 1)), int(round(0.99 * (gray.shape[1] - 1)))
    expected = np.partition(gray, (k01, k99), axis=1)
    assert np.array_equal(scores["p01"], expected[:, k01].astype(np.float64))
    assert np.array_equal(scores["p99"], expected[:, k99].astype(np.float64))


def test_channel_std_is_the_exact_population_std_of_each_channel() -> None:
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    images[1, ..., 2] = images[1, ..., 2] // 2  # channels of different spread
    images[2] = 200  # none at all
    scores, _, _ = batch_image_scores(images, np.ones(len(images)))
    channel_std = images.reshape(6, -1, 3).astype(np.float64).std(axis=1).max(axis=1)
    luma_std = luma(images).reshape(6, -1).std(axis=1).astype(np.float64)
    assert np.allclose(scores["std"], np.maximum(channel_std, luma_std), rtol=1e-12, atol=1e-9)
    assert scores["std"][2] == 0.0


def test_phash_threshold_is_the_median_of_the_low_band() -> None:
    """The low DCT band is thresholded at np.median of its 63 AC terms
    (ties included), computed without np.median itself."""
    from gandata.clean.phash import _dct_matrix, _phash_bits

    rng = np.random.default_rng(3)
    small = np.concatenate([rng.normal(size=(20, 32, 32)), np.round(rng.normal(size=(20, 32, 32)) * 2)]) * 50
    d = _dct_matrix(32)[:8]
    low = (d @ small @ d.T).reshape(len(small), 64)
    assert np.array_equal(_phash_bits(small), low > np.median(low[:, 1:], axis=1)[:, None])


def test_hashing_a_batch_imports_no_masked_arrays() -> None:
    """np.median imports numpy.ma (about 16 ms) on its first call: every
    freshly spawned ingest worker paid it on its first partition."""
    code = (
        "import numpy as np\n"
        "from gandata.clean.phash import phash_batch\n"
        "phash_batch(np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8))\n"
    )
    assert not imports_module(code, "numpy.ma")
