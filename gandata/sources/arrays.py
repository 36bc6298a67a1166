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
    label id as a string when the source has no names)."""
    for i in range(len(images)):
        row = start + i
        label = None
        if labels is not None:
            lid = int(labels[i])
            label = names[lid] if names is not None and 0 <= lid < len(names) else str(lid)
        key = f"{key_prefix}#{row}"
        yield Sample(key=key, locator=f"{locator}#{row}", label=label, array=np.ascontiguousarray(images[i]), provenance={"origin": key})

