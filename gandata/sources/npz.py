"""NumPy arrays: ``npz:FILE`` (``.npz`` or ``.npy``).

An ``.npz`` holds an ``images`` array and, optionally, ``labels`` (integer
ids, one per image) and ``classes`` (a string array of class names in label
order); ``?images=NAME&labels=NAME`` picks other array names. An ``.npy``
holds images only (unlabeled). Images are ``[N, H, W]``, ``[N, H, W, C]`` or
``[N, C, H, W]`` (C = 1, 3 or 4), uint8 or float in [0, 1] (scaled by 255 and
rounded). Files are opened with ``allow_pickle=False``: an object array is
refused, never unpickled. ``.npy`` files are memory-mapped, so a worker reads
only its own rows.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.arrays import (
    ARRAY_MEMORY_BUDGET,
    array_samples,
    check_declared,
    file_stamp,
    row_partitions,
    rows_per_partition,
    split_uri,
    to_nhwc_uint8,
)
from gandata.sources.base import Partition, SourceContext


def _read_header(fh: Any) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of an .npy stream, nothing allocated."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    else:
        shape, _, dtype = np.lib.format._read_array_header(fh, version)  # 3.0: utf-8 header
    return tuple(int(d) for d in shape), dtype


def declared(path: str, images_key: str) -> tuple[tuple[int, ...], np.dtype, int, bool]:
    """(shape, dtype, bytes the file holds for it, read whole) of the images
    array, from its header: an .npz member's uncompressed size, an .npy
    file's size after the header. SourceError when there is no such array."""
    try:
        if path.endswith(".npy"):
            with open(path, "rb") as fh:
                shape, dtype = _read_header(fh)
                return shape, dtype, os.fstat(fh.fileno()).st_size - fh.tell(), False
        with zipfile.ZipFile(path) as zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if images_key not in names:
                raise SourceError(f"npz file {path}: no array {images_key!r} (found {', '.join(names) or 'none'})")
            info = zf.getinfo(images_key + ".npy")
            with zf.open(info) as fh:
                shape, dtype = _read_header(fh)
                return shape, dtype, info.file_size - fh.tell(), True
    except SourceError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise SourceError(f"npz file {path}: cannot read it ({exc})") from None


def _load(path: str, images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """(images, labels, class names) of the file, unconverted."""
    try:
        if path.endswith(".npy"):
            return np.load(path, mmap_mode="r", allow_pickle=False), None, None
        with np.load(path, allow_pickle=False) as npz:
            if images_key not in npz.files:
                raise SourceError(f"npz file {path}: no array {images_key!r} (found {', '.join(npz.files) or 'none'})")
            images = npz[images_key]
            labels = npz[labels_key] if labels_key in npz.files else None
            classes = [str(c) for c in npz["classes"].tolist()] if "classes" in npz.files else None
            return images, labels, classes
    except SourceError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # allow_pickle=False makes an object array a ValueError: refused, not unpickled.
        raise SourceError(f"npz file {path}: cannot read it ({exc})") from None


@dataclass
class NpzSource:
    uri: str
    path: str
    images_key: str
    labels_key: str
    num_rows: int
    names: tuple[str, ...] | None

    row_bytes: int = 1

    def partitions(self) -> Sequence[Partition]:
        return row_partitions([(os.path.basename(self.path), self.num_rows)], rows_per_partition(self.row_bytes))

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        _, start, stop = partition.items
        images, labels, _ = _load(self.path, self.images_key, self.labels_key)
        block = to_nhwc_uint8(images[start:stop], f"npz file {self.path}")
        block_labels = labels[start:stop] if labels is not None else None
        yield from array_samples(block, block_labels, start, self.names, os.path.basename(self.path), self.path)

    def class_names(self) -> list[str] | None:
        return list(self.names) if self.names is not None else None

    def fingerprint(self) -> str:
        return f"npz/1|{file_stamp(self.path)}|{self.images_key}|{self.labels_key}"


def open_npz(uri: str, spec: SourceSpec, ctx: SourceContext) -> NpzSource:
    """The array source for ``npz:FILE``; SourceError for a missing file, a
    missing images array, labels of the wrong length or non-integer labels."""
    path, options = split_uri(uri, "npz", spec, ("images", "labels"))
    if not os.path.isfile(path):
        raise SourceError(f"source {uri}: no such file {path}")
    images_key, labels_key = options.get("images", "images"), options.get("labels", "labels")
    # The header is checked before anything is allocated: a few bytes can
    # declare an array of terabytes.
    shape, dtype, available, whole = declared(path, images_key)
    if dtype.hasobject:
        raise SourceError(f"source {uri}: array {images_key!r} holds Python objects; refused (never unpickled)")
    check_declared(f"source {uri}", shape, dtype.itemsize, ctx.max_pixels, available,
                   ARRAY_MEMORY_BUDGET if whole else None)
    images, labels, classes = _load(path, images_key, labels_key)
    to_nhwc_uint8(images[:1], f"source {uri}")  # shape and dtype checked up front
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(images):
            raise SourceError(f"source {uri}: labels array of shape {labels.shape} does not match {len(images)} images")
        if not np.issubdtype(labels.dtype, np.integer):
            raise SourceError(f"source {uri}: labels must be integer class ids (found dtype {labels.dtype})")
        if len(labels) and (labels.min() < 0 or (classes and labels.max() >= len(classes))):
            known = f"0..{len(classes) - 1}" if classes else "0 or more"
            raise SourceError(f"source {uri}: label ids {labels.min()}..{labels.max()} fall outside the class ids {known}")
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    return NpzSource(uri=uri, path=path, images_key=images_key, labels_key=labels_key, num_rows=len(images),
                     names=tuple(classes) if classes else None, row_bytes=row_bytes)
