"""What ingest computes must not depend on the CPU it runs on: a Ray cluster
mixes machines, and CI runs on Intel one day and AMD the next.

OpenBLAS picks a kernel per CPU, and each sums a matrix product in an order
of its own (the AVX-512 one also fuses multiply and add): the default
dataset's pixels, the grayscale luma and the perceptual hashes all came out
different on Intel AVX-512, AMD and older CPUs, and with them which images a
build kept. OPENBLAS_CORETYPE forces another CPU's kernel, so one machine can
run them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            return next((set(line.split(":", 1)[1].split()) for line in fh if line.startswith("flags")), set())
    except OSError:
        return set()


FLAGS = _cpu_flags()
# The kernels this CPU can run: OpenBLAS falls back to a generic one, or stops,
# when forced onto instructions the CPU lacks.
CORES = ["Prescott", "Haswell"] + (["SkylakeX"] if "avx512f" in FLAGS else [])

PROBE = """
import hashlib
import numpy as np
from gandata.clean.phash import phash, phash_batch
from gandata.clean.scores import batch_image_scores, detail_shares, image_scores, luma
from gandata.sources.shapes import SHAPE_CLASSES, render_shape

images = np.stack([render_shape(seed, i, shape, 64) for seed in range(2) for i in range(150) for shape in SHAPE_CLASSES])
gray = luma(images)
gray8 = np.clip(gray + 0.5, 0, 255).astype(np.uint8)
# Flat images: every AC coefficient of their DCT is rounding noise.
flat = np.stack([np.full((64, 64), v, np.uint8) for v in (0, 77, 128, 200, 255)])
stack = np.concatenate([gray8, flat])
scores, hashes, thumbs = batch_image_scores(images, np.ones(len(images)))
tiles = detail_shares([g[:32, :32] for g in gray8[:200]])
single = [image_scores(im) for im in images[::40]]
parts = (images, gray, phash_batch(stack), np.array([phash(g[:60, :60]) for g in stack[::25]]),
         np.stack([scores[k] for k in sorted(scores)]), hashes, b"".join(thumbs), tiles, repr(single).encode())
for part in parts:
    print(hashlib.sha256(part if isinstance(part, bytes) else np.ascontiguousarray(part).tobytes()).hexdigest())
"""


NEEDS_KERNELS = pytest.mark.skipif(not {"avx2", "fma"} <= FLAGS, reason="needs an x86-64 CPU with AVX2 and FMA to run several OpenBLAS kernels")


def _under_each_kernel(code: str, arg: Callable[[str], str] = lambda core: "") -> dict[str, str]:
    """What ``python -c code arg(core)`` prints with each OpenBLAS kernel forced."""
    outputs = {}
    for core in CORES:
        env = {**os.environ, "OPENBLAS_CORETYPE": core}
        done = subprocess.run([sys.executable, "-c", code, arg(core)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs[core] = done.stdout
    return outputs


@NEEDS_KERNELS
def test_pixels_luma_and_hashes_are_the_same_under_every_blas_kernel() -> None:
    outputs = {core: text.split() for core, text in _under_each_kernel(PROBE).items()}
    names = ("shapes pixels", "luma", "phash_batch", "phash", "batch scores", "batch hashes", "thumbnails", "detail shares", "image_scores")
    for core in CORES[1:]:
        differing = [name for name, x, y in zip(names, outputs[CORES[0]], outputs[core]) if x != y]
        assert not differing, f"{core} and {CORES[0]} differ in {differing}"


BUILD = """
import hashlib, json, sys
import pyarrow.parquet as pq
from gandata.config import BalanceConfig, BuildConfig, ImageConfig, OutputConfig, SourceSpec
from gandata.pipeline import build

out = sys.argv[1]
build(BuildConfig(
    sources=(SourceSpec("synth:shapes?count=150&imbalance=4&size=24"),), image=ImageConfig(size_px=16),
    balance=BalanceConfig(mode="oversample", val_fraction=0.2),
    out=OutputConfig(shard_size=64, dtype="float16", normalize="standardize"), seed=3, workers=1, output=out,
))
manifest = json.load(open(out + "/manifest.json"))
rows = json.dumps(pq.read_table(out + "/samples.parquet").to_pylist(), sort_keys=True, default=str)
print(json.dumps([manifest["shards"], manifest["mean"], manifest["std"], manifest["class_counts"], manifest["rejections"],
                  hashlib.sha256(rows.encode()).hexdigest()]))
"""


@NEEDS_KERNELS
def test_a_cleaned_balanced_build_is_the_same_under_every_blas_kernel(tmp_path: Path) -> None:
    outputs = {core: text.strip().splitlines()[-1] for core, text in _under_each_kernel(BUILD, lambda core: str(tmp_path / core)).items()}
    assert len(set(outputs.values())) == 1, {core: text[:200] for core, text in outputs.items()}
