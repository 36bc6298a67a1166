"""Columns built from buffers equal what pyarrow.array builds, nulls included,
and building them never imports pandas (the reason they exist)."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from gandata.arrow_columns import (
    binary_column,
    fixed_binary_column,
    float64_list_column,
    numeric_column,
    string_column,
)


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (lambda: string_column(["a", None, "ünïcode", ""]), lambda: pa.array(["a", None, "ünïcode", ""], pa.string())),
        (lambda: string_column([]), lambda: pa.array([], pa.string())),
        (lambda: binary_column([b"\x00\x01", None, b""]), lambda: pa.array([b"\x00\x01", None, b""], pa.binary())),
        (lambda: fixed_binary_column([b"ab", b"cd"], 2), lambda: pa.array([b"ab", b"cd"], pa.binary(2))),
        (lambda: numeric_column([1.5, None, 2.0] * 5, "float32"), lambda: pa.array([1.5, None, 2.0] * 5, pa.float32())),
        (lambda: numeric_column([-(2**63), 2**63 - 1], "int64"), lambda: pa.array([-(2**63), 2**63 - 1], pa.int64())),
        (lambda: numeric_column([3, 4], "int32"), lambda: pa.array([3, 4], pa.int32())),
        (lambda: float64_list_column([[0.1, 0.2, 0.3], [], [1.0]]), lambda: pa.array([[0.1, 0.2, 0.3], [], [1.0]], pa.list_(pa.float64()))),
    ],
)
def test_columns_equal_pyarrow_array(built, expected):
    column = built()
    column.validate(full=True)
    assert column.equals(expected())


def test_fixed_binary_refuses_a_wrong_width():
    with pytest.raises(ValueError, match="2 bytes"):
        fixed_binary_column([b"ab", b"c"], 2)


def test_no_pandas_import():
    code = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq, io\n"
        "from gandata.arrow_columns import string_column, numeric_column, float64_list_column\n"
        "t = pa.Table.from_arrays([string_column(['a']), numeric_column([1], 'int32'), float64_list_column([[1.0]])], names=['s', 'i', 'l'])\n"
        "pq.write_table(t, io.BytesIO())\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
