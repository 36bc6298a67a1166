"""64-bit perceptual hashes of small grayscale images.

Both hashes are computed from the image already fitted to the training size,
so two copies of a picture that differ only in JPEG quality or by a few
percent of scale hash (nearly) alike.

- pHash: the 8x8 lowest frequencies of the 2-D DCT of a 32x32 thumbnail, each
  bit saying whether a coefficient is above their median (DC excluded from the
  median). Robust to re-encoding and small rescaling.
- dHash: whether each pixel of a 9x8 thumbnail is brighter than its right
  neighbour. Cheaper, but on flat backgrounds (digits on black) JPEG noise
  flips many of its bits, so the pipeline searches with pHash and confirms
  candidates with thumbnails instead; dHash is kept for callers that want a
  second, independent hash.

Hashes are returned as signed int64 (the same 64 bits as the unsigned value)
because Parquet and Arrow handle int64 everywhere.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from gandata.util.ordered_product import ordered_matmul

__all__ = ["box_thumbnails", "dhash", "phash", "phash_batch", "to_signed", "to_unsigned"]


@lru_cache(maxsize=4)
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``D @ x`` is the DCT of the column ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def _pack(bits: np.ndarray) -> int:
    """64 booleans (most significant first) -> signed int64 value."""
    return to_signed(int.from_bytes(np.packbits(bits.reshape(64)).tobytes(), "big"))


def to_signed(value: int) -> int:
    """The unsigned 64-bit ``value`` as the int64 with the same bits."""
    return value - (1 << 64) if value >= (1 << 63) else value


def to_unsigned(values: np.ndarray) -> np.ndarray:
    """int64 hashes -> uint64 with the same bits (no copy)."""
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def _thumbnail(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), mode="L")
    return np.asarray(image.resize((width, height), Image.Resampling.BOX), dtype=np.float64)


def box_thumbnails(gray8: np.ndarray, side: int) -> np.ndarray | None:
    """Pillow's BOX resize of a stack of square uint8 images [N, S, S] to
    ``side`` x ``side``, bit for bit, in a few numpy calls; None when the
    shrink factor is not a power of two (the caller resizes one by one).

    Pillow resizes in two 8-bit passes (horizontal, then vertical), each
    rounding half up; with a power-of-two factor its fixed-point weights are
    exact, so integer sums reproduce it.
    """
    n, h, w = gray8.shape
    factor = h // side
    if h != w or factor * side != h or factor & (factor - 1):
        return None
    if factor == 1:
        return gray8.copy()
    x = gray8.astype(np.int32)
    # Sums of strided slices: numpy reduces a tiny trailing axis slowly.
    x = (sum(x[:, :, k::factor] for k in range(factor)) + factor // 2) // factor
    x = (sum(x[:, k::factor, :] for k in range(factor)) + factor // 2) // factor
    return x.astype(np.uint8)


def _phash_bits(small: np.ndarray) -> np.ndarray:
    """[N, 32, 32] thumbnails (uint8 or float) -> [N, 64] bits (low DCT band > its median)."""
    d = _dct_matrix(32)[:8].astype(np.float32)  # only the lowest 8x8 frequencies are kept
    n = len(small)
    # D @ small @ D.T summed in a fixed order (BLAS kernels differ by CPU, and
    # a flat image's AC coefficients are nothing but rounding: their order
    # decided its bits): rows of every image first, then columns. float32:
    # a third of float64's time, and the bits that decide are the median's
    # neighbours, a tie at either precision.
    small = small.astype(np.float32)
    rows = ordered_matmul(d, small.transpose(1, 0, 2).reshape(32, n * 32))  # [8, N*32]
    rows = rows.reshape(8, n, 32).transpose(1, 0, 2).reshape(n * 8, 32)
    low = ordered_matmul(rows, d.T).reshape(n, 64)
    # 63 values, an odd count: the median is the 32nd smallest itself, as
    # np.median computes it; np.median would import numpy.ma on first use
    # (16 ms in every fresh worker).
    median = np.partition(low[:, 1:], 31, axis=1)[:, 31]
    return low > median[:, None]


def phash(gray: np.ndarray) -> int:
    """DCT perceptual hash of a 2-D uint8 grayscale image (int64)."""
    small = _thumbnail(gray, 32, 32)
    return _pack(_phash_bits(small[None])[0])


def phash_batch(gray8: np.ndarray) -> np.ndarray:
    """``phash`` of every image of a uint8 stack [N, H, W], as int64 [N]."""
    small = box_thumbnails(gray8, 32)
    if small is None:
        small = np.stack([_thumbnail(g, 32, 32) for g in gray8]) if len(gray8) else np.zeros((0, 32, 32), np.float32)
    packed = np.packbits(_phash_bits(small), axis=1)  # [N, 8], most significant first
    return packed.view(">u8").reshape(-1).astype(np.uint64).view(np.int64)


def dhash(gray: np.ndarray) -> int:
    """Horizontal difference hash of a 2-D uint8 grayscale image (int64)."""
    small = _thumbnail(gray, 9, 8)
    return _pack(small[:, 1:] > small[:, :-1])
