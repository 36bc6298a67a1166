"""Per-image quality scores, computed at ingest from the prepared pixels.

Every score is a plain number stored in the staged metadata (``score_<name>``
columns of meta.parquet) so that the plan step, or ``gandata clean``, can apply
any threshold without decoding an image again. Pixel values are on the 0-255
scale of the fitted uint8 image; luma uses the Rec. 601 weights.

| score | meaning | used by |
|---|---|---|
| ``std`` | largest standard deviation of luma and of each colour channel | ``low_information`` |
| ``entropy`` | Shannon entropy of the luma histogram, bits (0..8) | report only |
| ``p01``, ``p99`` | 1st and 99th luma percentiles | ``too_light``, ``too_dark`` |
| ``sharpness`` | variance of the Laplacian of luma | near-duplicate keep rule |
| ``blur`` | fine-scale over coarse-scale Laplacian energy (see below) | ``blurry`` |
| ``color`` | mean over pixels of max minus min channel (RGB only) | ``grayscale`` |
| ``detail`` | fine-detail share at the native resolution (``detail_share``); NaN when not decoded at full scale | near-duplicate keep rule |
| ``jpeg_quality`` | IJG quality of a JPEG's tables (``gandata.image.jpeg_quality``); NaN for other inputs | near-duplicate keep rule |

``detail`` and ``jpeg_quality`` are measured on the decoded image before
fitting (ingest adds them per image); the others on the fitted pixels.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from gandata.clean.phash import box_thumbnails, phash, phash_batch
from gandata.util.ordered_product import ordered_matmul

__all__ = [
    "BLUR_MIN_STRUCTURE", "THUMB_PX", "blur_score", "channel_moments", "detail_share", "detail_shares", "image_scores", "luma",
    "thumbnail",
]

# Side of the grayscale thumbnail stored per image (THUMB_PX**2 bytes): the
# near-duplicate step verifies hash candidates by correlating thumbnails,
# which tells a re-encoded copy from a natural look-alike (two similar
# handwritten 1s can share a perceptual hash).
THUMB_PX = 16
# Below this coarse-scale Laplacian energy (variance, 0-255 units per px^2)
# an image has no edges to judge (uniform, a smooth gradient): its blur score
# is +inf, i.e. it is never called blurry. Only an image with clear
# coarse-scale structure and little fine-scale detail scores low.
BLUR_MIN_STRUCTURE = 1.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luma(pixels: np.ndarray) -> np.ndarray:
    """HxWxC uint8 -> HxW float32 luma (0-255)."""
    if pixels.shape[-1] == 1:
        return pixels[..., 0].astype(np.float32)
    # Elementwise, not ``@ _LUMA``: OpenBLAS's AVX-512 kernel fuses the
    # multiply-adds, so the same pixels gave other last bits on other CPUs.
    rgb = pixels[..., :3].astype(np.float32)
    out = rgb[..., 0] * _LUMA[0]
    out += rgb[..., 1] * _LUMA[1]
    out += rgb[..., 2] * _LUMA[2]
    return out


def _pool2(gray: np.ndarray) -> np.ndarray:
    """2x2 mean pooling over the last two axes (an odd last row/column is dropped)."""
    h2, w2 = gray.shape[-2] // 2 * 2, gray.shape[-1] // 2 * 2
    g = gray[..., :h2, :w2]
    # Four strided adds: several times faster than mean() over a 2x2 reshape.
    return (g[..., 0::2, 0::2] + g[..., 1::2, 0::2] + g[..., 0::2, 1::2] + g[..., 1::2, 1::2]) * 0.25


def _laplacian_var(gray: np.ndarray) -> float:
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = (
        gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    )
    return float(lap.var())


def blur_score(gray: np.ndarray, upscale: float = 1.0) -> float:
    """Fine-scale Laplacian energy over the energy one octave coarser.

    A sharp image has detail at the finest scale comparable to the next one
    (ratio around 1 or more); a blurred one has lost it (ratio well below 1).
    Being a ratio, it does not flag images that are merely smooth or
    low-contrast. An upscaled image is first brought back to its original
    resolution, so a small original (a 28 px digit fitted to 64 px) is judged
    on its own pixels, not on the interpolation.
    """
    if upscale > 1.0 + 1e-6:
        h, w = gray.shape
        side = max(8, int(round(min(h, w) / upscale)))
        image = Image.fromarray(gray.astype(np.float32), mode="F")
        gray = np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=np.float32)
    coarse = _pool2(gray)
    fine_energy = _laplacian_var(gray)
    # Pooling by 2 halves the distances, so the coarse Laplacian is in units
    # per 2 px: scale it back to per-pixel (x1/16 for the second derivative
    # squared) and the ratio of a scale-free image does not depend on the size.
    coarse_energy = _laplacian_var(coarse) / 16.0
    if coarse_energy < BLUR_MIN_STRUCTURE:
        return float("inf")
    return float(fine_energy / coarse_energy)


# Frequency bands of detail_share, in cycles per pixel (Nyquist is 0.5).
_DETAIL_FINE = (0.3, 0.47)
_DETAIL_REFERENCE = (0.1, 0.2)
# Below this side a tile has too few frequency bins to judge.
_DETAIL_MIN_PX = 16
# Tiles per transform: their arrays stay in cache (500 at once ran 2x slower).
_DETAIL_CHUNK = 16


@lru_cache(maxsize=16)
def _detail_bins(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(Hann window, [bins, 2] band weights: the mean over the fine band and
    over the reference band) for a side of n px."""
    freq = np.fft.rfftfreq(n)
    clean = np.abs(freq * 16 - np.round(freq * 16)) >= 0.25
    fine = clean & (freq >= _DETAIL_FINE[0]) & (freq < _DETAIL_FINE[1])
    reference = clean & (freq >= _DETAIL_REFERENCE[0]) & (freq < _DETAIL_REFERENCE[1])
    bands = np.stack([fine / max(1, fine.sum()), reference / max(1, reference.sum())], axis=1)
    return np.hanning(n).astype(np.float32), bands.astype(np.float32)


