"""Fitting decoded images to the square target size, end to end through prepare_image."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from gandata.config import ImageConfig, build_config_from_mapping
from gandata.errors import ConfigError
from gandata.image.decode import ImageRejected
from gandata.image.fit import PreparedImage, fit_to_square, prepare_image
from tests.common import imagefactory as factory

RESIZES = ["crop", "pad", "stretch"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, factory.Written]:
    directory = tmp_path_factory.mktemp("kinds")
    return {kind: factory.write_kind(directory, kind) for kind in factory.KINDS}


@contextlib.contextmanager
def no_resampling() -> Iterator[None]:
    """Fail the test if any resampling happens inside the block."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("resampling was called for a pass-through image")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Image.Image, "resize", forbidden)
        mp.setattr(Image.Image, "reduce", forbidden)
        yield


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(a: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int32) - b.astype(np.int32)).mean())


def _check_output(p: PreparedImage, size: int, channels: int) -> None:
    assert isinstance(p.pixels, np.ndarray)
    assert p.pixels.dtype == np.uint8
    assert p.pixels.shape == (size, size, channels)
    assert p.pixels.flags.c_contiguous
    assert p.pixels.flags.writeable


# -- shapes over formats x modes x resize modes x channels --------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("kind", sorted(factory.KINDS))
def test_every_kind_fits(written: dict[str, factory.Written], kind: str, resize: str, channels: int) -> None:
    w = written[kind]
    config = ImageConfig(size_px=48, resize=resize, channels=channels)
    p = prepare_image(w.path.read_bytes(), None, config)
    _check_output(p, 48, channels)
    assert (p.original_width, p.original_height) == (w.expected.shape[1], w.expected.shape[0])
    assert p.upscale == 1.0
    # The content survives: compare with a reference fit of the expected pixels.
    reference = prepare_image(None, w.expected_rgb(), config)
    assert _mad(p.pixels, reference.pixels) < (6.0 if w.lossy else 1.0)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("source", [(96, 72), (72, 96), (64, 64), (300, 40), (17, 200), (640, 480)])
def test_shapes_and_upscale(resize: str, channels: int, source: tuple[int, int]) -> None:
    w, h = source
    config = ImageConfig(size_px=64, resize=resize, channels=channels, max_upscale=8.0)
    p = prepare_image(None, factory.pattern(w, h, 1), config)
    _check_output(p, 64, channels)
    assert (p.original_width, p.original_height) == source
    needed = {"crop": 64 / min(w, h), "pad": 64 / max(w, h), "stretch": max(64 / w, 64 / h)}[resize]
    assert p.upscale == pytest.approx(max(needed, 1.0))


def test_prepared_image_is_frozen() -> None:
    p = prepare_image(None, factory.pattern(64, 64, 1), ImageConfig())
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.upscale = 2.0  # type: ignore[misc]


# -- pass-through -----------------------------------------------------------------------------


@pytest.mark.parametrize("resize", RESIZES)
def test_equal_size_array_passes_through(resize: str) -> None:
    a = factory.pattern(64, 64, 2)
    with no_resampling():
        p = prepare_image(None, a, ImageConfig(size_px=64, resize=resize))
    assert np.array_equal(p.pixels, a)


def test_mnist_like_passes_through() -> None:
    digit = np.random.default_rng(0).integers(0, 256, size=(28, 28), dtype=np.uint8)
    for array in (digit, digit[..., None]):
        with no_resampling():
            p = prepare_image(None, array, ImageConfig(size_px=28, channels=1, min_size_px=16))
        assert p.pixels.shape == (28, 28, 1)
        assert np.array_equal(p.pixels[..., 0], digit)
    with no_resampling():
        rgb = prepare_image(None, digit, ImageConfig(size_px=28, channels=3))
    assert np.array_equal(rgb.pixels, np.repeat(digit[..., None], 3, axis=2))


@pytest.mark.parametrize("resize", RESIZES)
def test_equal_size_png_passes_through(resize: str) -> None:
    a = factory.pattern(64, 64, 3)
    data = _png(a)
    with no_resampling():
        p = prepare_image(data, None, ImageConfig(size_px=64, resize=resize))
    assert np.array_equal(p.pixels, a)


