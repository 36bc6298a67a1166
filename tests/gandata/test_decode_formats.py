"""Pillow restricted to the formats gandata claims (issue 15 weakness): an
EPS named x.png never reaches Ghostscript; AVIF, JPEG 2000 and QOI decode
when the plugin is there, and a format gandata does not decode is named in
the rejection detail."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gandata.config import ImageConfig
from gandata.image.decode import (
    OPTIONAL_FORMATS,
    ImageRejected,
    decodable_formats,
    decode_bytes,
)

CONFIG = ImageConfig(size_px=16, min_size_px=4)


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["EPS", "PCX", "SGI"])
def test_formats_gandata_does_not_claim_are_named_and_never_decoded(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encoded(fmt)
    opened: list[str] = []
    real_open = Image.open

    def spy(fp, mode="r", formats=None):  # records what Pillow is allowed to try
        opened.append(",".join(formats or ["ALL"]))
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    with pytest.raises(ImageRejected) as info:
        decode_bytes(data, CONFIG)
    assert info.value.reason == "unsupported"
    assert f"a {fmt} file: not a format gandata decodes" in info.value.detail
    assert opened and all(fmt not in o.split(",") and o != "ALL" for o in opened)


@pytest.mark.parametrize("fmt", ["JPEG2000", "QOI", "AVIF"])
def test_optional_formats_decode_when_the_plugin_is_present(fmt: str) -> None:
    if fmt not in decodable_formats():
        pytest.skip(f"this Pillow has no {fmt} plugin")
    try:
        data = _encoded(fmt)
    except (OSError, KeyError, ValueError):
        pytest.skip(f"this Pillow cannot write {fmt}")
    image, size = decode_bytes(data, CONFIG)
    assert size == (20, 20) and image.mode == "RGB"


def test_an_optional_format_without_its_plugin_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encoded("QOI")
    monkeypatch.setattr("gandata.image.decode.decodable_formats",
                        lambda: tuple(f for f in ("JPEG", "PNG") if f not in OPTIONAL_FORMATS))
    with pytest.raises(ImageRejected, match="a QOI file: not a format gandata decodes .its Pillow plugin is not installed"):
        decode_bytes(data, CONFIG)


def test_the_default_pixel_limit_bounds_a_worker_decode() -> None:
    # A 50 M pixel PNG costs ~0.6 GB to decode at full size: above the default.
    buf = io.BytesIO()
    Image.new("L", (10_000, 5_000)).save(buf, format="PNG")
    with pytest.raises(ImageRejected) as info:
        decode_bytes(buf.getvalue(), ImageConfig())
    assert info.value.reason == "decompression_bomb"
    assert info.value.detail == "10000 x 5000 = 50000000 pixels exceeds limit of 40000000 (--max-pixels)"
