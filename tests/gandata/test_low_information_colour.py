"""low_information judges colour too (issue 17, item 14): a pattern of two
colours of equal brightness has no luma spread but is not blank."""

from __future__ import annotations

import numpy as np

from gandata.clean.scores import batch_image_scores, image_scores, luma


def _checker(size: int = 32) -> np.ndarray:
    """Red and green squares of (nearly) equal luma."""
    img = np.zeros((size, size, 3), np.uint8)
    mask = (np.add.outer(np.arange(size) // 4, np.arange(size) // 4) % 2).astype(bool)
    img[mask] = (200, 0, 0)
    img[~mask] = (0, 102, 0)
    return img


def test_a_colourful_checker_of_flat_brightness_is_not_low_information() -> None:
    img = _checker()
    assert float(luma(img[None]).std()) < 3  # what the luma-only check saw
    single = image_scores(img)[0]["std"]
    batch = batch_image_scores(np.stack([img, np.full_like(img, 90)]), np.ones(2))[0]["std"]
    assert single > 50 and batch[0] == single
    assert batch[1] == 0.0  # a flat image stays blank
