"""The quality a JPEG was saved at, estimated from its quantization tables.

A JPEG's DQT segments hold the divisors its DCT coefficients were quantized
with; the IJG encoder (libjpeg, Pillow, most cameras' "quality" settings)
makes them by scaling the standard tables of the JPEG spec (Annex K) by
``S = 5000 / q`` below quality 50 and ``S = 200 - 2 q`` above. Inverting that
scaling on the luminance table gives the quality back (exactly for IJG
tables, an "IJG-equivalent" quality for other encoders' tables), which is what
the near-duplicate keep rule compares: the less compressed copy keeps more of
the original's detail.

The tables are read from the bytes with a bounded marker walk (no decoder
runs), so this costs microseconds and works whichever decoder (Pillow or
libjpeg-turbo) decodes the pixels. Anything unexpected (not a JPEG, a
truncated or malformed segment) gives ``None``: a missing value, never an error.
"""

from __future__ import annotations

from functools import lru_cache

from gandata.image.jpeg_segments import jpeg_segments

__all__ = ["jpeg_quality"]

# Annex K luminance table in zigzag order, the order DQT stores it in.
_STD_LUMA = (
    16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
    26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
    56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
    95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
)


def jpeg_quality(data: bytes) -> float | None:
    """The IJG quality (1-100) of a JPEG's luminance quantization table, or
    None when ``data`` is not a JPEG or its tables cannot be read."""
    dqt_segments = tuple(data[start:stop] for marker, start, stop in jpeg_segments(data)[0] if marker == 0xDB)
    if sum(len(segment) for segment in dqt_segments) > _CACHED_TABLES_BYTES:
        return _quality_of_tables.__wrapped__(dqt_segments)  # an odd header is not kept in the cache
    return _quality_of_tables(dqt_segments)


# The files of one dataset mostly share a few encoders' tables: each set of
# DQT segments is parsed and scored once. Four 8-bit tables are 260 bytes, so
# the cache holds at most 256 x 1 KiB.
_CACHED_TABLES_BYTES = 1024


@lru_cache(maxsize=256)
def _quality_of_tables(dqt_segments: tuple[bytes, ...]) -> float | None:
    """``jpeg_quality`` of the JPEG whose DQT segments (payloads, in file
    order) these are."""
    table = _luma_table(dqt_segments)
    if table is None:
        return None
    if max(table) <= 1:
        return 100.0  # every divisor 1: quality 100, nothing quantized away
    # IJG: entry = clamp((std * S + 50) // 100, 1, 255). Summed over the
    # entries the clamp left alone, the +50 and the floor cancel on average,
    # so the sums give S (clamped entries would pull low qualities up).
    total = standard = 0
    for entry, std in zip(table, _STD_LUMA):
        if 1 < entry < 255:
            total += entry
            standard += std
    if not standard:
        return 1.0 if min(table) >= 255 else 100.0
    scale = 100.0 * total / standard
    quality = 5000.0 / scale if scale > 100.0 else (200.0 - scale) / 2.0
    return float(min(100.0, max(1.0, round(quality, 1))))


def _luma_table(dqt_segments: tuple[bytes, ...]) -> tuple[int, ...] | None:
    """The quantization table with id 0 (luminance by convention; else the
    first table defined), from the DQT segments before the first scan (a
    malformed header: the tables read before it)."""
    tables: dict[int, tuple[int, ...]] = {}
    for segment in dqt_segments:
        if not _read_dqt(segment, tables):
            return None
    if not tables:
        return None
    return tables.get(0, next(iter(tables.values())))


def _read_dqt(segment: bytes, tables: dict[int, tuple[int, ...]]) -> bool:
    """Add the tables of one DQT segment (several may share one); False
    when the segment is malformed."""
    pos = 0
    while pos < len(segment):
        precision, table_id = segment[pos] >> 4, segment[pos] & 0x0F
        width = 2 if precision else 1
        body = segment[pos + 1 : pos + 1 + 64 * width]
        if precision > 1 or table_id > 3 or len(body) != 64 * width:
            return False
        values = tuple(body) if width == 1 else tuple(int.from_bytes(body[k : k + 2], "big") for k in range(0, len(body), 2))
        if min(values) < 1:
            return False  # a zero divisor: not a table a decoder could use
        tables.setdefault(table_id, values)
        pos += 1 + 64 * width
    return True
