"""Arrow columns built straight from numpy buffers.

``pyarrow.array`` imports pandas the first time it runs when pandas is
installed (it checks every input for pandas types), and nothing turns that
off: about half a second in every ingest worker, which is a tenth of a
3,000-image build on two cores. The staging writer only needs a few plain
column types, and ``pyarrow.Array.from_buffers`` never consults pandas, so
those columns are assembled here from their Arrow buffers (validity bitmap,
offsets, data) instead.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["binary_column", "fixed_binary_column", "float64_list_column", "numeric_column", "string_column"]


def _validity(present: np.ndarray) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap (LSB first) and null count; no bitmap without nulls."""
    nulls = int(len(present) - np.count_nonzero(present))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(present, bitorder="little")), nulls


def _variable(values: Sequence[bytes | None], arrow_type: pa.DataType) -> pa.Array:
    present = np.array([v is not None for v in values], dtype=bool)
    lengths = np.fromiter((len(v) if v is not None else 0 for v in values), dtype=np.int32, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity, nulls = _validity(present)
    data = pa.py_buffer(b"".join(v for v in values if v is not None))
    return pa.Array.from_buffers(arrow_type, len(values), [validity, pa.py_buffer(offsets), data], null_count=nulls)


def string_column(values: Sequence[str | None]) -> pa.Array:
    """A ``string`` column (None -> null)."""
    return _variable([v.encode("utf-8") if v is not None else None for v in values], pa.string())


def binary_column(values: Sequence[bytes | None]) -> pa.Array:
    """A ``binary`` column (None -> null)."""
    return _variable(values, pa.binary())


def fixed_binary_column(values: Sequence[bytes], width: int) -> pa.Array:
    """A ``binary(width)`` column; every value must be ``width`` bytes."""
    if any(len(v) != width for v in values):
        raise ValueError(f"fixed_binary_column: every value must be {width} bytes")
    return pa.Array.from_buffers(pa.binary(width), len(values), [None, pa.py_buffer(b"".join(values))])


def numeric_column(values: Sequence[float | int | None], dtype: str) -> pa.Array:
    """A numeric column of numpy ``dtype`` ('int32', 'int64', 'float32', ...); None -> null."""
    present = np.array([v is not None for v in values], dtype=bool)
    data = np.array([v if v is not None else 0 for v in values], dtype=dtype)
    validity, nulls = _validity(present)
    return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(values), [validity, pa.py_buffer(data)], null_count=nulls)


def float64_list_column(rows: Sequence[Sequence[float]]) -> pa.Array:
    """A ``list<double>`` column without nulls."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int32, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((x for r in rows for x in r), dtype=np.float64, count=int(offsets[-1]))
    child = pa.Array.from_buffers(pa.float64(), len(flat), [None, pa.py_buffer(flat)])
    return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), len(offsets), [None, pa.py_buffer(offsets)]), child)
