"""Augmentation of oversampled copies (albumentations).

Runs in the write workers, called by gandata.write.shards for augmented copies:
``augment_copy(pixels, spec, seed)`` is a top-level function, so it pickles
into worker processes. ``spec`` names the transforms (``"hflip,affine,color"``)
and is what samples.parquet records in ``augmentation`` together with the
seed; the seed alone decides the random parameters, so a copy is reproduced
byte for byte by the same build seed with the same albumentations and OpenCV
(``library_versions``, recorded in the manifest).

A copy must never equal its original (the point of augmenting is to not feed
the GAN the same bytes twice): when a draw happens to be the identity (no flip,
a sub-pixel shift rounded away, ...), the next seed in a fixed sequence is
tried, and as a last resort the image is shifted by one pixel.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from gandata.errors import ConfigError

# Tries before the deterministic one-pixel-shift fallback.
MAX_DRAWS = 8


def check_spec(spec: str) -> None:
    """Fail early, in the parent process, when albumentations is missing or
    a transform name is unknown (not in every write worker)."""
    _transforms(spec)


@lru_cache(maxsize=8)
def _transforms(spec: str) -> tuple[Any, ...]:
    try:
        import albumentations as A
        import cv2
    except ImportError:
        raise ConfigError(
            "--balance oversample: augmenting copies needs albumentations (pip install 'gandata[balance]'), "
            "or pass --no-augment"
        ) from None
    made: list[Any] = []
    for name in spec.split(","):
        if name == "hflip":
            made.append(A.HorizontalFlip(p=0.5))
        elif name == "affine":
            # Small shift/scale/rotate; reflected borders, so no black wedges
            # appear that the GAN would learn as part of the class.
            made.append(A.Affine(translate_percent=(-0.06, 0.06), scale=(0.92, 1.08), rotate=(-10, 10),
                                 border_mode=cv2.BORDER_REFLECT_101, p=0.9))
        elif name == "color":
            made.append(A.ColorJitter(brightness=(0.92, 1.08), contrast=(0.92, 1.08), saturation=(0.92, 1.08),
                                      hue=(-0.02, 0.02), p=0.8))
        elif name:
            raise ConfigError(f"balance.augmentations: unknown augmentation {name!r}")
    return tuple(made)


def library_versions() -> dict[str, str]:
    """The versions of the libraries that draw a copy's pixels. The same seed
    gives the same copy only with the same versions (OpenCV 4.14 and 5.0
    draw different affine copies), so a build records them in its manifest."""
    import albumentations
    import cv2

    return {"albumentations": str(albumentations.__version__), "opencv": str(cv2.__version__)}


def _apply(pixels: np.ndarray, spec: str, seed: int) -> np.ndarray:
    import albumentations as A

    pipeline = A.Compose(list(_transforms(spec)), seed=seed)
    image = pixels if pixels.shape[2] == 3 else pixels[:, :, 0]
    if pixels.shape[2] == 1 and "color" in spec:
        # ColorJitter wants RGB; a grayscale image is jittered as gray RGB.
        image = np.repeat(pixels, 3, axis=2)
    out = pipeline(image=np.ascontiguousarray(image))["image"]
    if out.ndim == 2:
        out = out[:, :, None]
    if pixels.shape[2] == 1 and out.shape[2] == 3:
        out = out[:, :, :1]
    return np.ascontiguousarray(out, dtype=np.uint8)


def augment_copy(pixels: np.ndarray, spec: str, seed: int) -> np.ndarray:
    """An augmented copy of ``pixels`` (HWC uint8) that differs from it.
    ``spec`` is the recorded form ``"hflip,affine,color@seed=N"`` or just the
    transform names; the random draw comes from ``seed``."""
    spec = spec.split("@", 1)[0]
    for attempt in range(MAX_DRAWS):
        out = _apply(pixels, spec, (seed + attempt * 1_000_003) % (2**32))
        if out.shape == pixels.shape and not np.array_equal(out, pixels):
            return out
    # A flat image survives every transform unchanged; nudge one value so
    # the copy is still distinguishable (its record says it is a copy).
    out = np.roll(pixels, 1, axis=1).copy()
    if np.array_equal(out, pixels):
        out[0, 0, 0] = np.uint8(int(out[0, 0, 0]) ^ 1)
    return out
