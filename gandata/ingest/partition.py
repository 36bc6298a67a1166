"""Ingest: one source partition -> one staged partition.

Runs in worker processes. Each sample is decoded, oriented, converted and
fitted to the target size (``gandata.image.fit.prepare_image``); its exact
content hash and pixel sums are computed here, so that the global plan step
only ever reads small metadata.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gandata.clean.scores import batch_image_scores, channel_moments, detail_shares
from gandata.config import ImageConfig
from gandata.errors import BuildError, GandataError
from gandata.image.decode import ImageRejected
from gandata.image.fit import prepare_image
from gandata.image.jpeg_quality import jpeg_quality
from gandata.ingest.staging import StagedRow, is_complete, write_partition
from gandata.records import Rejection, Sample
from gandata.sources.base import Partition, Source
from gandata.util.paths import printable_name


@dataclass(frozen=True)
class IngestTask:
    """Everything a worker needs to stage one partition."""

    source: Source
    source_index: int
    partition: Partition
    image: ImageConfig
    part_dir: str


@dataclass(frozen=True)
class IngestResult:
    part_dir: str
    num_staged: int
    num_rejected: int
    reused: bool


def content_hash(pixels: np.ndarray) -> bytes:
    """A 128-bit hash of the staged pixels (shape included): exact duplicates
    are images whose decoded, fitted pixels are equal."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.digest()


def ingest_partition(task: IngestTask) -> IngestResult:
    """Stage one partition, or reuse it when a previous run completed it."""
    part_dir = Path(task.part_dir)
    if is_complete(part_dir):
        return IngestResult(task.part_dir, -1, -1, reused=True)
    size, channels = task.image.size_px, task.image.channels
    images: list[np.ndarray] = []
    rows: list[StagedRow] = []
    tiles: list[np.ndarray | None] = []
    rejections: list[Rejection] = []
    try:
        for item in task.source.read(task.partition):
            if isinstance(item, Rejection):
                if not item.source:
                    item.source = task.source.uri
                item.key, item.locator = printable_name(item.key), printable_name(item.locator)
                rejections.append(item)
                continue
            staged = _stage_sample(item, task.image)
            if isinstance(staged, Rejection):
                staged.source = task.source.uri
                rejections.append(staged)
                continue
            pixels, row, tile = staged
            images.append(pixels)
            rows.append(row)
            tiles.append(tile)
    except GandataError:
        raise
    except Exception as exc:  # a bug or an unusable source: name the partition
        raise BuildError(
            f"source {task.source.uri}: ingest of partition {task.partition.index} "
            f"({task.partition.description or 'no description'}) failed: {exc!r}\n{traceback.format_exc()}"
        ) from None
    stacked = np.stack(images) if images else np.zeros((0, size, size, channels), np.uint8)
    _add_partition_stats(stacked, rows, tiles)
    write_partition(part_dir, stacked, rows, rejections)
    return IngestResult(task.part_dir, len(rows), len(rejections), reused=False)


def _stage_sample(sample: Sample, image: ImageConfig) -> tuple[np.ndarray, StagedRow, np.ndarray | None] | Rejection:
    """Decode and fit one sample: its pixels, its staged row and its native
    luma tile (for ``score_detail``, computed per partition), or why not."""
    try:
        prepared = prepare_image(sample.data, sample.array, image)
    except ImageRejected as exc:
        return Rejection(key=sample.key, locator=sample.locator, reason=exc.reason, detail=f"{sample.key}: {exc.detail}")
    pixels = prepared.pixels
    # Staged text is UTF-8: a file name that is not (bytes kept by Python as
    # surrogates) is stored escaped rather than aborting the partition.
    row = StagedRow(
        key=printable_name(sample.key),
        locator=printable_name(sample.locator),
        label=printable_name(sample.label),
        original_width=prepared.original_width,
        original_height=prepared.original_height,
        upscale=float(prepared.upscale),
        content_hash=content_hash(pixels),
        provenance={k: printable_name(v) if isinstance(v, str) else v for k, v in sample.provenance.items()},
        split=sample.split,
        # The JPEG quality read from the file's tables, for the
        # near-duplicate keep rule; None (a null in staging) for other inputs.
        scores={"jpeg_quality": jpeg_quality(sample.data) if sample.data is not None else None},
    )
    return pixels, row, prepared.native_luma


def _add_partition_stats(images: np.ndarray, rows: list[StagedRow], tiles: list[np.ndarray | None] | None = None) -> None:
    """Pixel sums, cleaning scores, pHash and thumbnail of every staged image,
    computed for the whole partition at once (per-image numpy calls cost more
    in overhead than in arithmetic at training sizes). Scores are always
    computed (on the small fitted images), so cleaning thresholds can change
    without re-staging: the staged key depends on the image options only.
    ``score_detail`` is measured on the native-resolution ``tiles`` (None:
    decoded at reduced scale, not measured; a null in staging)."""
    sums, squares = channel_moments(images)
    for row, s, sq in zip(rows, (sums / 255.0).tolist(), (squares / 65025.0).tolist()):
        row.channel_sum, row.channel_sumsq = s, sq
    scores, hashes, thumbs = batch_image_scores(images, np.array([r.upscale for r in rows], np.float64), (sums, squares))
    names = list(scores)
    details = detail_shares(tiles if tiles is not None else [None] * len(rows))
    for i, row in enumerate(rows):
        row.scores = {**(row.scores or {}), **{name: float(scores[name][i]) for name in names}}
        row.scores["detail"] = float(details[i]) if np.isfinite(details[i]) else None
        row.phash = int(hashes[i])
        row.thumb = thumbs[i]