def detail_share(gray: np.ndarray) -> float:
    """Power of the finest octave over that of a coarser band, averaged over
    the two axes, of a luma tile taken at the image's native resolution.

    An image upscaled by ``s`` has no content above ``0.5 / s`` cycles per
    pixel, and a heavily compressed JPEG has quantized it away: both have
    lost fine detail the original still holds, and score lower than it. For a
    natural image's power-law spectrum the ratio does not depend on the
    resolution, so copies of one picture at different sizes are comparable;
    absolute values depend on the content and are only compared within a
    near-duplicate group. Bins at multiples of 1/16 cycle per pixel are left
    out: the 8 and 16 px block edges of a compressed JPEG put power there
    that is not detail of the picture. NaN for a tile too small or flat to judge.
    """
    return float(detail_shares([gray])[0])


def detail_shares(tiles: list[np.ndarray | None]) -> np.ndarray:
    """``detail_share`` of each tile (NaN for None), the tiles of one side
    in one transform per axis: per-image numpy calls would cost more than
    the FFT."""
    out = np.full(len(tiles), np.nan)
    by_side: dict[int, list[int]] = {}
    for i, tile in enumerate(tiles):
        if tile is not None and min(tile.shape) >= _DETAIL_MIN_PX:
            by_side.setdefault(min(tile.shape), []).append(i)
    groups = [(n, m[k : k + _DETAIL_CHUNK]) for n, m in by_side.items() for k in range(0, len(m), _DETAIL_CHUNK)]
    for n, members in groups:
        g = np.stack([tiles[i][:n, :n] for i in members]).astype(np.float32)  # type: ignore[index]
        g -= g.mean(axis=(1, 2), keepdims=True)
        window, bands = _detail_bins(n)
        # Every other row (horizontal spectra) and every other column
        # (vertical): half the transforms, and neighbouring lines of a
        # picture are too alike for the other half to steady the mean much.
        fine, reference = np.empty((2, len(members), 2), np.float32)
        for axis, lines in enumerate((g[:, ::2, :] * window, (g[:, :, ::2] * window[:, None]).transpose(0, 2, 1))):
            spectrum = np.fft.rfft(lines, axis=2)
            power = (spectrum.real**2 + spectrum.imag**2).sum(axis=1, dtype=np.float32)  # [k, bins]
            fine[:, axis], reference[:, axis] = ordered_matmul(power, bands).T  # not BLAS: the same bits on every CPU
        with np.errstate(divide="ignore", invalid="ignore"):
            share = (fine / reference).mean(axis=1)
        # No structure to compare with (uniform, a smooth ramp): not judged.
        out[members] = np.where(reference.min(axis=1) < 1e-3 * n * n, np.nan, share)
    return out


def thumbnail(gray8: np.ndarray) -> bytes:
    """THUMB_PX x THUMB_PX box-filtered grayscale thumbnail, as raw bytes."""
    image = Image.fromarray(np.ascontiguousarray(gray8), mode="L")
    return image.resize((THUMB_PX, THUMB_PX), Image.Resampling.BOX).tobytes()


