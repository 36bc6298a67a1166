"""The libjpeg-turbo fast path gives exactly what Pillow's path gives, and
hands every file it cannot match to Pillow."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gandata.config import ImageConfig
from gandata.image import decode as decode_module
from gandata.image import fit as fit_module
from gandata.image import jpeg_turbo
from gandata.image.decode import ImageRejected, decode_with_box
from gandata.image.fit import prepare_image
from tests.common import imagefactory as factory

pytestmark = pytest.mark.skipif(not jpeg_turbo.AVAILABLE, reason="simplejpeg is not installed")


def _jpeg(a: np.ndarray, **save: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", **{"quality": 92, **save})
    return buf.getvalue()


def _pillow_path(data: bytes, config: ImageConfig, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with monkeypatch.context() as m:
        m.setattr(jpeg_turbo, "simplejpeg", None)
        return decode_with_box(data, config)


def _assert_same_as_pillow(data: bytes, config: ImageConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = decode_module._decode_jpeg_turbo(data, config)
    assert fast is not None, "the fast path should take this JPEG"
    slow = _pillow_path(data, config, monkeypatch)
    assert fast[0].mode == slow[0].mode and fast[0].size == slow[0].size
    assert np.array_equal(np.asarray(fast[0]), np.asarray(slow[0]))
    assert fast[1:] == slow[1:]  # original size and content box
    assert decode_with_box(data, config)[1:] == slow[1:]


KINDS = {
    "rgb-420": lambda: _jpeg(factory.pattern(1001, 603, 1)),
    "rgb-444": lambda: _jpeg(factory.pattern(640, 480, 2), subsampling=0),
    "rgb-422": lambda: _jpeg(factory.pattern(517, 389, 3), subsampling=1),
    "progressive": lambda: _jpeg(factory.pattern(800, 600, 4), progressive=True),
    "gray": lambda: _jpeg(factory.gray_pattern(700, 500, 5)),
    "small": lambda: _jpeg(factory.pattern(40, 30, 6)),
    "exact-eighth": lambda: _jpeg(factory.pattern(512, 512, 7)),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("config", [
    ImageConfig(size_px=64),
    ImageConfig(size_px=64, channels=1),
    ImageConfig(size_px=64, resize="pad"),
    ImageConfig(size_px=48, resize="stretch", draft_gap=2.0),
    ImageConfig(size_px=64, draft=False),
], ids=["crop", "gray", "pad", "stretch-gap2", "no-draft"])
def test_same_pixels_as_pillow(kind: str, config: ImageConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    _assert_same_as_pillow(KINDS[kind](), config, monkeypatch)


def _prepared(data: bytes, config: ImageConfig) -> tuple:
    p = prepare_image(data, None, config)
    native = None if p.native_luma is None else p.native_luma.tobytes()
    return p.pixels.shape, p.pixels.tobytes(), p.original_width, p.original_height, p.upscale, native


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("config", [
    ImageConfig(size_px=64),
    ImageConfig(size_px=64, channels=1),
    ImageConfig(size_px=64, resize="pad"),
    ImageConfig(size_px=40, resize="stretch"),
    ImageConfig(size_px=64, draft=False),
], ids=["crop", "gray", "pad", "stretch-40", "no-draft"])
def test_prepared_images_same_as_through_pillow(kind: str, config: ImageConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    # prepare_image skips Pillow for pixels decoded upright at the output
    # size (exact-eighth at 64 px, small at 40 px native): same result as
    # through Pillow's decoder, native tile and sizes included.
    data = KINDS[kind]()
    fast = _prepared(data, config)
    with monkeypatch.context() as m:
        m.setattr(jpeg_turbo, "simplejpeg", None)
        assert fast == _prepared(data, config)


def test_an_upright_jpeg_at_the_output_size_is_fitted_without_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    data = KINDS["exact-eighth"]()
    assert decode_module.decode_upright_jpeg(data, ImageConfig(size_px=64)) is not None

    def no_pillow(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pillow was asked to wrap pixels that needed no fitting")

    monkeypatch.setattr(fit_module, "image_from_array", no_pillow)
    monkeypatch.setattr(fit_module, "decode_with_box", no_pillow)
    assert prepare_image(data, None, ImageConfig(size_px=64)).pixels.shape == (64, 64, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_same_as_pillow(tmp_path: Path, orientation: int, monkeypatch: pytest.MonkeyPatch) -> None:
    w = factory.write_exif_rotated(tmp_path / "r.jpg", orientation, size=(1001, 603), content=factory.pattern(1001, 603, 8))
    data = w.path.read_bytes()
    assert jpeg_turbo.exif_orientation(data) == orientation
    for config in (ImageConfig(size_px=64), ImageConfig(size_px=64, resize="pad", channels=1)):
        _assert_same_as_pillow(data, config, monkeypatch)


def test_big_endian_exif(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow writes little-endian EXIF; cameras also write big-endian ("MM").
    ifd = (1).to_bytes(2, "big") + (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
    ifd += (6).to_bytes(2, "big") + b"\x00\x00" + (0).to_bytes(4, "big")
    tiff = b"MM\x00\x2a" + (8).to_bytes(4, "big") + ifd
    data = _jpeg(factory.pattern(200, 120, 9), exif=b"Exif\x00\x00" + tiff)
    assert jpeg_turbo.exif_orientation(data) == 6
    _assert_same_as_pillow(data, ImageConfig(size_px=32), monkeypatch)


def test_out_of_range_orientation_is_upright(monkeypatch: pytest.MonkeyPatch) -> None:
    exif = Image.Exif()
    exif[0x0112] = 9
    data = _jpeg(factory.pattern(200, 120, 10), exif=exif.tobytes())
    assert jpeg_turbo.exif_orientation(data) == 9
    _assert_same_as_pillow(data, ImageConfig(size_px=32), monkeypatch)


def _with_app1(data: bytes, payload: bytes) -> bytes:
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:2] + segment + data[2:]


def test_files_pillow_must_decode_are_handed_over(tmp_path: Path) -> None:
    plain = _jpeg(factory.pattern(200, 120, 11))
    cmyk = factory.write_jpeg_cmyk(tmp_path / "c.jpg").path.read_bytes()
    assert jpeg_turbo.read_header(cmyk) is None
    xmp = _with_app1(plain, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta tiff:Orientation=\"6\"/>")
    assert jpeg_turbo.exif_orientation(xmp) is None
    exif = Image.Exif()
    exif[0x0112] = 3
    twice = _with_app1(_with_app1(plain, b"Exif\x00\x00" + exif.tobytes()), b"Exif\x00\x00" + exif.tobytes())
    assert jpeg_turbo.exif_orientation(twice) is None
    assert jpeg_turbo.exif_orientation(_with_app1(plain, b"Exif\x00\x00II*\x00\xff\xff\x00\x00")) is None
    assert jpeg_turbo.exif_orientation(plain[:40]) is None  # no image data at all
    assert jpeg_turbo.read_header(b"\x89PNG\r\n\x1a\n") is None
    truncated = factory.write_truncated_jpeg(tmp_path / "t.jpg").path.read_bytes()
    header = jpeg_turbo.read_header(truncated)
    assert header is not None
    assert jpeg_turbo.decode(truncated, header[:2], 1, gray=False) is None


def test_xmp_orientation_still_applied(tmp_path: Path) -> None:
    # Pillow reads the orientation from XMP when EXIF has none; so must we.
    stored = factory.quadrants(60, 40)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description tiff:Orientation=\"3\"/></x:xmpmeta>"
    data = _with_app1(_jpeg(stored, quality=95), xmp)
    image, original, _ = decode_with_box(data, ImageConfig(size_px=32))
    assert original == (60, 40)
    assert np.abs(np.asarray(image).astype(int) - stored[::-1, ::-1]).mean() < 4


def test_exif_orientation_wins_over_xmp(monkeypatch: pytest.MonkeyPatch) -> None:
    # Phones often write both; Pillow only reads XMP when EXIF has no orientation.
    exif = Image.Exif()
    exif[0x0112] = 6
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><rdf:Description tiff:Orientation=\"3\"/></x:xmpmeta>"
    data = _with_app1(_jpeg(factory.pattern(300, 200, 13), exif=exif.tobytes()), xmp)
    assert jpeg_turbo.exif_orientation(data) == 6
    _assert_same_as_pillow(data, ImageConfig(size_px=32), monkeypatch)


def test_truncated_and_bomb_rejections_match_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    truncated = factory.write_truncated_jpeg(tmp_path / "t.jpg").path.read_bytes()
    with pytest.raises(ImageRejected) as fast:
        decode_with_box(truncated, ImageConfig())
    with pytest.raises(ImageRejected) as slow:
        _pillow_path(truncated, ImageConfig(), monkeypatch)
    assert fast.value.reason == slow.value.reason == "corrupt"
    assert fast.value.detail == slow.value.detail
    # Small JPEGs whose frame headers declare 20000 x 4000 (over our limit)
    # and 20000 x 20000 (over Pillow's hard limit too).
    for height in (4000, 20000):
        data = bytearray(_jpeg(factory.pattern(64, 48, 12)))
        sof = data.index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + (20000).to_bytes(2, "big")
        config = ImageConfig(max_pixels=50_000_000)
        with pytest.raises(ImageRejected) as fast:
            decode_with_box(bytes(data), config)
        with pytest.raises(ImageRejected) as slow:
            _pillow_path(bytes(data), config, monkeypatch)
        assert fast.value.reason == slow.value.reason == "decompression_bomb"
        assert fast.value.detail == slow.value.detail


def test_mpo_first_picture_same_as_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = factory.write_mpo(tmp_path / "m.jpg", size=(640, 480)).path.read_bytes()
    _assert_same_as_pillow(data, dataclasses.replace(ImageConfig(), size_px=64), monkeypatch)
