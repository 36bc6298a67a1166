"""Decode one input (encoded bytes or a pixel array) into an upright L/RGB image.

Every image the pipeline reads passes through here, so two rules hold:

* A bad input never crashes the build. Anything Pillow raises while opening or
  decoding becomes ``ImageRejected`` with a reason code from
  ``gandata.records.REASONS`` ("corrupt", "decompression_bomb", "unsupported").
* Pixels are only loaded after the declared size has been checked against
  ``ImageConfig.max_pixels`` (``Image.open`` is lazy, so a small file declaring
  a huge canvas costs nothing to refuse).

JPEGs are decoded at a reduced scale (libjpeg's DCT-domain scaling: through
``gandata.jpeg_turbo`` for ordinary JPEGs, else ``Image.draft``, with the same
pixels) when the target is much smaller than the source. Decoding at
1/s scale yields the mean of each s x s block, an area downscale; the
reduction keeps at least ``ImageConfig.draft_gap`` times the target size and
the final Lanczos in ``gandata.image.fit`` does the rest. Measured against a
full decode + Lanczos on photo-like JPEGs: 44.6-52 dB PSNR with gap 1 (the
default; fastest), 52-55 dB with gap 2 (README, "Decoding and resizing").
"""

from __future__ import annotations

import io
import math
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from gandata.config import ImageConfig
from gandata.image import jpeg_turbo
from gandata.records import REASONS

__all__ = [
    "Box",
    "ImageRejected",
    "convert_to_target",
    "decode_bytes",
    "decode_upright_jpeg",
    "decode_with_box",
    "image_from_array",
    "looks_like_image",
    "luma",
]

_ORIENTATION_TAG = 0x0112
# Same table as PIL.ImageOps.exif_transpose; applied by hand so that we can
# also map the draft content box and skip exif_transpose's metadata rewrite.
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# MPO is how Pillow opens JPEGs carrying a multi-picture extension (many phone
# cameras write one); its first frame is an ordinary JPEG and drafts the same.
_DRAFT_FORMATS = frozenset({"JPEG", "MPO"})
_MAX_DETAIL = 300

