"""The JPEG quality estimate read from the quantization tables
(gandata.image.jpeg_quality): close to the quality Pillow saved at, monotone,
and a missing value (never an error) for anything it cannot read."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gandata.image.jpeg_quality import jpeg_quality
from tests.common.cleandata import photo, png

QUALITIES = [5, 10, 20, 30, 50, 60, 75, 85, 90, 95, 100]


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_estimate_is_close_to_the_saved_quality_and_monotone(mode: str) -> None:
    image = photo(np.random.default_rng(0), 48).convert(mode)
    estimates = [jpeg_quality(_jpeg(image, q)) for q in QUALITIES]
    for q, estimate in zip(QUALITIES, estimates):
        assert estimate is not None and abs(estimate - q) <= 1.0, (q, estimate)
    assert estimates == sorted(estimates)


def test_other_formats_and_garbage_have_no_quality() -> None:
    image = photo(np.random.default_rng(1), 32)
    assert jpeg_quality(png(image)) is None
    assert jpeg_quality(b"") is None
    assert jpeg_quality(b"\xff\xd8") is None
    assert jpeg_quality(np.random.default_rng(2).bytes(4096)) is None


def test_truncated_files_never_raise() -> None:
    data = _jpeg(photo(np.random.default_rng(3), 32), 80)
    dqt = data.index(b"\xff\xdb")
    for cut in range(len(data)):
        value = jpeg_quality(data[:cut])
        assert value is None or 1.0 <= value <= 100.0
        if cut <= dqt + 4:  # before the first table is whole
            assert value is None
    assert jpeg_quality(data) == 80.0


@pytest.mark.parametrize("segment", [
    b"\xff\xdb\xff\xff" + bytes(10),  # declared length past the end of the file
    b"\xff\xdb\x00\x43\x00" + bytes(64),  # a table of zero divisors
    b"\xff\xdb\x00\x43\x20" + bytes([1] * 64),  # precision 2: no such thing
    b"\xff\xdb\x00\x43\x07" + bytes([1] * 64),  # table id 7: no such thing
    b"\xff\xdb\x00\x30\x00" + bytes([1] * 46),  # a table cut short
    b"\xff\xdb\x00\x01",  # length below 2
])
def test_hostile_tables_give_a_missing_value(segment: bytes) -> None:
    assert jpeg_quality(b"\xff\xd8" + segment + b"\xff\xd9") is None


def test_sixteen_bit_tables_and_many_segments() -> None:
    table = bytes([0x10]) + b"".join(int(1).to_bytes(2, "big") for _ in range(64))
    assert jpeg_quality(b"\xff\xd8\xff\xdb" + (2 + len(table)).to_bytes(2, "big") + table + b"\xff\xd9") == 100.0
    # Thousands of empty application segments before the tables: the walk
    # gives up (bounded) instead of reading them all.
    padding = b"\xff\xe0\x00\x02" * 100_000
    assert jpeg_quality(b"\xff\xd8" + padding + _jpeg(photo(np.random.default_rng(4), 16), 70)[2:]) is None


def test_the_table_cache_keeps_only_small_headers() -> None:
    # Quality is cached per set of DQT segments (files of one encoder share
    # them); a header with huge DQT segments is scored but never cached.
    from gandata.image import jpeg_quality as module

    table = bytes([0]) + bytes(range(1, 65))
    small = b"\xff\xd8" + b"\xff\xdb" + (len(table) + 2).to_bytes(2, "big") + table + b"\xff\xda\x00\x02"
    big_segment = table * 900  # 900 tables of id 0 in one segment: 58 kB
    big = b"\xff\xd8" + b"\xff\xdb" + (len(big_segment) + 2).to_bytes(2, "big") + big_segment + b"\xff\xda\x00\x02"
    module._quality_of_tables.cache_clear()
    first = jpeg_quality(small)
    assert first is not None and jpeg_quality(small) == first
    assert module._quality_of_tables.cache_info().hits == 1
    assert jpeg_quality(big) == first  # the first table with id 0 wins
    assert module._quality_of_tables.cache_info().currsize == 1


def test_a_files_segments_are_walked_once_for_orientation_and_quality(monkeypatch) -> None:
    from gandata.image import jpeg_segments as segments_module
    from gandata.image.jpeg_turbo import exif_orientation

    walks = []
    original = segments_module._walk
    monkeypatch.setattr(segments_module, "_walk", lambda data, limit: walks.append(1) or original(data, limit))
    image = photo(np.random.default_rng(1), 48)
    first, second = _jpeg(image, 90), _jpeg(image, 40)
    assert exif_orientation(first) == 1 and jpeg_quality(first) == 90.0
    assert len(walks) == 1
    assert abs(jpeg_quality(second) - 40.0) <= 1.0 and jpeg_quality(first) == 90.0  # another file is walked anew
    assert len(walks) == 3
