"""Write real, messy image files for tests.

Every ``write_*`` function writes one file and returns a ``Written`` record
holding the path and what a correct decoder must produce from it: the upright
RGB pixels (composited onto black when the file has transparency, with the
alpha kept separately so a test can composite onto another background), and
whether the format is lossy.

Content comes from ``pattern(width, height, seed)``: a smooth random colour
field with a few shapes and mild noise. Different seeds give visibly different
low-frequency structure, so files written with different seeds are neither
exact nor near duplicates, are not blank, dark, light or blurry, and survive
any reasonable quality filter.

``write_messy_folder(root)`` builds a whole labelled folder (class subfolders,
hidden files, non-images, corrupt files, a bomb, a tiny image, duplicates) and
returns the expected outcome per relative path, for pipeline tests.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, features

HAS_WEBP = features.check("webp")

# Upright reference for orientation tests: top-left red, top-right green,
# bottom half blue. Checking three regions catches rotations and mirrorings.
RED = (230, 20, 20)
GREEN = (20, 200, 20)
BLUE = (20, 20, 230)


@dataclass
class Written:
    """A file written by the factory and what decoding it must give."""

    path: Path
    # Upright RGB pixels, composited onto black where ``alpha`` is not None.
    expected: np.ndarray | None
    alpha: np.ndarray | None = None
    # Colour pixels before compositing (only for transparent files).
    color: np.ndarray | None = None
    lossy: bool = False
    gray: bool = False

    def expected_rgb(self, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Expected upright RGB pixels with alpha composited onto ``background``."""
        assert self.expected is not None
        if self.alpha is None:
            return self.expected
        assert self.color is not None
        a = self.alpha.astype(np.float64)[..., None] / 255.0
        bg = np.asarray(background, dtype=np.float64)
        return np.rint(self.color * a + bg * (1.0 - a)).astype(np.uint8)

    def expected_l(self, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """Expected grayscale pixels (Pillow's convert("L") luma)."""
        return np.asarray(Image.fromarray(self.expected_rgb(background)).convert("L"))


# -- content -------------------------------------------------------------------


def pattern(width: int, height: int, seed: int) -> np.ndarray:
    """A deterministic, textured RGB image (H, W, 3) uint8 unique to ``seed``."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(30, 226, size=(4, 4, 3), dtype=np.uint8)
    base = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    a = np.asarray(base).astype(np.int16)
    for _ in range(3):
        x0, y0 = rng.integers(0, max(1, width - 4)), rng.integers(0, max(1, height - 4))
        x1 = min(width, x0 + int(rng.integers(4, max(5, width // 2))))
        y1 = min(height, y0 + int(rng.integers(4, max(5, height // 2))))
        a[y0:y1, x0:x1] = rng.integers(0, 256, size=3)
    a += rng.integers(-6, 7, size=a.shape, dtype=np.int16)
    return np.clip(a, 0, 255).astype(np.uint8)


def gray_pattern(width: int, height: int, seed: int) -> np.ndarray:
    """``pattern`` reduced to luma, (H, W) uint8."""
    return np.asarray(Image.fromarray(pattern(width, height, seed)).convert("L"))


def quadrants(width: int, height: int) -> np.ndarray:
    """The upright orientation reference: red TL, green TR, blue bottom half."""
    a = np.empty((height, width, 3), dtype=np.uint8)
    a[: height // 2, : width // 2] = RED
    a[: height // 2, width // 2 :] = GREEN
    a[height // 2 :] = BLUE
    return a


def _rgb_of_gray(g: np.ndarray) -> np.ndarray:
    return np.repeat(g[..., None], 3, axis=2)


def _web_palette() -> list[int]:
    return [v * 51 for r in range(6) for g in range(6) for b in range(6) for v in (r, g, b)]


def _to_web_indices(rgb: np.ndarray) -> np.ndarray:
    q = (rgb.astype(np.uint16) + 25) // 51
    return (q[..., 0] * 36 + q[..., 1] * 6 + q[..., 2]).astype(np.uint8)


def _palette_image(rgb: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    """A P image on the 216-colour web palette, and the exact RGB it shows."""
    idx = _to_web_indices(rgb)
    img = Image.frombytes("P", (rgb.shape[1], rgb.shape[0]), idx.tobytes())
    img.putpalette(_web_palette())
    shown = (np.asarray(_web_palette(), dtype=np.uint8).reshape(-1, 3))[idx]
    return img, shown


def _alpha_ramp(width: int, height: int) -> np.ndarray:
    """Alpha: opaque left, transparent right, a ramp between; never all one value."""
    ramp = np.linspace(255, 0, width)
    a = np.tile(ramp, (height, 1))
    a[: height // 4] = 255
    return np.rint(a).astype(np.uint8)


def _composite_black(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.rint(color * a).astype(np.uint8)


# -- one file per format and mode -----------------------------------------------------

W, H = 96, 72  # default size: not square, not a multiple of 8 in height


def write_jpeg_rgb(path: Path, seed: int = 1, size: tuple[int, int] = (W, H), quality: int = 95,
                   progressive: bool = False) -> Written:
    rgb = pattern(size[0], size[1], seed)
    Image.fromarray(rgb).save(path, "JPEG", quality=quality, progressive=progressive)
    return Written(path, rgb, lossy=True)


def write_jpeg_l(path: Path, seed: int = 2) -> Written:
    g = gray_pattern(W, H, seed)
    Image.fromarray(g).save(path, "JPEG", quality=95)
    return Written(path, _rgb_of_gray(g), lossy=True, gray=True)


def write_jpeg_cmyk(path: Path, seed: int = 3) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    return Written(path, rgb, lossy=True)


def write_png_rgb(path: Path, seed: int = 4) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).save(path, "PNG")
    return Written(path, rgb)


def write_png_rgba(path: Path, seed: int = 5) -> Written:
    rgb = pattern(W, H, seed)
    alpha = _alpha_ramp(W, H)
    Image.fromarray(np.dstack([rgb, alpha])).save(path, "PNG")
    return Written(path, _composite_black(rgb, alpha), alpha=alpha, color=rgb)


def write_png_la(path: Path, seed: int = 6) -> Written:
    g = gray_pattern(W, H, seed)
    alpha = _alpha_ramp(W, H)
    Image.merge("LA", [Image.fromarray(g), Image.fromarray(alpha)]).save(path, "PNG")
    color = _rgb_of_gray(g)
    return Written(path, _composite_black(color, alpha), alpha=alpha, color=color, gray=True)


def write_png_l(path: Path, seed: int = 7) -> Written:
    g = gray_pattern(W, H, seed)
    Image.fromarray(g).save(path, "PNG")
    return Written(path, _rgb_of_gray(g), gray=True)


def write_png_p(path: Path, seed: int = 8) -> Written:
    img, shown = _palette_image(pattern(W, H, seed))
    img.save(path, "PNG")
    return Written(path, shown)


def write_png_p_index_transparency(path: Path, seed: int = 9) -> Written:
    """Palette PNG whose transparency is one palette index (tRNS)."""
    img, shown = _palette_image(pattern(W, H, seed))
    idx = np.asarray(img).copy()
    transparent = 215  # white in the web palette; paint a block with it
    idx[H // 3 : 2 * H // 3, W // 3 : 2 * W // 3] = transparent
    img = Image.frombytes("P", (W, H), idx.tobytes())
    img.putpalette(_web_palette())
    img.save(path, "PNG", transparency=transparent)
    shown = np.asarray(_web_palette(), dtype=np.uint8).reshape(-1, 3)[idx]
    alpha = np.where(idx == transparent, 0, 255).astype(np.uint8)
    return Written(path, _composite_black(shown, alpha), alpha=alpha, color=shown)


def write_png_p_alpha_palette(path: Path, seed: int = 10) -> Written:
    """Palette PNG with per-entry alpha (tRNS bytes, partial transparency)."""
    img, shown = _palette_image(pattern(W, H, seed))
    idx = np.asarray(img)
    palette_alpha = bytes(0 if i % 4 == 0 else (i * 37) % 256 for i in range(216))
    img.save(path, "PNG", transparency=palette_alpha)
    alpha = np.frombuffer(palette_alpha, dtype=np.uint8)[idx]
    return Written(path, _composite_black(shown, alpha), alpha=alpha, color=shown)


def write_png_l_colorkey(path: Path, seed: int = 11) -> Written:
    """Grayscale PNG with a tRNS colour key (one gray value is transparent)."""
    g = gray_pattern(W, H, seed).copy()
    g[g == 0] = 1
    g[: H // 4, : W // 4] = 0
    Image.fromarray(g).save(path, "PNG", transparency=0)
    alpha = np.where(g == 0, 0, 255).astype(np.uint8)
    color = _rgb_of_gray(g)
    return Written(path, _composite_black(color, alpha), alpha=alpha, color=color, gray=True)


def write_png_rgb_colorkey(path: Path, seed: int = 12) -> Written:
    """Truecolour PNG with a tRNS colour key."""
    rgb = pattern(W, H, seed).copy()
    key = (1, 2, 3)
    rgb[np.all(rgb == key, axis=2)] = (4, 5, 6)
    rgb[H // 2 :, W // 2 :] = key
    Image.fromarray(rgb).save(path, "PNG", transparency=key)
    alpha = np.where(np.all(rgb == key, axis=2), 0, 255).astype(np.uint8)
    return Written(path, _composite_black(rgb, alpha), alpha=alpha, color=rgb)


def _uint16_field(seed: int) -> np.ndarray:
    """16-bit gray covering the whole 0..65535 range (left edge 0, right 65535)."""
    g = gray_pattern(W, H, seed).astype(np.uint32) * 257
    rng = np.random.default_rng(seed)
    g = np.clip(g.astype(np.int64) + rng.integers(-100, 101, size=g.shape), 0, 65535)
    g[:, 0] = 0
    g[:, -1] = 65535
    g[0, 1:-1] = 32768
    return g.astype(np.uint16)


def _expected_from_uint16(a: np.ndarray) -> np.ndarray:
    return _rgb_of_gray(np.rint(a.astype(np.float64) / 257.0).astype(np.uint8))


def write_png_i16(path: Path, seed: int = 13) -> Written:
    a = _uint16_field(seed)
    Image.fromarray(a).save(path, "PNG")  # mode I;16 -> 16-bit grayscale PNG
    return Written(path, _expected_from_uint16(a), gray=True)


def write_tiff_i16(path: Path, seed: int = 14) -> Written:
    a = _uint16_field(seed)
    Image.fromarray(a).save(path, "TIFF")
    return Written(path, _expected_from_uint16(a), gray=True)


def write_tiff_rgb(path: Path, seed: int = 15) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).save(path, "TIFF", compression="tiff_deflate")
    return Written(path, rgb)


def write_tiff_float(path: Path, seed: int = 16, scale: float = 1.0) -> Written:
    """Float TIFF in 0..1 (``scale`` 1) or 0..255 (``scale`` 255)."""
    g = gray_pattern(W, H, seed).astype(np.float32) / 255.0
    Image.fromarray((g * scale).astype(np.float32)).save(path, "TIFF")
    expected = np.rint(np.clip(g * scale * (255.0 if scale <= 1.0 else 1.0), 0, 255)).astype(np.uint8)
    return Written(path, _rgb_of_gray(expected), gray=True)


def write_bmp(path: Path, seed: int = 17) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).save(path, "BMP")
    return Written(path, rgb)


def write_ppm(path: Path, seed: int = 18) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).save(path, "PPM")
    return Written(path, rgb)


def write_pgm(path: Path, seed: int = 19) -> Written:
    g = gray_pattern(W, H, seed)
    Image.fromarray(g).save(path, "PPM")
    return Written(path, _rgb_of_gray(g), gray=True)


def _bilevel(seed: int) -> tuple[Image.Image, np.ndarray]:
    img = Image.fromarray(gray_pattern(W, H, seed)).convert("1")  # dithered
    return img, _rgb_of_gray(np.asarray(img.convert("L")))


def write_pbm(path: Path, seed: int = 20) -> Written:
    img, expected = _bilevel(seed)
    img.save(path, "PPM")
    return Written(path, expected, gray=True)


def write_png_1bit(path: Path, seed: int = 21) -> Written:
    img, expected = _bilevel(seed)
    img.save(path, "PNG")
    return Written(path, expected, gray=True)


def write_gif_animated(path: Path, seed: int = 22, frames: int = 3) -> Written:
    """Animated GIF; the expected pixels are those of the first frame."""
    images, first = [], None
    for i in range(frames):
        img, shown = _palette_image(pattern(W, H, seed + 1000 * i))
        images.append(img)
        first = shown if first is None else first
    images[0].save(path, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return Written(path, first)


def write_apng(path: Path, seed: int = 23, frames: int = 3) -> Written:
    """Animated PNG; the expected pixels are those of the first frame."""
    images = [Image.fromarray(pattern(W, H, seed + 1000 * i)) for i in range(frames)]
    images[0].save(path, "PNG", save_all=True, append_images=images[1:], duration=100)
    return Written(path, np.asarray(images[0]))


def write_webp_lossless(path: Path, seed: int = 24) -> Written:
    rgb = pattern(W, H, seed)
    Image.fromarray(rgb).save(path, "WEBP", lossless=True, quality=100)
    return Written(path, rgb)


def write_webp_animated(path: Path, seed: int = 25, frames: int = 3) -> Written:
    images = [Image.fromarray(pattern(W, H, seed + 1000 * i)) for i in range(frames)]
    images[0].save(path, "WEBP", save_all=True, append_images=images[1:], duration=100, lossless=True)
    return Written(path, np.asarray(images[0]))


def write_mpo(path: Path, seed: int = 27, size: tuple[int, int] = (W, H)) -> Written:
    """A multi-picture JPEG (what many phone cameras write); the first picture counts."""
    first = pattern(size[0], size[1], seed)
    second = Image.fromarray(pattern(size[0], size[1], seed + 1000))
    Image.fromarray(first).save(path, "MPO", save_all=True, append_images=[second], quality=95)
    return Written(path, first, lossy=True)


def write_ico(path: Path, seed: int = 26) -> Written:
    rgb = pattern(64, 64, seed)
    Image.fromarray(rgb).save(path, "ICO", sizes=[(64, 64)])
    return Written(path, rgb)


def write_exif_rotated(path: Path, orientation: int, size: tuple[int, int] = (W, H), fmt: str = "JPEG",
                       content: np.ndarray | None = None) -> Written:
    """Store ``content`` (default: ``quadrants``) so that applying EXIF
    ``orientation`` gives it back upright. ``size`` is the upright (w, h)."""
    upright = quadrants(*size) if content is None else content
    inverse = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,  # orientation 6 is undone by ROTATE_270
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,  # orientation 8 is undone by ROTATE_90
    }[orientation]
    stored = Image.fromarray(upright)
    if inverse is not None:
        stored = stored.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    if fmt == "JPEG":
        stored.save(path, "JPEG", quality=95, exif=exif.tobytes())
    else:
        stored.save(path, fmt, exif=exif.tobytes())
    return Written(path, upright, lossy=fmt == "JPEG")


# -- broken files -------------------------------------------------------------------


def write_truncated_jpeg(path: Path, seed: int = 30, keep: float = 0.6) -> Written:
    buf = io.BytesIO()
    Image.fromarray(pattern(W, H, seed)).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])
    return Written(path, None)


def write_truncated_png(path: Path, seed: int = 31, keep: float = 0.6) -> Written:
    buf = io.BytesIO()
    Image.fromarray(pattern(W, H, seed)).save(buf, "PNG")
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])
    return Written(path, None)


def write_garbage(path: Path, seed: int = 32, length: int = 4096) -> Written:
    """Random bytes (with no image signature) under whatever name is given."""
    data = np.random.default_rng(seed).integers(0, 256, size=length, dtype=np.uint8).tobytes()
    path.write_bytes(b"garbage!" + data)
    return Written(path, None)


def write_empty(path: Path) -> Written:
    path.write_bytes(b"")
    return Written(path, None)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is patched to declare ``width x height``.

    Tiny on disk, but decoding it would allocate width*height pixels, so it
    must be refused from the header alone.
    """
    buf = io.BytesIO()
    Image.new("L", (1, 1), 128).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    # signature (8) | length (4) | b"IHDR" (4) | width (4) | height (4) | ...
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def write_bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Written:
    path.write_bytes(png_with_declared_size(width, height))
    return Written(path, None)


def write_tiny_png(path: Path, seed: int = 33, size: int = 8) -> Written:
    rgb = pattern(size, size, seed)
    Image.fromarray(rgb).save(path, "PNG")
    return Written(path, rgb)


# -- registry --------------------------------------------------------------------------

# name -> (file name, writer). Every writer yields a decodable image whose
# ``expected`` pixels are checkable.
KINDS: dict[str, tuple[str, Callable[[Path], Written]]] = {
    "jpeg_rgb": ("rgb.jpg", write_jpeg_rgb),
    "jpeg_rgb_progressive": ("progressive.jpg", lambda p: write_jpeg_rgb(p, seed=41, progressive=True)),
    "jpeg_l": ("gray.jpg", write_jpeg_l),
    "jpeg_cmyk": ("cmyk.jpg", write_jpeg_cmyk),
    "png_rgb": ("rgb.png", write_png_rgb),
    "png_rgba": ("rgba.png", write_png_rgba),
    "png_la": ("la.png", write_png_la),
    "png_l": ("l.png", write_png_l),
    "png_p": ("p.png", write_png_p),
    "png_p_index_transparency": ("p_trns_index.png", write_png_p_index_transparency),
    "png_p_alpha_palette": ("p_trns_alpha.png", write_png_p_alpha_palette),
    "png_l_colorkey": ("l_colorkey.png", write_png_l_colorkey),
    "png_rgb_colorkey": ("rgb_colorkey.png", write_png_rgb_colorkey),
    "png_i16": ("i16.png", write_png_i16),
    "png_1bit": ("bilevel.png", write_png_1bit),
    "apng": ("animated.png", write_apng),
    "gif_animated": ("animated.gif", write_gif_animated),
    "bmp": ("rgb.bmp", write_bmp),
    "tiff_rgb": ("rgb.tif", write_tiff_rgb),
    "tiff_i16": ("i16.tif", write_tiff_i16),
    "tiff_float": ("float01.tif", write_tiff_float),
    "tiff_float255": ("float255.tif", lambda p: write_tiff_float(p, seed=42, scale=255.0)),
    "ppm": ("rgb.ppm", write_ppm),
    "pgm": ("gray.pgm", write_pgm),
    "pbm": ("bilevel.pbm", write_pbm),
    "ico": ("icon.ico", write_ico),
    "mpo": ("stereo.jpg", write_mpo),
    "png_exif_rotated": ("exif6.png", lambda p: write_exif_rotated(p, 6, fmt="PNG")),
}
if HAS_WEBP:
    KINDS["webp_lossless"] = ("lossless.webp", write_webp_lossless)
    KINDS["webp_animated"] = ("animated.webp", write_webp_animated)


def write_kind(directory: Path, kind: str) -> Written:
    """Write the file of one registry ``kind`` into ``directory``."""
    name, writer = KINDS[kind]
    return writer(Path(directory) / name)


# -- a whole messy folder ---------------------------------------------------------------

# Files in write_messy_folder that are grayscale: a colour-only filter would
# reject them as "grayscale"; by default they are "ok".
MESSY_GRAYSCALE = frozenset({
    "cats/gray.jpg", "cats/i16.png", "dogs/la.png", "dogs/i16.tif", "dogs/float.tif",
    "dogs/gray.pgm", "cats/bilevel.png",
})


def write_messy_folder(root: Path | str) -> dict[str, str]:
    """Write a labelled folder of real, messy files; return path -> expected outcome.

    Keys are POSIX paths relative to ``root``; values are "ok" or a rejection
    reason code of ``gandata.records.REASONS``. Layout: class folders ``cats/``
    and ``dogs/`` with every supported format and mode, EXIF-rotated JPEGs,
    corrupt files, a decompression bomb, a tiny image and an exact duplicate
    pair; plus ``.DS_Store``, ``notes.txt`` and ``Thumbs.db`` in the root and a
    hidden file inside a class folder.

    Outcomes assume the default ImageConfig (size 64, min_size 16, max_upscale
    4, max_pixels 40M) and that dedup keeps the first of a duplicate pair in
    sorted path order (``cats/dup_a.png`` is kept, ``cats/dup_b.png`` is the
    duplicate). Every "ok" image has distinct content (no near duplicates);
    the grayscale ones are listed in ``MESSY_GRAYSCALE``.
    """
    root = Path(root)
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True, exist_ok=True)
    dogs.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def ok(path: Path) -> None:
        expected[path.relative_to(root).as_posix()] = "ok"

    # cats: mostly JPEG and PNG.
    ok(write_jpeg_rgb(cats / "rgb.jpg", seed=101).path)
    ok(write_jpeg_rgb(cats / "big.JPG", seed=102, size=(640, 480), quality=85).path)
    ok(write_jpeg_rgb(cats / "progressive.jpeg", seed=103, progressive=True).path)
    ok(write_jpeg_l(cats / "gray.jpg", seed=104).path)
    ok(write_jpeg_cmyk(cats / "cmyk.jpg", seed=105).path)
    ok(write_png_rgb(cats / "rgb.png", seed=106).path)
    ok(write_png_rgba(cats / "rgba.png", seed=107).path)
    ok(write_png_p_index_transparency(cats / "p_trns.png", seed=108).path)
    ok(write_png_i16(cats / "i16.png", seed=109).path)
    ok(write_png_1bit(cats / "bilevel.png", seed=110).path)
    ok(write_gif_animated(cats / "animated.gif", seed=111).path)
    for orientation, seed in ((3, 112), (6, 113), (8, 114)):
        content = pattern(W, H, seed)
        ok(write_exif_rotated(cats / f"exif{orientation}.jpg", orientation, content=content).path)
    dup = write_png_rgb(cats / "dup_a.png", seed=115)
    (cats / "dup_b.png").write_bytes(dup.path.read_bytes())
    expected["cats/dup_a.png"] = "ok"
    expected["cats/dup_b.png"] = "duplicate"
    write_truncated_jpeg(cats / "truncated.jpg", seed=116)
    expected["cats/truncated.jpg"] = "corrupt"
    write_garbage(cats / "garbage.jpg", seed=117)
    expected["cats/garbage.jpg"] = "corrupt"
    write_tiny_png(cats / "tiny.png", seed=118)
    expected["cats/tiny.png"] = "too_small"
    write_jpeg_rgb(cats / ".hidden.jpg", seed=119)
    expected["cats/.hidden.jpg"] = "hidden"

    # dogs: the other formats.
    ok(write_png_la(dogs / "la.png", seed=201).path)
    ok(write_png_p(dogs / "p.png", seed=202).path)
    ok(write_png_p_alpha_palette(dogs / "p_alpha.png", seed=203).path)
    ok(write_apng(dogs / "animated.png", seed=204).path)
    ok(write_bmp(dogs / "rgb.bmp", seed=205).path)
    ok(write_tiff_rgb(dogs / "rgb.tiff", seed=206).path)
    ok(write_tiff_i16(dogs / "i16.tif", seed=207).path)
    ok(write_tiff_float(dogs / "float.tif", seed=208).path)
    ok(write_ppm(dogs / "rgb.ppm", seed=209).path)
    ok(write_pgm(dogs / "gray.pgm", seed=210).path)
    if HAS_WEBP:
        ok(write_webp_lossless(dogs / "lossless.webp", seed=211).path)
        ok(write_webp_animated(dogs / "animated.webp", seed=212).path)
    write_empty(dogs / "empty.png")
    expected["dogs/empty.png"] = "corrupt"
    write_truncated_png(dogs / "truncated.png", seed=213)
    expected["dogs/truncated.png"] = "corrupt"
    write_bomb_png(dogs / "bomb.png")
    expected["dogs/bomb.png"] = "decompression_bomb"

    # root: clutter that is not part of any class.
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    expected[".DS_Store"] = "hidden"
    (root / "notes.txt").write_text("collected from the garden, 2024\n")
    expected["notes.txt"] = "unsupported"
    (root / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    expected["Thumbs.db"] = "unsupported"
    return expected