# The formats gandata decodes. Pillow has plugins for many more (EPS hands
# the file to Ghostscript, others are rarely exercised parsers); a file named
# x.png must never reach them, so Image.open is restricted to these.
CLAIMED_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "PPM", "ICO", "CUR", "TGA")
# Decoded too when the installed Pillow has the plugin (AVIF: Pillow built
# with libavif; HEIF: pip install pillow-heif, registered by the user).
OPTIONAL_FORMATS = ("AVIF", "JPEG2000", "QOI", "HEIF")
# Signatures of the optional formats, so that a file is named even when no
# plugin can open it: (offset, prefix, format).
_OPTIONAL_SIGNATURES = (
    (4, b"ftypavif", "AVIF"), (4, b"ftypavis", "AVIF"), (4, b"ftypheic", "HEIF"), (4, b"ftypheix", "HEIF"),
    (4, b"ftypmif1", "HEIF"), (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"), (0, b"\xff\x4f\xff\x51", "JPEG2000"),
    (0, b"qoif", "QOI"),
)


def decodable_formats() -> tuple[str, ...]:
    """The Pillow formats decoded here: the claimed ones and the optional
    ones whose plugin is installed."""
    Image.init()
    return tuple(f for f in CLAIMED_FORMATS + OPTIONAL_FORMATS if f in Image.OPEN)


def _other_format(data: bytes) -> str | None:
    """The name of the format ``data`` is in when it is one gandata does not
    decode (an optional format without its plugin, or one of Pillow's other
    plugins), recognised by signature only: no decoder runs."""
    head = bytes(data[:64])
    for offset, prefix, name in _OPTIONAL_SIGNATURES:
        if head[offset:offset + len(prefix)] == prefix:
            return name
    allowed = set(decodable_formats())
    for name, (_, accept) in Image.OPEN.items():
        if name in allowed or accept is None:
            continue
        try:
            if accept(head):
                return name
        except Exception:  # noqa: BLE001 - a signature check that fails is no match
            continue
    return None

Box = tuple[float, float, float, float]


class ImageRejected(Exception):
    """Raised for one bad image; carries a reason code from gandata.records.REASONS.

    ``reason`` is the machine-readable code written to rejected.jsonl and
    ``detail`` a short human-readable explanation (sizes, Pillow's message).
    """

    def __init__(self, reason: str, detail: str):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle through self.args, which here is the joined
        # message; rejections cross process boundaries in the process executor.
        return (type(self), (self.reason, self.detail))


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts with the signature of a supported image format.

    Recognises JPEG, PNG, GIF, BMP, TIFF (incl. BigTIFF), WebP, PPM/PGM/PBM/PAM
    and ICO/CUR. A sniff, not a validation: a file that passes may still be
    rejected as corrupt when decoded. TGA has no signature and is not detected.
    """
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return True
    if any(head[offset:offset + len(prefix)] == prefix for offset, prefix, _ in _OPTIONAL_SIGNATURES):
        return True  # decoded when the plugin is there, else named in the rejection
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return True
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return True
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n#":
        return True
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return True
    if head[:2] == b"BM" and len(head) >= 18:
        # "BM" alone is too common in text; the DIB header size pins it down.
        dib_size = int.from_bytes(head[14:18], "little")
        return dib_size in (12, 16, 40, 52, 56, 64, 108, 124)
    return False


def decode_bytes(data: bytes, config: ImageConfig) -> tuple[Image.Image, tuple[int, int]]:
    """Decode encoded image bytes into an upright image in the target mode.

    Returns the image in mode "L" (``config.channels == 1``) or "RGB" (3), with
    its EXIF orientation applied and alpha composited onto
    ``config.background``, and the ORIGINAL ``(width, height)`` of the upright
    image. The image itself may be smaller than that when ``config.draft``
    allowed a reduced-scale JPEG decode.

    Raises ``ImageRejected`` with reason "corrupt" (empty, truncated, garbage
    or unidentifiable data), "decompression_bomb" (more than
    ``config.max_pixels`` pixels, or over Pillow's own bomb limit) or
    "unsupported" (a pixel mode that cannot be converted to L/RGB).
    """
    image, original, _box = decode_with_box(data, config)
    return image, original


def decode_with_box(data: bytes, config: ImageConfig) -> tuple[Image.Image, tuple[int, int], Box | None]:
    """Like ``decode_bytes``, plus the region of the image that holds content.

    After a reduced-scale JPEG decode the last row/column may be only partly
    covered by the source (``W / scale`` is rarely whole), so resampling from
    this box instead of the full image keeps the geometry exact. ``None``
    means the whole image.
    """
    if not data:
        raise ImageRejected("corrupt", "empty file")
    fast = _decode_jpeg_turbo(data, config)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            # Pillow warns about odd-but-decodable files (bad EXIF, palette
            # transparency); the library must stay silent.
            warnings.simplefilter("ignore")
            if _pil_bomb_warning_is_binding(config):
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=decodable_formats())
            width, height = image.size
            pixels = width * height
            if pixels > config.max_pixels:
                raise ImageRejected("decompression_bomb", _bomb_detail(width, height, config))
            if width < 1 or height < 1:
                raise ImageRejected("corrupt", f"image declares an empty size {width} x {height}")
            box: Box | None = None
            if config.draft and image.format in _DRAFT_FORMATS:
                box = _draft(image, config)
            image.load()
            orientation = _orientation(image)
            image, box = _apply_orientation(image, box, orientation)
            image = convert_to_target(image, config)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        # Pillow's message names the BytesIO object's address; keep details
        # deterministic so rebuilds write identical rejection logs.
        other = _other_format(data)
        if other is not None:
            hint = " (its Pillow plugin is not installed)" if other in OPTIONAL_FORMATS else ""
            raise ImageRejected("unsupported", f"a {other} file: not a format gandata decodes{hint}") from None
        raise ImageRejected("corrupt", "not a recognised image format (Pillow cannot identify it)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("decompression_bomb", _describe(exc, with_type=False)) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file, never a crash
        raise ImageRejected("corrupt", _describe(exc)) from None
    original = (height, width) if orientation in _SWAPS_AXES else (width, height)
    return image, original, box


def image_from_array(array: np.ndarray) -> Image.Image:
    """Wrap decoded pixels (HxW, HxWx1, HxWx3 or HxWx4) as a PIL image.

    uint8 is taken as is; uint16 is scaled 0..65535 -> 0..255; floats are read
    as 0..1 when their maximum is <= 1 and as 0..255 otherwise (then clipped);
    bool becomes 0/255; other integer types are accepted when all values lie in
    0..255. Returns an "L", "RGB" or "RGBA" image (alpha is composited later,
    by ``convert_to_target``). Raises ``ImageRejected`` ("unsupported" for a
    shape or dtype it cannot read, "corrupt" for empty or non-finite data).
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] not in (3, 4):
        hint = " (channel-first? transpose to HxWxC)" if a.shape[0] in (1, 3, 4) else ""
        raise ImageRejected("unsupported", f"array of shape {a.shape} is not HxW, HxWx1, HxWx3 or HxWx4{hint}")
    if a.ndim not in (2, 3):
        raise ImageRejected("unsupported", f"array of shape {a.shape} is not HxW, HxWx1, HxWx3 or HxWx4")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageRejected("corrupt", f"empty array of shape {a.shape}")
    a = _array_to_uint8(a)
    return Image.fromarray(np.ascontiguousarray(a))


def convert_to_target(image: Image.Image, config: ImageConfig) -> Image.Image:
    """Convert a loaded image of any Pillow mode to "L" or "RGB" per ``config.channels``.

    Alpha (an alpha band, palette alpha or a tRNS colour key) is composited
    onto ``config.background``; 16-bit and 32-bit integer modes are scaled
    from 0..65535; float mode "F" is read as 0..1 when its maximum is <= 1,
    else as 0..255; bilevel "1" becomes 0/255. Colour to grayscale uses
    Pillow's ITU-R 601-2 luma (``convert("L")``); grayscale to colour
    replicates the channel.
    """
    target = "L" if config.channels == 1 else "RGB"
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        gray = _high_depth_to_l(image)
        return gray if target == "L" else gray.convert("RGB")
    if _has_alpha(image):
        return _composite(image, target, config.background)
    if mode == target:
        return image
    if mode in ("1", "L", "RGB"):
        return image.convert(target)
    try:
        rgb = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageRejected("unsupported", f"image mode {mode} cannot be converted to RGB ({exc})") from None
    return rgb if target == "RGB" else rgb.convert("L")


@lru_cache(maxsize=64)
def luma(rgb: tuple[int, int, int]) -> int:
    """The gray value Pillow's convert("L") gives this colour (for fills and
    backgrounds of grayscale targets)."""
    return int(Image.new("RGB", (1, 1), tuple(rgb)).convert("L").getpixel((0, 0)))  # type: ignore[arg-type]


# -- internals ---------------------------------------------------------------


def _pil_bomb_warning_is_binding(config: ImageConfig) -> bool:
    """Whether Pillow's DecompressionBombWarning should reject the image.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (about 89.5 M). When our own
    limit is at or below that, the warning can only fire for an image we reject
    anyway, so it is turned into a rejection. When the user raised
    ``max_pixels`` above Pillow's limit, the explicit setting wins and the
    warning is ignored (Pillow's hard error at twice its limit still applies;
    we never change Pillow's global limit).
    """
    pil_limit = Image.MAX_IMAGE_PIXELS
    return pil_limit is not None and config.max_pixels <= pil_limit


def decode_upright_jpeg(data: bytes, config: ImageConfig) -> tuple[np.ndarray, tuple[int, int], Box | None] | None:
    """The pixels of a JPEG that ``gandata.jpeg_turbo`` decodes already upright
    and in the target's channels, as an [H, W, C] uint8 array (no Pillow image
    is made), with the original size and content box of ``decode_with_box``;
    None where ``decode_with_box`` must run (any other file, a JPEG turned by
    its EXIF orientation, a grayscale JPEG for a colour target).

    At training sizes a JPEG decoded at 1/8 often has the output size already
    (512 px -> 64 px); wrapping it in a Pillow image and copying it back out
    then cost a tenth of the decode."""
    turbo = _turbo_pixels(data, config)
    if turbo is None:
        return None
    array, original, box, orientation = turbo
    if orientation in _TRANSPOSE_FOR_ORIENTATION or (array.ndim == 2) != (config.channels == 1):
        return None
    return (array.reshape(array.shape[0], array.shape[1], 1) if array.ndim == 2 else array), original, box


def _decode_jpeg_turbo(data: bytes, config: ImageConfig) -> tuple[Image.Image, tuple[int, int], Box | None] | None:
    """``decode_with_box`` through ``gandata.jpeg_turbo``, with the same
    pixels, sizes and box as Pillow's path; None where that path must run."""
    turbo = _turbo_pixels(data, config)
    if turbo is None:
        return None
    array, original, box, orientation = turbo
    image = Image.fromarray(array, "L" if array.ndim == 2 else "RGB")
    # An out-of-range value (0, 9, ...) is in neither table: no transpose, no swap.
    image, box = _apply_orientation(image, box, orientation)
    return convert_to_target(image, config), original, box


def _turbo_pixels(data: bytes, config: ImageConfig) -> tuple[np.ndarray, tuple[int, int], Box | None, int] | None:
    """A JPEG decoded by libjpeg-turbo as stored (not yet turned upright):
    its pixels (HxWx3 RGB, or HxW luma), the upright original size, the
    content box in the stored orientation and the EXIF orientation; None
    where Pillow's path must run."""
    header = jpeg_turbo.read_header(data)
    if header is None:
        return None
    width, height, colorspace = header
    pixels = width * height
    limit = Image.MAX_IMAGE_PIXELS
    if width < 1 or height < 1 or (limit is not None and pixels > limit):
        return None  # Pillow's own size rules apply (and name the rejection)
    if pixels > config.max_pixels:
        raise ImageRejected("decompression_bomb", _bomb_detail(width, height, config))
    orientation = jpeg_turbo.exif_orientation(data)
    if orientation is None:
        return None
    scale = _draft_scale((width, height), config) if config.draft else 1
    gray = config.channels == 1 or colorspace == "Gray"
    array = jpeg_turbo.decode(data, (width, height), scale, gray)
    if array is None:
        return None
    box = (0.0, 0.0, width / scale, height / scale) if scale > 1 else None
    original = (height, width) if orientation in _SWAPS_AXES else (width, height)
    return array, original, box, orientation


def _bomb_detail(width: int, height: int, config: ImageConfig) -> str:
    return f"{width} x {height} = {width * height} pixels exceeds limit of {config.max_pixels} (--max-pixels)"


def _apply_orientation(image: Image.Image, box: Box | None, orientation: int) -> tuple[Image.Image, Box | None]:
    """Turn a decoded image upright, mapping its content box along."""
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    if method is None:
        return image, box
    if box is not None:
        box = _transpose_box(box, image.size, method)
    return image.transpose(method), box


def _draft_request(size: tuple[int, int], config: ImageConfig) -> tuple[int, int]:
    """The decoded size ``_draft`` asks libjpeg to stay at or above."""
    keep = math.ceil(config.draft_gap * config.size_px)
    if config.resize == "pad":
        return (keep, 1) if size[0] >= size[1] else (1, keep)
    return (keep, keep)


def _draft_scale(size: tuple[int, int], config: ImageConfig) -> int:
    """The DCT scale denominator Pillow's JPEG draft picks for ``_draft_request``."""
    request = _draft_request(size, config)
    fits = min(size[0] // request[0], size[1] // request[1])
    return next((s for s in (8, 4, 2) if fits >= s), 1)


def _draft(image: Image.Image, config: ImageConfig) -> Box | None:
    """Ask libjpeg for a reduced-scale decode that keeps >= draft_gap x the target size.

    Pillow's JPEG draft picks the largest scale in {1/2, 1/4, 1/8} for which
    BOTH result sides stay >= the requested ones, so requesting (n, n) keeps
    the shorter side >= n (what crop and stretch need), and requesting n only
    along the longer axis keeps that side >= n (what pad needs). Decoding
    only the luma plane is also requested for grayscale targets.
    """
    width, height = image.size
    request = _draft_request((width, height), config)
    mode = "L" if config.channels == 1 and image.mode == "RGB" else image.mode
    result = image.draft(mode, request)
    if result is None:
        return None
    box = result[1]
    if image.size == (width, height):
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _transpose_box(box: Box, size: tuple[int, int], method: Image.Transpose) -> Box:
    """Map a content box through the transpose applied to the image."""
    x0, y0, x1, y1 = box
    w, h = size
    T = Image.Transpose
    if method == T.FLIP_LEFT_RIGHT:
        return (w - x1, y0, w - x0, y1)
    if method == T.FLIP_TOP_BOTTOM:
        return (x0, h - y1, x1, h - y0)
    if method == T.ROTATE_180:
        return (w - x1, h - y1, w - x0, h - y0)
    if method == T.TRANSPOSE:
        return (y0, x0, y1, x1)
    if method == T.ROTATE_90:  # counter-clockwise: (x, y) -> (y, w - x)
        return (y0, w - x1, y1, w - x0)
    if method == T.ROTATE_270:  # clockwise: (x, y) -> (h - y, x)
        return (h - y1, x0, h - y0, x1)
    # TRANSVERSE: (x, y) -> (h - y, w - x)
    return (h - y1, w - x1, h - y0, w - x0)


def _orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 when absent or unreadable.

    Read after ``load()``: PNG only finds an eXIf chunk stored after the pixel
    data by loading, and a broken EXIF block should not reject a good image.
    """
    try:
        value = int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - unreadable metadata means "no rotation"
        return 1
    return value if 1 <= value <= 8 else 1


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return True
    return image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"


def _composite(image: Image.Image, target: str, background: tuple[int, int, int]) -> Image.Image:
    """Flatten transparency onto a solid background in the target mode."""
    if image.mode == "La":
        # Pillow converts premultiplied La only to LA.
        image = image.convert("LA")
    if target == "L" and image.mode in ("1", "L", "LA", "La"):
        # Luma is linear in the colour, so blending in L equals blending in
        # RGB then converting, without the two extra passes.
        layer = image.convert("LA")
        canvas = Image.new("L", layer.size, luma(tuple(background)))
        canvas.paste(layer.getchannel("L"), (0, 0), layer.getchannel("A"))
        return canvas
    layer = image.convert("RGBA")
    canvas = Image.new("RGB", layer.size, tuple(background))
    canvas.paste(layer, (0, 0), layer)
    return canvas if target == "RGB" else canvas.convert("L")


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float pixels to 8-bit "L" (never clip 16-bit)."""
    a = np.asarray(image)
    if image.mode == "F":
        return Image.fromarray(_float_to_uint8(a))
    if image.mode == "I":
        a = np.clip(a, 0, 65535)
    return Image.fromarray(_uint16_to_uint8(a))


def _uint16_to_uint8(a: np.ndarray) -> np.ndarray:
    # round(v * 255 / 65535) == round(v / 257), in integers.
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _float_to_uint8(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    if a.size and float(a.max()) <= 1.0:
        a = a * 255.0
    return np.rint(np.clip(a, 0.0, 255.0)).astype(np.uint8)


def _array_to_uint8(a: np.ndarray) -> np.ndarray:
    kind = a.dtype.kind
    if a.dtype == np.uint8:
        return a
    if kind == "b":
        return a.astype(np.uint8) * np.uint8(255)
    if a.dtype == np.uint16:
        return _uint16_to_uint8(a)
    if kind == "f":
        if not np.isfinite(a).all():
            raise ImageRejected("corrupt", "array holds NaN or infinite values")
        return _float_to_uint8(a)
    if kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ImageRejected("unsupported", f"{a.dtype} array with values {lo}..{hi} outside 0..255")
        return a.astype(np.uint8)
    raise ImageRejected("unsupported", f"array dtype {a.dtype} is not an image type (uint8, uint16, float, bool)")


def _describe(exc: BaseException, with_type: bool = True) -> str:
    text = str(exc).strip() or "no message"
    if with_type:
        text = f"{type(exc).__name__}: {text}"
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return text
