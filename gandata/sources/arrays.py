"""Helpers shared by the sources that hold decoded pixel arrays (IDX, CIFAR,
npz): row-range partitions, URI query options, and turning a block of rows
into ``Sample`` records.

A partition's items are ``(file, start, stop)`` row ranges, so a worker only
ever reads the rows of its own partition.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence
from urllib.parse import parse_qsl

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Sample
from gandata.sources.base import Partition

# Rows per partition: a 60k-image MNIST file is 6 units of work, and a
# worker's staged partition stays a few MiB.
ROWS_PER_PARTITION = 10_000
# Pixel bytes a worker reads for one partition at most: large images get
# fewer rows per partition, so a worker's memory stays bounded.
PARTITION_BYTES = 64 << 20
# An array a source must hold whole in memory (an .npz member, a CIFAR
# python batch) may be at most this large; .npy files are memory-mapped.
ARRAY_MEMORY_BUDGET = 2 << 30


def rows_per_partition(row_bytes: int) -> int:
    """Rows per partition for rows of ``row_bytes`` bytes (PARTITION_BYTES)."""
    return max(1, min(ROWS_PER_PARTITION, PARTITION_BYTES // max(1, row_bytes)))


def image_pixels(shape: Sequence[int]) -> int:
    """Pixels per image (H x W) of an NHW, NHWC or NCHW array shape."""
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        return int(shape[2]) * int(shape[3])
    return int(shape[1]) * int(shape[2]) if len(shape) >= 3 else 0


def check_declared(where: str, shape: Sequence[int], itemsize: int, max_pixels: int, available: int | None,
                   budget: int | None = None) -> None:
    """Check an array's declared shape before anything is allocated: images
    within ``max_pixels``, the data no larger than the ``available`` bytes
    the file holds, and (for arrays read whole) within ``budget``."""
    if len(shape) not in (3, 4):
        raise SourceError(f"{where}: images of shape {tuple(shape)} are not NHW, NHWC or NCHW")
    pixels = image_pixels(shape)
    if pixels > max_pixels:
        raise SourceError(f"{where}: images of {pixels} pixels exceed --max-pixels {max_pixels}")
    total = int(np.prod([int(d) for d in shape], dtype=object)) * itemsize
    if available is not None and total > available:
        raise SourceError(f"{where}: the header declares {total} bytes of images but the file holds {available}")
    if budget is not None and total > budget:
        raise SourceError(
            f"{where}: {total} bytes of images must be read whole, more than the {budget >> 20} MiB budget; "
            "store them as an .npy file (memory-mapped, read a partition at a time)"
        )


def query_options(uri: str, query: str, spec: SourceSpec, known: Sequence[str]) -> dict[str, str]:
    """A source's options: the spec's params overridden by the URI query;
    unknown keys are an error naming the URI."""
    options = dict(spec.params)
    try:
        options.update(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise SourceError(f"source {uri}: cannot parse the query {query!r} (expected key=value&key=value)") from None
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SourceError(f"source {uri}: unknown option(s) {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    return options


def split_uri(uri: str, scheme: str, spec: SourceSpec, known: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The path of ``scheme:PATH[?k=v&...]`` and its options (the spec's
    params, overridden by the URI query); unknown keys are an error."""
    rest = uri[len(scheme) + 1:] if uri.startswith(scheme + ":") else uri
    path, _, query = rest.partition("?")
    options = query_options(uri, query, spec, known)
    if not path:
        raise SourceError(f"source {uri}: no path given")
    return path, options


def row_partitions(blocks: Sequence[tuple[str, int]], size: int = ROWS_PER_PARTITION) -> list[Partition]:
    """Partitions of at most ``size`` rows over ``(file, num_rows)`` blocks."""
    out: list[Partition] = []
    for name, n in blocks:
        for start in range(0, n, size):
            stop = min(n, start + size)
            out.append(Partition(index=len(out), items=(name, start, stop), description=f"{name} rows {start}..{stop - 1}",
                                 num_inputs=stop - start))
    return out


def file_stamp(path: str) -> str:
    """Path, size and mtime: changes when the file does."""
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def to_nhwc_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 NHWC (or NHW) pixels from uint8 or float-in-[0,1] arrays in NHWC,
    NCHW or NHW layout; SourceError for anything else."""
    a = np.asarray(images)
    if a.ndim == 4 and a.shape[1] in (1, 3, 4) and a.shape[3] not in (1, 3, 4):
        a = a.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if a.ndim == 4 and a.shape[3] == 1:
        a = a[..., 0]
    if a.ndim not in (3, 4) or (a.ndim == 4 and a.shape[3] not in (3, 4)):
        raise SourceError(f"{where}: images of shape {a.shape} are not NHW, NHWC or NCHW with 1, 3 or 4 channels")
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if a.size and (not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0):
            raise SourceError(f"{where}: float images must lie in [0, 1] (found {a.min()}..{a.max()})")
        return np.rint(a * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) and (a.size == 0 or (a.min() >= 0 and a.max() <= 255)):
        return a.astype(np.uint8)
    raise SourceError(f"{where}: images of dtype {a.dtype} are not uint8 or float in [0, 1]")


def array_samples(
    images: np.ndarray, labels: np.ndarray | None, start: int, names: Sequence[str] | None,
    key_prefix: str, locator: str,
) -> Iterator[Sample]:
    """One Sample per row: key ``PREFIX#ROW``, label the class name (or the
    label id as a string when the source has no names). A negative label id,
    or one beyond the class names, is an error: it would make a new class."""
    for i in range(len(images)):
        row = start + i
        label = None
        if labels is not None:
            lid = int(labels[i])
            if lid < 0 or (names is not None and lid >= len(names)):
                known = f"0..{len(names) - 1}" if names is not None else "0 or more"
                raise SourceError(f"{locator}: row {row} has label id {lid}, outside the class ids {known}")
            label = names[lid] if names is not None else str(lid)
        key = f"{key_prefix}#{row}"
        yield Sample(key=key, locator=f"{locator}#{row}", label=label, array=np.ascontiguousarray(images[i]), provenance={"origin": key})

