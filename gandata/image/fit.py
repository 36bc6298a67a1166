"""Fit one decoded image to the square training size.

``prepare_image`` is the single per-sample entry point of the pipeline: it
decodes (``gandata.image.decode``) and fits the result to ``size_px x size_px`` with
one of three resize modes:

* ``crop`` (default): scale so the shorter side equals the size, centre crop;
* ``pad``: scale so the longer side equals the size, letterbox on ``fill``;
* ``stretch``: scale both axes independently.

Downscaling is antialiased (Lanczos with ``reducing_gap``); upscaling uses
bicubic. When no scaling is needed the pixels pass through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from gandata.config import ImageConfig
from gandata.image.decode import (
    Box,
    ImageRejected,
    convert_to_target,
    decode_upright_jpeg,
    decode_with_box,
    image_from_array,
    luma,
)

__all__ = ["NATIVE_TILE_PX", "PreparedImage", "fit_to_square", "prepare_image"]

# reducing_gap=3.0 lets Pillow box-reduce by an integer factor first and run
# Lanczos only over the last <= 3x; visually identical, several times faster.
_REDUCING_GAP = 3.0
# Float noise in size ratios must not turn an exact 4.0x into a rejection.
_UPSCALE_EPSILON = 1e-9
# Side of the native-resolution luma tile kept per image: enough frequency
# bins for a stable spectrum, small enough to cost well under a millisecond.
NATIVE_TILE_PX = 64


@dataclass(frozen=True)
class PreparedImage:
    """One image fitted to the target size, ready to be written to a shard."""

    pixels: np.ndarray  # uint8, [size_px, size_px, channels] (HWC), C-contiguous
    original_width: int
    original_height: int
    # The scale factor applied to the image's shorter (crop) / longer (pad)
    # side (for stretch, the larger of the two axes) when > 1; else 1.0.
    upscale: float
    # A centre tile (at most NATIVE_TILE_PX square) of the decoded luma, uint8,
    # when the image was decoded at its native resolution; None after a
    # reduced-scale JPEG decode, which averaged the finest detail away.
    # The near-duplicate keep rule measures fine detail on it
    # (gandata.clean.scores.detail_share).
    native_luma: np.ndarray | None = None


def prepare_image(data: bytes | None, array: np.ndarray | None, config: ImageConfig) -> PreparedImage:
    """Decode one sample (encoded ``data`` or a pixel ``array``) and fit it to the square size.

    Exactly one of ``data`` and ``array`` must be given. Raises
    ``ImageRejected`` for a bad image (corrupt, decompression_bomb,
    unsupported, too_small); raises ``ValueError`` when both or neither input
    is given (a programming error, not a bad image).
    """
    if (data is None) == (array is None):
        raise ValueError("prepare_image needs exactly one of data and array")
    if data is not None:
        upright = decode_upright_jpeg(data, config)
        if upright is not None:
            pixels, original, box = upright
            # The decoded pixels are never decoded again: wrapped as a Pillow
            # image (what decode_with_box returns for them) when they need fitting.
            return _fit_exact(pixels, original, box, config) or _fit(image_from_array(pixels), original, config, box)
        image, original, box = decode_with_box(data, config)
        return _fit(image, original, config, box)
    image = image_from_array(array)  # type: ignore[arg-type]
    return _fit(image, image.size, config, None)


def fit_to_square(image: Image.Image, original_size: tuple[int, int], config: ImageConfig) -> PreparedImage:
    """Fit a decoded image to ``config.size_px`` square per ``config.resize``.

    ``original_size`` is the ``(width, height)`` of the upright source before
    any reduced-scale decoding; size limits and the reported upscale factor
    are judged on it. ``image`` may be in any mode; it is converted to
    ``config.channels`` first. Raises ``ImageRejected("too_small", ...)`` when
    the shorter original side is below ``config.min_size_px`` or the needed
    upscale exceeds ``config.max_upscale``.
    """
    return _fit(image, original_size, config, None)


def _fit(image: Image.Image, original_size: tuple[int, int], config: ImageConfig, box: Box | None) -> PreparedImage:
    orig_w, orig_h = int(original_size[0]), int(original_size[1])
    size = config.size_px
    _check_size(orig_w, orig_h, config)
    upscale = _upscale_factor(orig_w, orig_h, config)
    if upscale > config.max_upscale + _UPSCALE_EPSILON:
        raise ImageRejected(
            "too_small",
            f"{orig_w} x {orig_h} would need {upscale:.2f}x upscaling to {size} px ({config.resize}), "
            f"above --max-upscale {config.max_upscale:g}",
        )
    image = convert_to_target(image, config)
    w, h = image.size
    native = _native_tile(image) if (w, h) == (orig_w, orig_h) else None
    if box is not None and box == (0.0, 0.0, float(w), float(h)):
        box = None
    if config.resize == "crop":
        pixels = _crop(image, size, box)
    elif config.resize == "pad":
        pixels = _pad(image, size, box, config)
    else:
        pixels = _stretch(image, size, box)
    return PreparedImage(
        pixels=pixels,
        original_width=orig_w,
        original_height=orig_h,
        upscale=upscale if upscale > 1.0 else 1.0,
        native_luma=native,
    )


def _fit_exact(pixels: np.ndarray, original_size: tuple[int, int], box: Box | None, config: ImageConfig) -> PreparedImage | None:
    """``_fit`` for decoded pixels that already have the output size (every
    resize mode then passes them through untouched) and come from a
    reduced-scale decode (no native tile to keep); None for any other image.
    The size rules still run, on the original size."""
    height, width = pixels.shape[:2]
    size = config.size_px
    if (width, height) != (size, size) or tuple(original_size) == (width, height):
        return None
    if box is not None and box != (0.0, 0.0, float(width), float(height)):
        return None
    orig_w, orig_h = int(original_size[0]), int(original_size[1])
    _check_size(orig_w, orig_h, config)
    upscale = _upscale_factor(orig_w, orig_h, config)
    if upscale > config.max_upscale + _UPSCALE_EPSILON:
        return None  # _fit names the rejection
    return PreparedImage(pixels=np.ascontiguousarray(pixels), original_width=orig_w, original_height=orig_h,
                         upscale=upscale if upscale > 1.0 else 1.0, native_luma=None)


def _native_tile(image: Image.Image) -> np.ndarray:
    """The centre NATIVE_TILE_PX square (or less) of the image's luma, uint8."""
    w, h = image.size
    tw, th = min(w, NATIVE_TILE_PX), min(h, NATIVE_TILE_PX)
    left, top = (w - tw) // 2, (h - th) // 2
    tile = image.crop((left, top, left + tw, top + th))
    return np.asarray(tile if tile.mode == "L" else tile.convert("L"))