def test_equal_short_side_crops_without_resampling() -> None:
    a = factory.pattern(64, 81, 4)  # 17 extra rows: integer offset 8
    b = factory.pattern(90, 64, 5)
    with no_resampling():
        p = prepare_image(None, a, ImageConfig(size_px=64))
    assert np.array_equal(p.pixels, a[8:72])
    with no_resampling():
        p = prepare_image(None, b, ImageConfig(size_px=64))
    assert np.array_equal(p.pixels, b[:, 13:77])


def test_equal_long_side_pads_without_resampling() -> None:
    a = factory.pattern(40, 64, 6)
    with no_resampling():
        p = prepare_image(None, a, ImageConfig(size_px=64, resize="pad", fill=(1, 2, 3)))
    assert np.array_equal(p.pixels[:, 12:52], a)
    assert np.all(p.pixels[:, :12] == (1, 2, 3)) and np.all(p.pixels[:, 52:] == (1, 2, 3))


# -- geometry of each resize mode ---------------------------------------------------------------


def _stripes(width: int, height: int, axis: int) -> np.ndarray:
    """Thirds along ``axis`` (1 = left/middle/right) in red, green, blue."""
    a = np.empty((height, width, 3), np.uint8)
    n = a.shape[axis]
    for i, colour in enumerate((factory.RED, factory.GREEN, factory.BLUE)):
        sl = slice(i * n // 3, (i + 1) * n // 3 if i < 2 else n)
        if axis == 1:
            a[:, sl] = colour
        else:
            a[sl] = colour
    return a


@pytest.mark.parametrize("axis", [0, 1])
def test_crop_is_centred(axis: int) -> None:
    # The long side is 3x the short one, so the centre crop is the middle third.
    shape = (240, 80) if axis == 1 else (80, 240)
    p = prepare_image(None, _stripes(*shape, axis=axis), ImageConfig(size_px=32))
    inner = p.pixels[4:-4, 4:-4]
    assert np.abs(inner.astype(int) - np.array(factory.GREEN)).max() <= 2


@pytest.mark.parametrize("fill", [(0, 0, 0), (255, 255, 255), (10, 200, 30)])
@pytest.mark.parametrize("channels", [3, 1])
def test_pad_letterbox_fill(fill: tuple[int, int, int], channels: int) -> None:
    a = np.full((64, 128, 3), 128, np.uint8)  # 2:1 landscape -> 64 x 32 content
    p = prepare_image(None, a, ImageConfig(size_px=64, resize="pad", fill=fill, channels=channels))
    want = np.array(fill) if channels == 3 else Image.new("RGB", (1, 1), fill).convert("L").getpixel((0, 0))
    assert np.all(p.pixels[:16] == want)
    assert np.all(p.pixels[48:] == want)
    assert np.all(np.abs(p.pixels[18:46].astype(int) - 128) <= 1)


def test_pad_portrait_bars_left_and_right() -> None:
    a = np.full((300, 100, 3), 200, np.uint8)
    p = prepare_image(None, a, ImageConfig(size_px=60, resize="pad", fill=(9, 9, 9)))
    assert np.all(p.pixels[:, :20] == 9) and np.all(p.pixels[:, 40:] == 9)
    assert np.all(np.abs(p.pixels[2:-2, 22:38].astype(int) - 200) <= 1)


def test_stretch_keeps_everything() -> None:
    a = _stripes(240, 60, axis=1)
    p = prepare_image(None, a, ImageConfig(size_px=60, resize="stretch"))
    for i, colour in enumerate((factory.RED, factory.GREEN, factory.BLUE)):
        block = p.pixels[:, i * 20 + 3 : (i + 1) * 20 - 3]
        assert np.abs(block.astype(int) - np.array(colour)).max() <= 2


def test_downscale_is_antialiased() -> None:
    # A 1-pixel checkerboard has no content at the target resolution: a
    # proper low-pass downscale gives flat mid-gray, point sampling gives noise.
    yy, xx = np.mgrid[0:512, 0:512]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    p = prepare_image(None, board, ImageConfig(size_px=64, channels=1))
    assert abs(float(p.pixels.mean()) - 127.5) < 2
    assert float(p.pixels.std()) < 3


def test_upscale_is_smooth() -> None:
    a = factory.pattern(32, 32, 8)
    p = prepare_image(None, a, ImageConfig(size_px=64))
    assert p.upscale == 2.0
    reference = np.asarray(Image.fromarray(a).resize((64, 64), Image.Resampling.BICUBIC))
    assert _mad(p.pixels, reference) < 1.0


def test_fit_to_square_accepts_any_mode() -> None:
    rgba = Image.new("RGBA", (100, 80), (255, 0, 0, 0))
    p = fit_to_square(rgba, rgba.size, ImageConfig(size_px=32, background=(0, 0, 255)))
    assert np.all(p.pixels == (0, 0, 255))
    assert (p.original_width, p.original_height) == (100, 80)


# -- size limits -----------------------------------------------------------------------------------


def test_tiny_image_is_too_small(tmp_path: Path) -> None:
    data = factory.write_tiny_png(tmp_path / "tiny.png").path.read_bytes()
    with pytest.raises(ImageRejected) as info:
        prepare_image(data, None, ImageConfig())
    assert info.value.reason == "too_small"
    assert "8" in info.value.detail and "16" in info.value.detail


@pytest.mark.parametrize("resize", RESIZES)
def test_min_size_applies_to_shorter_original_side(resize: str) -> None:
    with pytest.raises(ImageRejected) as info:
        prepare_image(None, factory.pattern(300, 15, 1), ImageConfig(size_px=16, resize=resize))
    assert info.value.reason == "too_small" and "15" in info.value.detail


@pytest.mark.parametrize(("resize", "source", "ok"), [
    ("crop", (16, 40), True),  # exactly 4x
    ("crop", (20, 40), True),
    ("crop", (16, 15), False),
    ("pad", (16, 16), True),
    ("pad", (30, 15), True),  # 64 / 30 < 4 although the short side needs more
    ("stretch", (100, 16), True),
    ("crop", (17, 17), True),
])
def test_max_upscale(resize: str, source: tuple[int, int], ok: bool) -> None:
    config = ImageConfig(size_px=64, resize=resize, min_size_px=8, max_upscale=4.0)
    array = factory.pattern(*source, 2)
    if ok:
        p = prepare_image(None, array, config)
        assert 1.0 < p.upscale <= 4.0
    else:
        with pytest.raises(ImageRejected) as info:
            prepare_image(None, array, config)
        assert info.value.reason == "too_small"
        assert "max-upscale" in info.value.detail


def test_too_much_upscale_rejected() -> None:
    with pytest.raises(ImageRejected) as info:
        prepare_image(None, factory.pattern(20, 20, 1), ImageConfig(size_px=128))
    assert info.value.reason == "too_small"
    assert "6.40x" in info.value.detail


# -- reduced-scale JPEG decoding ------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_jpeg() -> tuple[np.ndarray, bytes]:
    # Sizes not divisible by the draft scale exercise the partial edge block.
    a = factory.pattern(1001, 603, 9)
    return a, _jpeg(a)


# Mean absolute difference to a full decode + Lanczos, by --draft-gap: gap 2
# leaves Lanczos a 2x reduction (close to exact); gap 1 lets the DCT's block
# average do nearly all of it (a little softer on this busy pattern).
DRAFT_GAP_MAD = {1.0: 1.0, 2.0: 0.6}


@pytest.mark.parametrize("gap", sorted(DRAFT_GAP_MAD))
@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("resize", RESIZES)
def test_draft_matches_full_decode(odd_jpeg: tuple[np.ndarray, bytes], resize: str, channels: int, gap: float) -> None:
    _, data = odd_jpeg
    config = ImageConfig(size_px=64, resize=resize, channels=channels, draft_gap=gap)
    fast = prepare_image(data, None, config)
    slow = prepare_image(data, None, dataclasses.replace(config, draft=False))
    assert (fast.original_width, fast.original_height) == (1001, 603)
    assert _mad(fast.pixels, slow.pixels) < DRAFT_GAP_MAD[gap]


@pytest.mark.parametrize("gap", sorted(DRAFT_GAP_MAD))
@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("resize", ["crop", "pad"])
def test_draft_with_exif_orientation(tmp_path: Path, orientation: int, resize: str, gap: float) -> None:
    content = factory.pattern(1001, 603, 10)
    w = factory.write_exif_rotated(tmp_path / "r.jpg", orientation, content=content)
    data = w.path.read_bytes()
    config = ImageConfig(size_px=64, resize=resize, draft_gap=gap)
    fast = prepare_image(data, None, config)
    slow = prepare_image(data, None, dataclasses.replace(config, draft=False))
    upright = prepare_image(None, content, config)
    assert (fast.original_width, fast.original_height) == (1001, 603)
    assert _mad(fast.pixels, slow.pixels) < DRAFT_GAP_MAD[gap]
    assert _mad(fast.pixels, upright.pixels) < 3.0


def test_draft_at_exact_target_scale_is_the_block_average(tmp_path: Path) -> None:
    # 512 -> 64 with gap 1 decodes at 1/8 scale: every output pixel is the DC
    # term of its 8x8 block, i.e. an area downscale of the full decode (up to
    # the chroma upsampling, done at the reduced scale).
    data = _jpeg(factory.pattern(512, 512, 11))
    fast = prepare_image(data, None, ImageConfig(size_px=64))
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float64)
    area = full.reshape(64, 8, 64, 8, 3).mean(axis=(1, 3))
    assert _mad(fast.pixels, area) < 1.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_prepared_output_is_upright(tmp_path: Path, orientation: int) -> None:
    w = factory.write_exif_rotated(tmp_path / "q.jpg", orientation, size=(120, 80))
    p = prepare_image(w.path.read_bytes(), None, ImageConfig(size_px=32, resize="stretch"))
    a = p.pixels
    assert np.abs(a[6, 6].astype(int) - np.array(factory.RED)).max() < 40
    assert np.abs(a[6, 26].astype(int) - np.array(factory.GREEN)).max() < 40
    assert np.abs(a[26, 16].astype(int) - np.array(factory.BLUE)).max() < 40
    assert (p.original_width, p.original_height) == (120, 80)