def image_scores(pixels: np.ndarray, upscale: float = 1.0) -> tuple[dict[str, float], int, bytes]:
    """Quality scores, the 64-bit pHash (int64) and the thumbnail of one
    fitted HxWxC uint8 image."""
    gray = luma(pixels)
    # Nearest-rank percentiles by partial sort (np.percentile sorts fully).
    flat = gray.ravel()
    k01, k99 = int(0.01 * (flat.size - 1)), int(round(0.99 * (flat.size - 1)))
    part = np.partition(flat, (k01, k99))
    p01, p99 = part[k01], part[k99]
    hist = np.bincount(np.clip(gray + 0.5, 0, 255).astype(np.int64).ravel(), minlength=256)
    prob = hist[hist > 0] / gray.size
    scores = {
        "std": max(float(gray.std()), float(_channel_std(channel_moments(pixels[None]), flat.size)[0])),
        "entropy": float(-(prob * np.log2(prob)).sum()),
        "p01": float(p01),
        "p99": float(p99),
        "sharpness": _laplacian_var(gray),
        "blur": blur_score(gray, upscale),
    }
    if pixels.shape[-1] >= 3:
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8, no overflow
        scores["color"] = float(spread.mean())
    gray8 = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    return scores, phash(gray8), thumbnail(gray8)


# Pixels per float32 block of channel_moments: 256 squares of 255 sum to
# 16,646,400 < 2**24, so every partial sum BLAS forms inside a block is an
# integer that float32 holds exactly, whatever order it adds in.
_EXACT_BLOCK_PX = 256
# Pixels converted to float32 at a time by channel_moments (bytes of float32).
_MOMENTS_CHUNK_BYTES = 16 << 20


