"""The marker segments of a JPEG header, walked once, bounded.

Both readers of JPEG metadata (the EXIF orientation of the libjpeg-turbo fast
path, the quantization tables of the quality estimate) need the same walk over
the segments before the first scan; it lives here so the two cannot disagree
on what a malformed header is.
"""

from __future__ import annotations

__all__ = ["MAX_SEGMENTS", "jpeg_segments"]

_SOI = b"\xff\xd8"
# Segments read before giving up: real files have a few dozen before the first
# scan; a file made of thousands of tiny segments is not walked.
MAX_SEGMENTS = 512


# The last walk, keyed by the identity of its bytes: ingest asks for the
# segments of one file twice (the EXIF orientation when decoding, the
# quantization tables for the quality), back to back. Holding the bytes keeps
# their identity unique while the entry lives.
_last_walk: tuple[bytes, int, tuple[tuple[tuple[int, int, int], ...], bool]] | None = None


def jpeg_segments(data: bytes, max_segments: int = MAX_SEGMENTS) -> tuple[tuple[tuple[int, int, int], ...], bool]:
    """``(segments, complete)``: each segment before the first scan as
    ``(marker, payload_start, payload_end)`` (offsets into ``data``), and
    whether the walk reached the start of scan or end of image cleanly.

    A header that is not a JPEG, is truncated, has a bad length or a byte
    where a marker should be, or has more than ``max_segments`` segments
    ends the walk: the segments read so far, ``complete`` False."""
    global _last_walk
    last = _last_walk
    if last is not None and last[0] is data and last[1] == max_segments:
        return last[2]
    walk = _walk(data, max_segments)
    _last_walk = (data, max_segments, walk)
    return walk


def _walk(data: bytes, max_segments: int) -> tuple[tuple[tuple[int, int, int], ...], bool]:
    segments: list[tuple[int, int, int]] = []
    if not data.startswith(_SOI):
        return tuple(segments), False
    pos, end = 2, len(data)
    while pos + 4 <= end and len(segments) < max_segments:
        if data[pos] != 0xFF:
            return tuple(segments), False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no metadata follows
            return tuple(segments), True
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > end:
            return tuple(segments), False
        segments.append((marker, pos + 4, pos + 2 + length))
        pos += 2 + length
    return tuple(segments), False