def _check_size(w: int, h: int, config: ImageConfig) -> None:
    shorter = min(w, h)
    if shorter < config.min_size_px:
        raise ImageRejected(
            "too_small",
            f"shorter side {shorter} px ({w} x {h}) is below --min-size {config.min_size_px} px",
        )


def _upscale_factor(w: int, h: int, config: ImageConfig) -> float:
    size = config.size_px
    if config.resize == "crop":
        return size / min(w, h)
    if config.resize == "pad":
        return size / max(w, h)
    return max(size / w, size / h)


def _resample(source: tuple[float, float], dest: tuple[int, int]) -> Image.Resampling:
    # Lanczos whenever any axis shrinks (antialiasing matters there); bicubic
    # for pure enlargement, where Lanczos only adds ringing.
    if dest[0] < source[0] - 1e-6 or dest[1] < source[1] - 1e-6:
        return Image.Resampling.LANCZOS
    return Image.Resampling.BICUBIC


def _resize(image: Image.Image, dest: tuple[int, int], box: Box) -> Image.Image:
    source = (box[2] - box[0], box[3] - box[1])
    return image.resize(dest, _resample(source, dest), box=box, reducing_gap=_REDUCING_GAP)


def _crop(image: Image.Image, size: int, box: Box | None) -> np.ndarray:
    w, h = image.size
    if box is None and min(w, h) == size:
        # No scaling needed: an integer crop keeps the pixels bit-exact.
        if (w, h) != (size, size):
            left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
        return _to_array(image)
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(w), float(h))
    side = min(x1 - x0, y1 - y0)
    left = x0 + (x1 - x0 - side) / 2
    top = y0 + (y1 - y0 - side) / 2
    return _to_array(_resize(image, (size, size), (left, top, left + side, top + side)))


def _pad(image: Image.Image, size: int, box: Box | None, config: ImageConfig) -> np.ndarray:
    w, h = image.size
    x0, y0, x1, y1 = box if box is not None else (0.0, 0.0, float(w), float(h))
    cw, ch = x1 - x0, y1 - y0
    scale = size / max(cw, ch)
    new_w = min(size, max(1, round(cw * scale)))
    new_h = min(size, max(1, round(ch * scale)))
    if box is None and (new_w, new_h) == (w, h):
        content = image
    else:
        content = image.resize((new_w, new_h), _resample((cw, ch), (new_w, new_h)),
                               box=(x0, y0, x1, y1), reducing_gap=_REDUCING_GAP)
    channels = 1 if content.mode == "L" else 3
    fill = (luma(tuple(config.fill)),) if channels == 1 else tuple(config.fill)
    canvas = np.empty((size, size, channels), dtype=np.uint8)
    canvas[...] = np.asarray(fill, dtype=np.uint8)
    left, top = (size - new_w) // 2, (size - new_h) // 2
    canvas[top : top + new_h, left : left + new_w] = np.asarray(content).reshape(new_h, new_w, channels)
    return canvas


def _stretch(image: Image.Image, size: int, box: Box | None) -> np.ndarray:
    w, h = image.size
    if box is None and (w, h) == (size, size):
        return _to_array(image)
    return _to_array(_resize(image, (size, size), box if box is not None else (0.0, 0.0, float(w), float(h))))


def _to_array(image: Image.Image) -> np.ndarray:
    # np.asarray on a PIL image is a read-only view of a bytes copy; the
    # pipeline may normalise in place, so hand out a writable array.
    a = np.array(image, dtype=np.uint8)
    if a.ndim == 2:
        a = a.reshape(a.shape[0], a.shape[1], 1)
    return np.ascontiguousarray(a)
