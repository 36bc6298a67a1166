"""Arrow columns to and from numpy buffers, without pandas.

``pyarrow.array``, ``Array.to_numpy`` and ``pyarrow.parquet.read_table``
import pandas the first time they run when it is installed (they check for
pandas types; read_table through ``pyarrow.dataset``), and nothing turns that
off: about half a second in every ingest worker and in the parent of every
build, verify or stats run. The pipeline only needs plain column types, and
``pyarrow.Array.from_buffers`` / ``Array.buffers`` never consult pandas, so
its columns are assembled from and read out of their Arrow buffers
(validity bitmap, offsets, data) here, and parquet files are read with
``ParquetFile``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "binary_column", "bool_column", "fixed_binary_column", "float64_list_column", "numeric_column", "numpy_column",
    "python_column", "read_parquet", "string_column", "to_numpy",
]


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


def numpy_column(values: np.ndarray) -> pa.Array:
    """A column (no nulls) of a 1-D numeric or boolean numpy array's values."""
    data = np.ascontiguousarray(values)
    if data.ndim != 1:
        raise ValueError("numpy_column: a 1-D array is needed")
    if data.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(data), [None, pa.py_buffer(np.packbits(data, bitorder="little"))])
    return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(data), [None, pa.py_buffer(data)])


def bool_column(values: Sequence[bool | None]) -> pa.Array:
    """A ``bool`` column (None -> null)."""
    present = np.array([v is not None for v in values], dtype=bool)
    bits = np.packbits(np.array([bool(v) for v in values], dtype=bool), bitorder="little")
    validity, nulls = _validity(present)
    return pa.Array.from_buffers(pa.bool_(), len(values), [validity, pa.py_buffer(bits)], null_count=nulls)


def python_column(values: Sequence[Any], kinds: set[type] | None = None) -> pa.Array | None:
    """A column of plain Python scalars, typed as ``pyarrow.array`` would
    type them: all bool -> bool, all int -> int64, int and float -> double,
    all str -> string (None -> null; all None -> the null type). None for anything
    else (mixed kinds, nested values), for the caller to handle.

    ``kinds`` (default: the types of ``values`` themselves) types the column
    instead, so that chunks of one column written apart all get one type."""
    if kinds is None:
        kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {str}:
        return string_column(values)
    if kinds == {bool}:
        return bool_column(values)
    if kinds == {int}:
        fits = all(v is None or -(1 << 63) <= v < (1 << 63) for v in values)
        return numeric_column(values, "int64") if fits else None
    if kinds == {int, float} or kinds == {float}:
        return numeric_column(values, "float64")
    return None


def to_numpy(column: pa.Array | pa.ChunkedArray, null_as: bool | None = None, copy: bool = True) -> np.ndarray:
    """A column's values as a new numpy array, like ``to_numpy(zero_copy_only=False)``.

    Integer, floating-point and boolean columns without nulls are read from
    their buffers, as are boolean columns with nulls when ``null_as`` says
    what a null becomes; anything else (strings, nulls) goes through pyarrow.
    With ``copy=False`` an integer or floating-point array without nulls is
    a read-only view of its Arrow buffer instead of a copy.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    kind = array.type
    if pa.types.is_boolean(kind) and (array.null_count == 0 or null_as is not None):
        values = _bits(array.buffers()[1], array.offset, len(array))
        if array.null_count:
            valid = _bits(array.buffers()[0], array.offset, len(array))
            values = np.where(valid, values, bool(null_as))
        return values
    if array.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        dtype = np.dtype(kind.to_pandas_dtype())
        data = array.buffers()[1]
        if data is None or len(array) == 0:
            return np.zeros(0, dtype)
        view = np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
        return view.copy() if copy else view
    return array.to_numpy(zero_copy_only=False)


def _bits(buffer: pa.Buffer | None, offset: int, length: int) -> np.ndarray:
    """``length`` bits (LSB first) of an Arrow bitmap from bit ``offset``, as bools."""
    if buffer is None or length == 0:
        return np.zeros(length, bool)
    bits = np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")
    return bits[offset : offset + length].astype(bool)


def read_parquet(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> pa.Table:
    """A whole parquet file as a table (``pq.read_table`` without its dataset layer)."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read(columns=columns, use_threads=False)
