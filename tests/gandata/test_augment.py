"""Augmented copies: seeded, never identical to their original."""

from __future__ import annotations

import numpy as np
import pytest

from gandata.image.augment import augment_copy


def _image(seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 16, channels), dtype=np.uint8)


@pytest.mark.parametrize("spec", ["hflip,affine,color@seed=7", "hflip", "affine", "color"])
def test_copy_is_seeded_and_differs_from_its_original(spec: str) -> None:
    img = _image()
    outs = [augment_copy(img, spec, s) for s in range(6)]
    for out in outs:
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
    assert np.array_equal(augment_copy(img, spec, 3), outs[3])


def test_identity_draws_are_redrawn_and_flat_images_still_change() -> None:
    # A horizontally symmetric image is unchanged by a flip: the next draw is tried.
    half = _image(1)[:, :8]
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)
    assert not np.array_equal(augment_copy(symmetric, "hflip", 0), symmetric)
    flat = np.full((16, 16, 3), 128, np.uint8)
    out = augment_copy(flat, "hflip,affine", 0)
    assert not np.array_equal(out, flat)


def test_grayscale_images_keep_one_channel() -> None:
    img = _image(2, channels=1)
    out = augment_copy(img, "hflip,affine,color", 5)
    assert out.shape == (16, 16, 1) and not np.array_equal(out, img)