# -- arrays and errors ------------------------------------------------------------------------------


def test_array_alpha_composited() -> None:
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., 0] = 255
    a[:, 32:, 3] = 255  # right half opaque red, left half transparent
    p = prepare_image(None, a, ImageConfig(size_px=64, background=(0, 0, 255)))
    assert np.all(p.pixels[:, :32] == (0, 0, 255))
    assert np.all(p.pixels[:, 32:] == (255, 0, 0))


def test_array_float_and_uint16() -> None:
    f = np.full((32, 32, 3), 0.5, np.float32)
    assert np.all(prepare_image(None, f, ImageConfig(size_px=32)).pixels == 128)
    u = np.full((32, 32), 65535, np.uint16)
    assert np.all(prepare_image(None, u, ImageConfig(size_px=32, channels=1)).pixels == 255)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "corrupt"),
    (b"not an image at all", "corrupt"),
    (factory.png_with_declared_size(50_000, 50_000), "decompression_bomb"),
])
def test_prepare_image_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        prepare_image(data, None, ImageConfig())
    assert info.value.reason == reason


def test_prepare_image_needs_exactly_one_input() -> None:
    with pytest.raises(ValueError):
        prepare_image(None, None, ImageConfig())
    with pytest.raises(ValueError):
        prepare_image(b"x", np.zeros((4, 4), np.uint8), ImageConfig())


