"""The fast path for ordinary JPEGs: libjpeg-turbo through simplejpeg.

At training sizes Pillow spends about half as long again around its JPEG
decoder as in it: parsing the markers in Python, building the image object,
reading EXIF (0.45 ms against 0.95 ms of decoding at 1/8 scale for a 512 px
photo on a 2-core VM). simplejpeg calls the same libjpeg-turbo with the same
settings (accurate integer DCT, smooth chroma upsampling), so its pixels are
Pillow's (tests compare them), without that overhead.

Only what it can decode exactly like Pillow takes this path: YCbCr and
grayscale JPEGs whose orientation is stated (or not) by one plain EXIF
block. Everything else (CMYK, Adobe RGB, an orientation Pillow would take
from XMP, odd EXIF, any file libjpeg-turbo warns about) gets ``None`` from these functions and goes
through Pillow, which also gives bad files their rejection reasons.
"""

from __future__ import annotations

import numpy as np

from gandata.image.jpeg_segments import jpeg_segments

try:
    import simplejpeg
except ImportError:  # a platform without a simplejpeg wheel: Pillow decodes every JPEG
    simplejpeg = None

__all__ = ["AVAILABLE", "decode", "exif_orientation", "read_header"]

AVAILABLE = simplejpeg is not None
_SOI = b"\xff\xd8\xff"
_EXIF = b"Exif\x00\x00"
_XMP = b"http://ns.adobe.com/xap/1.0/"
_ORIENTATION_TAG = 0x0112
_TIFF_SHORT = 3


def read_header(data: bytes) -> tuple[int, int, str] | None:
    """``(width, height, colorspace)`` of a JPEG this path decodes, else None.

    ``colorspace`` is "YCbCr" or "Gray"; other colour spaces, non-JPEG data and
    headers libjpeg-turbo cannot read return None.
    """
    if simplejpeg is None or not data.startswith(_SOI):
        return None
    try:
        height, width, colorspace, _subsampling = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if colorspace not in ("YCbCr", "Gray"):
        return None
    return int(width), int(height), colorspace


def decode(data: bytes, size: tuple[int, int], scale: int, gray: bool) -> np.ndarray | None:
    """Decode at ``1/scale`` (1, 2, 4 or 8) to HxWx3 RGB, or HxW luma when ``gray``.

    ``size`` is the stored ``(width, height)`` from ``read_header``. Returns
    None when libjpeg-turbo reports any problem (truncated or corrupt data,
    even ones it could recover from) or picks another scale.
    """
    width, height = size
    # TurboJPEG picks the smallest of its M/8 scales giving at least these
    # sizes, which for whole 1/scale results is exactly 1/scale.
    out_w, out_h = -(-width // scale), -(-height // scale)
    try:
        pixels = simplejpeg.decode_jpeg(
            data, colorspace="GRAY" if gray else "RGB", min_width=out_w, min_height=out_h, strict=True,
        )
    except ValueError:
        return None
    if pixels.shape[:2] != (out_h, out_w):
        return None
    return pixels[:, :, 0] if gray and pixels.ndim == 3 else pixels


def exif_orientation(data: bytes) -> int | None:
    """The EXIF orientation tag of a JPEG (1 when it has none), or None when
    Pillow might read it differently: no EXIF orientation but an XMP packet
    (Pillow then takes the orientation from XMP), several EXIF blocks (Pillow
    joins them) or anything malformed.
    """
    segments, complete = jpeg_segments(data)
    if not complete:
        return None  # malformed, or ran off the end before the image data
    exif: bytes | None = None
    has_xmp = False
    for marker, start, stop in segments:
        if marker != 0xE1:
            continue
        payload = data[start:stop]
        if payload.startswith(_EXIF):
            if exif is not None:
                return None
            exif = payload[len(_EXIF):]
        elif payload.startswith(_XMP):
            has_xmp = True
    orientation = _tiff_orientation(exif) if exif is not None else 0
    if orientation == 0:  # no EXIF orientation tag
        return None if has_xmp else 1
    return orientation


def _tiff_orientation(tiff: bytes) -> int | None:
    """Orientation from the first IFD of an EXIF (TIFF) block; 0 when the tag
    is absent, None when the block is malformed."""
    if len(tiff) < 8:
        return None
    byteorder = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if byteorder is None or int.from_bytes(tiff[2:4], byteorder) != 42:
        return None
    ifd = int.from_bytes(tiff[4:8], byteorder)
    if ifd < 8 or ifd + 2 > len(tiff):
        return None
    count = int.from_bytes(tiff[ifd : ifd + 2], byteorder)
    if ifd + 2 + 12 * count > len(tiff):
        return None
    found: int | None = None
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if int.from_bytes(tiff[entry : entry + 2], byteorder) != _ORIENTATION_TAG:
            continue
        kind = int.from_bytes(tiff[entry + 2 : entry + 4], byteorder)
        values = int.from_bytes(tiff[entry + 4 : entry + 8], byteorder)
        if found is not None or kind != _TIFF_SHORT or values != 1:
            return None
        found = int.from_bytes(tiff[entry + 8 : entry + 10], byteorder)
    return 0 if found is None else found
