"""MNIST-style IDX files: ``idx:PATH`` names the images file.

The IDX format: a 4-byte magic (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
Images are ``[N, H, W]`` unsigned bytes (type 0x08); labels ``[N]``.

The labels file is found beside the images file by the standard naming
(``images`` -> ``labels`` and ``idx3`` -> ``idx1`` in the file name, with or
without ``.gz``): MNIST ``train-images-idx3-ubyte``, Fashion-MNIST and KMNIST
``train-images-idx3-ubyte.gz``, EMNIST ``emnist-letters-train-images-idx3-ubyte``.
Without a labels file the source is unlabeled. IDX carries no class names:
classes are named by label id (``"0"``, ``"1"``, ...).

EMNIST stores every image transposed; files whose name starts with
``emnist`` are transposed back (``?transpose=0|1`` overrides).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from typing import IO, Iterator, Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.arrays import (
    array_samples,
    check_declared,
    file_stamp,
    row_partitions,
    rows_per_partition,
    split_uri,
)
from gandata.sources.base import Partition, SourceContext

_UBYTE = 0x08


def _open(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_header(path: str) -> tuple[tuple[int, ...], int]:
    """(dims, header size in bytes) of an IDX file; SourceError when it is not one."""
    try:
        with _open(path) as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise SourceError(f"idx file {path}: not an IDX file (bad magic {head.hex()})")
            if head[2] != _UBYTE:
                raise SourceError(f"idx file {path}: type code 0x{head[2]:02x} is not supported (unsigned bytes 0x08 only)")
            ndim = head[3]
            raw = fh.read(4 * ndim)
            if len(raw) < 4 * ndim:
                raise SourceError(f"idx file {path}: truncated header")
            dims = struct.unpack(f">{ndim}I", raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"idx file {path}: cannot read it ({exc})") from None
    return tuple(dims), 4 + 4 * ndim


def read_rows(path: str, header: int, row_shape: tuple[int, ...], start: int, stop: int) -> np.ndarray:
    """Rows ``start..stop`` of an IDX file (seeks; a .gz file decompresses up
    to ``stop`` without holding the earlier rows)."""
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) if row_shape else 1
    with _open(path) as fh:
        fh.seek(header + start * row_bytes)
        want = (stop - start) * row_bytes
        data = fh.read(want)
    if len(data) < want:
        raise SourceError(f"idx file {path}: truncated (rows {start}..{stop - 1} are not all there)")
    return np.frombuffer(data, np.uint8).reshape((stop - start,) + row_shape)


def labels_file_for(images_path: str) -> str | None:
    """The labels file beside an images file, by the standard naming."""
    folder, name = os.path.split(images_path)
    base = name[:-3] if name.endswith(".gz") else name
    guess = base.replace("images", "labels").replace("idx3", "idx1")
    if guess == base:
        return None
    for candidate in (guess, guess + ".gz"):
        full = os.path.join(folder, candidate)
        if os.path.isfile(full):
            return full
    return None


@dataclass
class IdxSource:
    uri: str
    path: str
    labels_path: str | None
    num_rows: int
    row_shape: tuple[int, ...]
    header: int
    labels_header: int
    transpose: bool

    def partitions(self) -> Sequence[Partition]:
        row_bytes = int(np.prod(self.row_shape, dtype=np.int64))
        return row_partitions([(os.path.basename(self.path), self.num_rows)], rows_per_partition(row_bytes))

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        _, start, stop = partition.items
        images = read_rows(self.path, self.header, self.row_shape, start, stop)
        if self.transpose:
            images = images.transpose(0, 2, 1)
        labels = read_rows(self.labels_path, self.labels_header, (), start, stop) if self.labels_path else None
        yield from array_samples(images, labels, start, None, os.path.basename(self.path), self.path)

    def class_names(self) -> list[str] | None:
        return None

    def fingerprint(self) -> str:
        return f"idx/1|{file_stamp(self.path)}|{file_stamp(self.labels_path) if self.labels_path else '-'}|t={self.transpose}"


def open_idx(uri: str, spec: SourceSpec, ctx: SourceContext) -> IdxSource:
    """The IDX source for ``idx:PATH``; SourceError for a missing or malformed
    file, or a labels file whose count differs from the images."""
    path, options = split_uri(uri, "idx", spec, ("transpose", "labels"))
    if not os.path.isfile(path):
        raise SourceError(f"source {uri}: no such file {path}")
    dims, header = read_header(path)
    if len(dims) not in (3, 4):
        raise SourceError(f"source {uri}: {path} has {len(dims)} dimensions; an images file has 3 (N, H, W) or 4 (N, H, W, C)")
    # Checked before any row is read: a 16-byte header can declare terabytes.
    # A .gz file's size is not known without inflating it; its reads are
    # bounded per partition and a short file is reported as truncated.
    available = None if path.endswith(".gz") else os.path.getsize(path) - header
    check_declared(f"source {uri}", dims, 1, ctx.max_pixels, available)
    labels_path = options.get("labels") or labels_file_for(path)
    if labels_path is not None and not os.path.isfile(labels_path):
        raise SourceError(f"source {uri}: no such labels file {labels_path}")
    labels_header = 0
    if labels_path is not None:
        label_dims, labels_header = read_header(labels_path)
        if len(label_dims) != 1 or label_dims[0] != dims[0]:
            raise SourceError(f"source {uri}: labels file {labels_path} holds {label_dims} labels for {dims[0]} images")
    default_t = os.path.basename(path).lower().startswith("emnist")
    transpose = options.get("transpose", "1" if default_t else "0") in ("1", "true", "yes")
    return IdxSource(uri=uri, path=path, labels_path=labels_path, num_rows=dims[0], row_shape=tuple(dims[1:]),
                     header=header, labels_header=labels_header, transpose=transpose)
