"""Decoding real files of every supported format and mode, and refusing bad ones."""

from __future__ import annotations

import io
import pickle
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from gandata.config import ImageConfig
from gandata.image.decode import (
    ImageRejected,
    convert_to_target,
    decode_bytes,
    image_from_array,
    looks_like_image,
    luma,
)
from tests.common import imagefactory as factory


@pytest.fixture(scope="module")
def kinds_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kinds")


@pytest.fixture(scope="module")
def written(kinds_dir: Path) -> dict[str, factory.Written]:
    return {kind: factory.write_kind(kinds_dir, kind) for kind in factory.KINDS}


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def _maxdiff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def _rejected(data: bytes, config: ImageConfig | None = None) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        decode_bytes(data, config or ImageConfig())
    return info.value


# -- every format and mode ----------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("kind", sorted(factory.KINDS))
def test_decodes_every_kind(written: dict[str, factory.Written], kind: str, channels: int) -> None:
    w = written[kind]
    config = ImageConfig(channels=channels, draft=False)
    image, original = decode_bytes(w.path.read_bytes(), config)
    expected = w.expected_rgb() if channels == 3 else w.expected_l()
    height, width = expected.shape[:2]
    assert image.mode == ("RGB" if channels == 3 else "L")
    assert image.size == (width, height)
    assert original == (width, height)
    got = np.asarray(image)
    if w.lossy:
        assert _mad(got, expected) < 6.0
    else:
        # Exact up to rounding (alpha blending, luma of composited colours).
        assert _maxdiff(got, expected) <= 1
    if w.gray and channels == 3:
        assert np.array_equal(got[..., 0], got[..., 1]) and np.array_equal(got[..., 1], got[..., 2])


@pytest.mark.parametrize("background", [(255, 255, 255), (10, 200, 30)])
@pytest.mark.parametrize("kind", ["png_rgba", "png_la", "png_p_index_transparency", "png_p_alpha_palette",
                                  "png_l_colorkey", "png_rgb_colorkey"])
@pytest.mark.parametrize("channels", [3, 1])
def test_alpha_is_composited_onto_background(written: dict[str, factory.Written], kind: str,
                                             background: tuple[int, int, int], channels: int) -> None:
    w = written[kind]
    config = ImageConfig(background=background, channels=channels)
    image, _ = decode_bytes(w.path.read_bytes(), config)
    got = np.asarray(image)
    expected = w.expected_rgb(background) if channels == 3 else w.expected_l(background)
    assert _maxdiff(got, expected) <= 1
    # Fully transparent pixels show exactly the background colour.
    assert w.alpha is not None
    clear = w.alpha == 0
    assert clear.any()
    want = np.asarray(background) if channels == 3 else luma(background)
    assert np.all(got[clear] == want)


def test_default_background_is_black(written: dict[str, factory.Written]) -> None:
    w = written["png_rgba"]
    image, _ = decode_bytes(w.path.read_bytes(), ImageConfig())
    assert np.all(np.asarray(image)[w.alpha == 0] == 0)


# -- orientation ------------------------------------------------------------------------