def channel_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image, per-channel sums of pixel values and of their squares
    ([N, C] float64 each, exact) of an [N, H, W, C] uint8 stack.

    Blocks of 256 pixels are summed by BLAS in float32 (exact, see
    ``_EXACT_BLOCK_PX``) and the block sums added in float64 (integers below
    2**53 at any size we accept): about 4x faster than summing in float64,
    and 15x faster than numpy's integer reductions.
    """
    n, height, width, channels = images.shape
    pixels = height * width
    flat = images.reshape(n, pixels, channels)
    sums = np.zeros((n, channels), np.float64)
    squares = np.zeros((n, channels), np.float64)
    # Chunks of whole images, or of one image's pixels for very large sizes
    # (a whole number of blocks, so only the image's last chunk has a remainder).
    step_px = max(_EXACT_BLOCK_PX, min(pixels, _MOMENTS_CHUNK_BYTES // (channels * 4)) // _EXACT_BLOCK_PX * _EXACT_BLOCK_PX)
    step_n = max(1, _MOMENTS_CHUNK_BYTES // (step_px * channels * 4))
    ones = np.ones((1, _EXACT_BLOCK_PX), np.float32)
    for start in range(0, n, step_n):
        stop = min(n, start + step_n)
        for first in range(0, pixels, step_px):
            chunk = flat[start:stop, first : first + step_px].astype(np.float32)
            sums[start:stop] += _block_sums(chunk, ones)
            squares[start:stop] += _block_sums(np.square(chunk, out=chunk), ones)
    return sums, squares


def _block_sums(values: np.ndarray, ones: np.ndarray) -> np.ndarray:
    """Sums over axis 1 of [m, L, C] float32 integers: exact per
    ``_EXACT_BLOCK_PX``-pixel block, the blocks added in float64."""
    m, length, channels = values.shape
    whole = length // _EXACT_BLOCK_PX * _EXACT_BLOCK_PX
    blocks = values[:, :whole].reshape(m, whole // _EXACT_BLOCK_PX, _EXACT_BLOCK_PX, channels)
    total = (ones @ blocks)[:, :, 0].astype(np.float64).sum(axis=1)
    if whole < length:
        total += (ones[:, : length - whole] @ values[:, whole:])[:, 0]
    return total


def _channel_std(moments: tuple[np.ndarray, np.ndarray], pixels: int) -> np.ndarray:
    """Largest per-channel standard deviation of each image, from its exact
    ``channel_moments`` over ``pixels`` pixels (0 for one channel: luma
    covers it).

    Information is judged on colour too: a red/green checkerboard of equal
    brightness has a luma spread near 0 but is anything but blank."""
    sums, squares = moments
    if sums.shape[1] < 3:
        return np.zeros(len(sums), np.float64)
    # (P * sum of squares - sum**2) / P**2: integers, exact in float64 at
    # training sizes, and never the small difference of two rounded means.
    var = (pixels * squares[:, :3] - sums[:, :3] ** 2) / float(pixels) ** 2
    return np.sqrt(np.maximum(var, 0.0)).max(axis=1)


# Above this many values in the histogram bin of a wanted rank (a flat
# image), np.partition of the image's row is cheaper than sorting the bin.
_MAX_BIN_SORT = 1024


def _kth_smallest(flat: np.ndarray, flat8: np.ndarray, hist: np.ndarray, ks: tuple[int, ...]) -> list[np.ndarray]:
    """For each k, the k-th smallest value (0-based) of every row of ``flat``
    ([N, P] float32 luma): exactly what ``np.partition`` picks.

    Rounding to the 8-bit luma of ``flat8`` (its ``hist``: [N, 256] counts)
    keeps the order, so the k-th smallest lies in the bin where the running
    count passes k, and only that bin's few values need sorting; a full
    partition of every row cost a fifth of a partition's scores."""
    n = len(flat)
    rows = np.arange(n)
    running = np.cumsum(hist, axis=1)
    found = []
    for k in ks:
        bins = (running <= k).sum(axis=1)  # the first bin whose running count passes k
        rank = k - np.where(bins > 0, running[rows, np.maximum(bins - 1, 0)], 0)
        counts = hist[rows, bins]
        crowded = counts > _MAX_BIN_SORT
        member = flat8 == bins[:, None].astype(flat8.dtype)
        member[crowded] = False
        where = np.flatnonzero(member)  # row-major: grouped by row (much faster than nonzero's 2-D indices)
        # Row r's values sorted within its group: keys r * 512 + value are
        # exact in float64 (value < 256, a float32) and order by row first.
        keys = np.sort((where // flat.shape[1]) * 512.0 + flat.ravel()[where])
        starts = np.cumsum(np.where(crowded, 0, counts)) - np.where(crowded, 0, counts)
        value = np.empty(n, np.float32)
        calm = np.flatnonzero(~crowded)
        value[calm] = keys[starts[calm] + rank[calm]] - calm * 512.0
        if crowded.any():
            value[crowded] = np.partition(flat[crowded], k, axis=1)[:, k]
        found.append(value)
    return found


def _laplacian_var_batch(gray: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each image of an [N, H, W] stack."""
    if gray.shape[1] < 3 or gray.shape[2] < 3:
        return np.zeros(len(gray), np.float64)
    lap = (
        gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2] + gray[:, 1:-1, 2:] - 4.0 * gray[:, 1:-1, 1:-1]
    )
    return lap.reshape(len(gray), -1).var(axis=1).astype(np.float64)


def batch_image_scores(
    pixels: np.ndarray, upscales: np.ndarray, moments: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, list[bytes]]:
    """``image_scores`` for a whole partition at once: [N, H, W, C] uint8 ->
    (score name -> [N] float64, [N] int64 pHashes, N thumbnails).
    ``moments`` are the stack's ``channel_moments`` when the caller has them.

    Per-image numpy calls cost more in Python overhead than in arithmetic at
    training sizes; one call per score over the stack is several times faster.
    Upscaled images (judged at their original resolution) take the
    per-image blur path.
    """
    n = len(pixels)
    if n == 0:
        return {}, np.zeros(0, np.int64), []
    gray = luma(pixels)  # [N, H, W]
    flat = gray.reshape(n, -1)
    size = flat.shape[1]
    k01, k99 = int(0.01 * (size - 1)), int(round(0.99 * (size - 1)))
    gray8 = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
    hist = np.bincount((gray8.reshape(n, -1).astype(np.int64) + 256 * np.arange(n)[:, None]).ravel(), minlength=256 * n)
    hist = hist.reshape(n, 256)
    p01, p99 = _kth_smallest(flat, gray8.reshape(n, -1), hist, (k01, k99))
    prob = hist / size
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(prob > 0, prob * np.log2(prob), 0.0).sum(axis=1)
    coarse = _pool2(gray)
    fine_energy = _laplacian_var_batch(gray)
    coarse_energy = _laplacian_var_batch(coarse) / 16.0
    with np.errstate(divide="ignore", invalid="ignore"):
        blur = np.where(coarse_energy < BLUR_MIN_STRUCTURE, np.inf, fine_energy / np.maximum(coarse_energy, 1e-12))
    for i in np.flatnonzero(upscales > 1.0 + 1e-6):
        blur[i] = blur_score(gray[i], float(upscales[i]))
    scores = {
        "std": np.maximum(flat.std(axis=1).astype(np.float64), _channel_std(moments or channel_moments(pixels), size)),
        "entropy": entropy.astype(np.float64),
        "p01": p01.astype(np.float64),
        "p99": p99.astype(np.float64),
        "sharpness": fine_energy,
        "blur": blur.astype(np.float64),
    }
    if pixels.shape[-1] >= 3:
        r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
        spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
        # An exact integer sum over one division: mean()'s value, in half the time.
        scores["color"] = spread.reshape(n, -1).sum(axis=1, dtype=np.uint32) / float(size)
    hashes = phash_batch(gray8)
    small = box_thumbnails(gray8, THUMB_PX)
    thumbs = [thumbnail(g) for g in gray8] if small is None else [t.tobytes() for t in small]
    return scores, hashes, thumbs