def test_messy_folder(tmp_path: Path) -> None:
    """Every file of the shared messy folder gets its expected outcome here
    (the decode/fit-level ones; hidden, unsupported and duplicate are decided
    by the pipeline)."""
    expected = factory.write_messy_folder(tmp_path)
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == set(expected)
    assert set(expected.values()) <= {"ok", "corrupt", "decompression_bomb", "too_small", "duplicate",
                                      "hidden", "unsupported"}
    assert factory.MESSY_GRAYSCALE <= {k for k, v in expected.items() if v == "ok"}
    digests = {}
    for rel, outcome in expected.items():
        if outcome in ("hidden", "unsupported"):
            continue
        try:
            p = prepare_image((tmp_path / rel).read_bytes(), None, ImageConfig())
        except ImageRejected as exc:
            assert exc.reason == outcome, rel
        else:
            assert outcome in ("ok", "duplicate"), rel
            digests.setdefault(p.pixels.tobytes(), []).append(rel)
    duplicates = [sorted(v) for v in digests.values() if len(v) > 1]
    assert duplicates == [["cats/dup_a.png", "cats/dup_b.png"]]


@pytest.mark.parametrize("value", [0.5, 9, "2"])
def test_bad_draft_gap_names_the_option(value: object) -> None:
    with pytest.raises(ConfigError, match="draft.gap"):
        build_config_from_mapping({"image": {"draft_gap": value}})


def test_draft_gap_flag_reaches_the_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", "synth:shapes?count=8", "-o", str(tmp_path / "o"), "--draft-gap", "2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"draft_gap": 2.0' in result.output