def _assert_upright_quadrants(a: np.ndarray) -> None:
    h, w = a.shape[:2]
    for (y, x), colour in (((h // 4, w // 4), factory.RED), ((h // 4, 3 * w // 4), factory.GREEN),
                           ((3 * h // 4, w // 2), factory.BLUE)):
        assert _maxdiff(a[y, x], np.asarray(colour)) < 40, (y, x, a[y, x], colour)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    w = factory.write_exif_rotated(tmp_path / "o.jpg", orientation, size=(96, 64))
    data = w.path.read_bytes()
    image, original = decode_bytes(data, ImageConfig(draft=False))
    assert image.size == (96, 64)
    assert original == (96, 64)
    got = np.asarray(image)
    _assert_upright_quadrants(got)
    # Same pixels as Pillow's own exif_transpose.
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert np.array_equal(got, np.asarray(reference))


@pytest.mark.parametrize("orientation", [2, 5, 6, 7, 8])
def test_exif_orientation_with_draft_reports_upright_original_size(tmp_path: Path, orientation: int) -> None:
    w = factory.write_exif_rotated(tmp_path / "o.jpg", orientation, size=(1000, 600))
    image, original = decode_bytes(w.path.read_bytes(), ImageConfig(size_px=64))
    assert original == (1000, 600)
    assert image.size[0] > image.size[1]  # upright landscape
    assert image.size[0] < 1000  # and decoded reduced
    _assert_upright_quadrants(np.asarray(image))


def test_png_exif_orientation(written: dict[str, factory.Written]) -> None:
    w = written["png_exif_rotated"]
    image, original = decode_bytes(w.path.read_bytes(), ImageConfig())
    assert original == (factory.W, factory.H)
    _assert_upright_quadrants(np.asarray(image))


def test_broken_exif_does_not_reject(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(factory.pattern(40, 30, 5)).save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    image, original = decode_bytes(buf.getvalue(), ImageConfig())
    assert original == (40, 30)


# -- high bit depth, float, bilevel ----------------------------------------------------


@pytest.mark.parametrize("kind", ["png_i16", "tiff_i16"])
def test_16bit_is_scaled_not_clipped(written: dict[str, factory.Written], kind: str) -> None:
    image, _ = decode_bytes(written[kind].path.read_bytes(), ImageConfig(channels=1))
    a = np.asarray(image)
    assert np.all(a[:, 0] == 0)
    assert np.all(a[:, -1] == 255)
    assert np.all(a[0, 1:-1] == 128)  # 32768 / 257 = 127.5 -> 128, not clipped to 255
    assert 60 < a.mean() < 200


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_integer_modes_scale_from_16_bit(mode: str) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    if mode == "I":
        image = Image.fromarray(values.astype(np.int32))
    else:
        dtype = ">u2" if mode == "I;16B" else "<u2"
        image = Image.frombytes(mode, (4, 1), values.astype(dtype).tobytes())
    assert image.mode == mode
    got = np.asarray(convert_to_target(image, ImageConfig(channels=1)))
    assert got.tolist() == [[0, 1, 128, 255]]


def test_int32_outside_16_bit_is_clipped() -> None:
    image = Image.fromarray(np.array([[-5, 70000]], dtype=np.int32))
    assert np.asarray(convert_to_target(image, ImageConfig(channels=1))).tolist() == [[0, 255]]


def test_float_mode_ranges() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0, np.nan]], dtype=np.float32))
    assert np.asarray(convert_to_target(unit, ImageConfig(channels=1))).tolist() == [[0, 128, 255, 0]]
    wide = Image.fromarray(np.array([[-3.0, 100.4, 255.0, 300.0]], dtype=np.float32))
    assert np.asarray(convert_to_target(wide, ImageConfig(channels=1))).tolist() == [[0, 100, 255, 255]]
    rgb = np.asarray(convert_to_target(unit, ImageConfig(channels=3)))
    assert rgb.shape == (1, 4, 3) and rgb[0, 1].tolist() == [128, 128, 128]


def test_bilevel_becomes_0_and_255(written: dict[str, factory.Written]) -> None:
    for kind in ("png_1bit", "pbm"):
        image, _ = decode_bytes(written[kind].path.read_bytes(), ImageConfig(channels=1))
        assert set(np.unique(np.asarray(image)).tolist()) == {0, 255}


def test_cmyk_jpeg_converts_to_rgb(written: dict[str, factory.Written]) -> None:
    w = written["jpeg_cmyk"]
    assert Image.open(w.path).mode == "CMYK"
    image, _ = decode_bytes(w.path.read_bytes(), ImageConfig())
    assert image.mode == "RGB"
    assert _mad(np.asarray(image), w.expected_rgb()) < 4.0


@pytest.mark.parametrize("mode", ["La", "RGBa", "PA", "YCbCr", "HSV", "RGBX", "LAB"])
def test_unusual_modes_convert(mode: str) -> None:
    image = Image.new(mode, (8, 6))
    for channels in (1, 3):
        out = convert_to_target(image, ImageConfig(channels=channels))
        assert out.mode == ("L" if channels == 1 else "RGB")
        assert out.size == (8, 6)


def test_unconvertible_mode_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    image = Image.new("LAB", (4, 4))
    original_convert = Image.Image.convert

    def failing_convert(self: Image.Image, mode: str | None = None, *args: object, **kwargs: object) -> Image.Image:
        if self.mode == "LAB":
            raise ValueError("conversion from LAB to RGB not supported")
        return original_convert(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "convert", failing_convert)
    with pytest.raises(ImageRejected) as info:
        convert_to_target(image, ImageConfig())
    assert info.value.reason == "unsupported" and "LAB" in info.value.detail


def test_grayscale_target_uses_pillow_luma(written: dict[str, factory.Written]) -> None:
    w = written["png_rgb"]
    image, _ = decode_bytes(w.path.read_bytes(), ImageConfig(channels=1))
    assert np.array_equal(np.asarray(image), np.asarray(Image.fromarray(w.expected).convert("L")))


# -- animation -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [k for k in ("gif_animated", "apng", "webp_animated") if k in factory.KINDS])
def test_animation_gives_first_frame(written: dict[str, factory.Written], kind: str) -> None:
    w = written[kind]
    with Image.open(w.path) as im:
        assert getattr(im, "n_frames", 1) > 1
        im.seek(1)
        second = np.asarray(im.convert("RGB"))
    image, _ = decode_bytes(w.path.read_bytes(), ImageConfig())
    got = np.asarray(image)
    assert np.array_equal(got, w.expected)
    assert _mad(got, second) > 10


# -- reduced-scale JPEG decoding -----------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg(kinds_dir: Path) -> bytes:
    return factory.write_jpeg_rgb(kinds_dir / "big.jpg", seed=77, size=(1024, 768), quality=90).path.read_bytes()


@pytest.mark.parametrize(("resize", "channels", "gap", "expected_size", "expected_mode"), [
    ("crop", 3, 1.0, (128, 96), "RGB"),
    ("stretch", 3, 1.0, (128, 96), "RGB"),
    ("pad", 3, 1.0, (128, 96), "RGB"),
    ("crop", 1, 1.0, (128, 96), "L"),
    ("crop", 3, 2.0, (256, 192), "RGB"),
    ("stretch", 3, 2.0, (256, 192), "RGB"),
    ("pad", 3, 2.0, (128, 96), "RGB"),
    ("crop", 1, 2.0, (256, 192), "L"),
])
def test_draft_reduces_decode(big_jpeg: bytes, resize: str, channels: int, gap: float,
                              expected_size: tuple[int, int], expected_mode: str) -> None:
    config = ImageConfig(size_px=64, resize=resize, channels=channels, draft_gap=gap)
    image, original = decode_bytes(big_jpeg, config)
    assert original == (1024, 768)
    assert image.size == expected_size
    assert image.mode == expected_mode
    shorter, longer = min(image.size), max(image.size)
    assert (longer if resize == "pad" else shorter) >= gap * 64


@pytest.mark.parametrize("gap", [1.0, 1.5, 2.0, 3.0])
def test_draft_keeps_gap_times_the_target(big_jpeg: bytes, gap: float) -> None:
    for size in (4, 32, 100, 200, 384, 512, 1024):
        image, _ = decode_bytes(big_jpeg, ImageConfig(size_px=size, draft_gap=gap))
        assert min(image.size) >= min(gap * size, 768)


def test_draft_off_decodes_full_size(big_jpeg: bytes) -> None:
    image, original = decode_bytes(big_jpeg, ImageConfig(draft=False))
    assert image.size == original == (1024, 768)


def test_draft_only_for_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(factory.pattern(1024, 768, 3)).save(path, compress_level=1)
    image, _ = decode_bytes(path.read_bytes(), ImageConfig())
    assert image.size == (1024, 768)


def test_mpo_first_picture_is_drafted(tmp_path: Path) -> None:
    w = factory.write_mpo(tmp_path / "stereo.jpg", size=(1024, 768))
    data = w.path.read_bytes()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    image, original = decode_bytes(data, ImageConfig(size_px=64))
    assert original == (1024, 768) and image.size == (128, 96)
    reference = Image.fromarray(w.expected).resize(image.size, Image.Resampling.LANCZOS)
    assert _mad(np.asarray(image), np.asarray(reference)) < 3.0


def test_draft_pixels_close_to_full_decode(big_jpeg: bytes) -> None:
    drafted, _ = decode_bytes(big_jpeg, ImageConfig(size_px=64))
    full, _ = decode_bytes(big_jpeg, ImageConfig(size_px=64, draft=False))
    reference = full.resize(drafted.size, Image.Resampling.LANCZOS)
    assert _mad(np.asarray(drafted), np.asarray(reference)) < 3.0


# -- rejections --------------------------------------------------------------------------


def test_empty_file_is_corrupt() -> None:
    exc = _rejected(b"")
    assert exc.reason == "corrupt" and exc.detail == "empty file"


@pytest.mark.parametrize("writer", [factory.write_truncated_jpeg, factory.write_truncated_png])
def test_truncated_is_corrupt(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    w = writer(tmp_path / "t.img")
    exc = _rejected(w.path.read_bytes())
    assert exc.reason == "corrupt"
    assert exc.detail


def test_garbage_is_corrupt(tmp_path: Path) -> None:
    data = factory.write_garbage(tmp_path / "g.jpg").path.read_bytes()
    assert not looks_like_image(data)
    exc = _rejected(data)
    assert exc.reason == "corrupt"


def test_text_is_corrupt() -> None:
    exc = _rejected(b"hello, this is not an image\n" * 10)
    assert exc.reason == "corrupt"
    assert "0x" not in exc.detail  # deterministic: no object addresses


def test_bomb_over_our_limit_is_refused_before_loading() -> None:
    # 10000 x 10000 = 100 M: above max_pixels (40 M) but below Pillow's error
    # limit. The file only holds one pixel, so loading it would say "corrupt".
    exc = _rejected(factory.png_with_declared_size(10_000, 10_000))
    assert exc.reason == "decompression_bomb"
    # Pillow's own warning (at ~89.5 M) fires first inside Image.open.
    assert "100000000 pixels" in exc.detail


def test_bomb_over_pillow_error_limit() -> None:
    exc = _rejected(factory.png_with_declared_size(100_000, 100_000), ImageConfig(max_pixels=10**12))
    assert exc.reason == "decompression_bomb"


def test_pillow_bomb_warning_becomes_rejection() -> None:
    # 9500^2 = 90.25 M is over Pillow's warning limit (~89.5 M); our limit here
    # is lower still, so the warning (raised inside Image.open) must reject.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may leak out of decode
        exc = _rejected(factory.png_with_declared_size(9_500, 9_500), ImageConfig(max_pixels=50_000_000))
    assert exc.reason == "decompression_bomb"


def test_raised_limit_overrides_pillow_warning() -> None:
    # With max_pixels above Pillow's warning limit, the user's limit wins: the
    # header passes, and the one-pixel body then fails to decode.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exc = _rejected(factory.png_with_declared_size(9_500, 9_500), ImageConfig(max_pixels=100_000_000))
    assert exc.reason == "corrupt"


def test_small_limit_rejects_real_image(written: dict[str, factory.Written]) -> None:
    exc = _rejected(written["png_rgb"].path.read_bytes(), ImageConfig(max_pixels=1000))
    assert exc.reason == "decompression_bomb"
    assert exc.detail == f"{factory.W} x {factory.H} = {factory.W * factory.H} pixels exceeds limit of 1000 (--max-pixels)"


def test_pillow_global_state_untouched() -> None:
    before = Image.MAX_IMAGE_PIXELS
    filters = list(warnings.filters)
    _rejected(factory.png_with_declared_size(9_500, 9_500), ImageConfig(max_pixels=50_000_000))
    _rejected(factory.png_with_declared_size(10_000, 10_000))
    assert Image.MAX_IMAGE_PIXELS == before
    assert list(warnings.filters) == filters


FUZZ_KINDS = ["jpeg_rgb", "jpeg_rgb_progressive", "png_rgba", "gif_animated", "tiff_rgb", "bmp", "ppm",
              "png_i16", "ico"] + (["webp_lossless"] if "webp_lossless" in factory.KINDS else [])


@pytest.mark.parametrize("kind", FUZZ_KINDS)
def test_damaged_files_never_crash(written: dict[str, factory.Written], kind: str) -> None:
    data = written[kind].path.read_bytes()
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    variants = [data[:n] for n in np.linspace(1, len(data) - 1, 12).astype(int)]
    for _ in range(25):
        damaged = bytearray(data)
        for pos in rng.integers(0, len(data), size=int(rng.integers(1, 8))):
            damaged[pos] = int(rng.integers(0, 256))
        variants.append(bytes(damaged))
    for variant in variants:
        for channels in (1, 3):
            try:
                image, original = decode_bytes(variant, ImageConfig(channels=channels))
            except ImageRejected as exc:
                assert exc.reason in ("corrupt", "decompression_bomb", "unsupported")
            else:
                assert image.mode == ("L" if channels == 1 else "RGB")
                assert min(original) >= 1


# -- sniffing ------------------------------------------------------------------------------


def test_looks_like_image(written: dict[str, factory.Written]) -> None:
    for kind, w in written.items():
        assert looks_like_image(w.path.read_bytes()), kind
    for not_image in (b"", b"BM", b"hello world", b"BMW is a car brand, not a bitmap" * 3, b"P5",
                      b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), b"RIFF\x00\x00\x00\x00WAVEfmt "):
        assert not looks_like_image(not_image), not_image


# -- arrays ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "mode"), [((5, 7), "L"), ((5, 7, 1), "L"), ((5, 7, 3), "RGB"), ((5, 7, 4), "RGBA")])
def test_image_from_array_shapes(shape: tuple[int, ...], mode: str) -> None:
    a = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    image = image_from_array(a)
    assert image.mode == mode and image.size == (7, 5)
    assert np.array_equal(np.asarray(image).reshape(shape), a)


def test_image_from_array_dtypes() -> None:
    assert np.asarray(image_from_array(np.array([[0.0, 0.5, 1.0]]))).tolist() == [[0, 128, 255]]
    assert np.asarray(image_from_array(np.array([[0.0, 100.0, 300.0]], dtype=np.float32))).tolist() == [[0, 100, 255]]
    assert np.asarray(image_from_array(np.array([[0, 32768, 65535]], dtype=np.uint16))).tolist() == [[0, 128, 255]]
    assert np.asarray(image_from_array(np.array([[False, True]]))).tolist() == [[0, 255]]
    assert np.asarray(image_from_array(np.array([[0, 7, 255]], dtype=np.int64))).tolist() == [[0, 7, 255]]
    # Non-contiguous views are fine.
    a = np.arange(60, dtype=np.uint8).reshape(6, 10)[:, ::2]
    assert np.array_equal(np.asarray(image_from_array(a)), a)


@pytest.mark.parametrize(("array", "reason", "fragment"), [
    (np.zeros((3, 32, 32), np.uint8), "unsupported", "channel-first"),
    (np.zeros((4, 4, 2), np.uint8), "unsupported", "HxW"),
    (np.zeros((2, 3, 4, 5), np.uint8), "unsupported", "HxW"),
    (np.zeros(7, np.uint8), "unsupported", "HxW"),
    (np.zeros((0, 5), np.uint8), "corrupt", "empty"),
    (np.array([[1.0, np.nan]]), "corrupt", "NaN"),
    (np.array([[1, 300]], dtype=np.int32), "unsupported", "0..255"),
    (np.zeros((2, 2), np.complex64), "unsupported", "dtype"),
    (np.array([["a", "b"]]), "unsupported", "dtype"),
])
def test_image_from_array_rejects(array: np.ndarray, reason: str, fragment: str) -> None:
    with pytest.raises(ImageRejected) as info:
        image_from_array(array)
    assert info.value.reason == reason
    assert fragment in info.value.detail


# -- the exception ----------------------------------------------------------------------------


def test_image_rejected_pickles_and_validates_reason() -> None:
    exc = ImageRejected("too_small", "shorter side 8 px")
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.reason, copy.detail) == ("too_small", "shorter side 8 px")
    assert "too_small" in str(copy)
    with pytest.raises(ValueError):
        ImageRejected("not_a_reason", "x")
