"""MNIST-style digits rendered from the machine's fonts, written as IDX files.

A stand-in for MNIST where it cannot be downloaded: 28x28 grayscale digits,
white on black, each drawn in a random TrueType font at a random weight,
slant, rotation and size, then placed by its centre of mass in a 20x20 box as
MNIST's were. The files are named like MNIST's, so ``gandata build
idx:DIR/train-images-idx3-ubyte`` reads them (and their labels) the same way,
and a benchmark that takes a source runs unchanged on the real MNIST.

    python benchmarks/font_digits.py --out /tmp/font-digits --count 5000

They are easier than handwriting (a font's "4" varies less than people's),
so figures on them compare recipes with each other, not with MNIST's.
"""

from __future__ import annotations

import argparse
import glob
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_GLOBS = ("/usr/share/fonts/**/*.ttf", "/usr/share/fonts/**/*.otf", "/Library/Fonts/*.ttf", "C:/Windows/Fonts/*.ttf")


def find_fonts() -> list[str]:
    """TrueType fonts that draw all ten digits (symbol and math fonts are left out)."""
    fonts = []
    for pattern in FONT_GLOBS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if any(word in Path(path).name.lower() for word in ("math", "symbol", "emoji", "dingbat")):
                continue
            try:
                ImageFont.truetype(path, 20)
            except OSError:
                continue
            fonts.append(path)
    return fonts


def render_digit(digit: int, font_path: str, rng: np.random.Generator) -> np.ndarray:
    """One 28x28 uint8 digit: drawn large, slanted and rotated, its ink box
    scaled to fit 20x20 and centred by its centre of mass (MNIST's recipe)."""
    size = 96
    canvas = Image.new("L", (size, size), 0)
    font = ImageFont.truetype(font_path, int(rng.integers(52, 68)))
    stroke = int(rng.integers(0, 4))  # thicker strokes, like a broader pen
    ImageDraw.Draw(canvas).text((size // 2, size // 2), str(digit), fill=255, font=font, anchor="mm",
                                stroke_width=stroke, stroke_fill=255)
    shear = float(rng.uniform(-0.3, 0.3))
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, (1, shear, -shear * size / 2, 0, 1, 0),
                              resample=Image.Resampling.BILINEAR)
    canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
    ink = np.asarray(canvas)
    ys, xs = np.nonzero(ink > 0)
    box = canvas.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    scale = 20 / max(box.size)
    box = box.resize((max(1, round(box.size[0] * scale)), max(1, round(box.size[1] * scale))), Image.Resampling.LANCZOS)
    pixels = np.asarray(box, dtype=np.float64)
    total = pixels.sum()
    cy = (pixels.sum(1) * np.arange(pixels.shape[0])).sum() / total
    cx = (pixels.sum(0) * np.arange(pixels.shape[1])).sum() / total
    out = Image.new("L", (28, 28), 0)
    out.paste(box, (int(round(14 - cx)), int(round(14 - cy))))
    return np.asarray(out, dtype=np.uint8)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    with open(path, "wb") as fh:
        fh.write(struct.pack(">BBBB", 0, 0, 0x08, array.ndim))
        fh.write(struct.pack(f">{array.ndim}I", *array.shape))
        fh.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Directory for train-images-idx3-ubyte and train-labels-idx1-ubyte.")
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    fonts = find_fonts()
    if not fonts:
        print("font_digits: no TrueType fonts found (looked in " + ", ".join(FONT_GLOBS) + ")", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    labels = np.arange(args.count) % 10
    rng.shuffle(labels)
    images = np.stack([render_digit(int(d), fonts[int(rng.integers(len(fonts)))], rng) for d in labels])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_idx(out / "train-images-idx3-ubyte", images)
    write_idx(out / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    print(f"{args.count} digits from {len(fonts)} fonts (seed {args.seed}) -> {out}/train-images-idx3-ubyte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
