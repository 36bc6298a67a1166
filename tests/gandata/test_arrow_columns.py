"""Columns built from buffers equal what pyarrow.array builds, nulls included,
columns read out of buffers equal pyarrow's to_numpy, and neither (nor a
whole build, verify or stats run) imports pandas (the reason they exist)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from gandata.util.arrow import (
    binary_column,
    bool_column,
    fixed_binary_column,
    float64_list_column,
    numeric_column,
    numpy_column,
    python_column,
    string_column,
    to_numpy,
)
from tests.common.imports import imports_module


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
        "import pyarrow as pa, pyarrow.parquet as pq, io\n"
        "from gandata.util.arrow import string_column, numeric_column, float64_list_column\n"
        "t = pa.Table.from_arrays([string_column(['a']), numeric_column([1], 'int32'), float64_list_column([[1.0]])], names=['s', 'i', 'l'])\n"
        "pq.write_table(t, io.BytesIO())\n"
    )
    assert not imports_module(code, "pandas")


def test_to_numpy_reads_buffers_like_pyarrow() -> None:
    chunks = [numpy_column(np.arange(7, dtype=np.int32)), numpy_column(np.arange(3, dtype=np.int32))]
    column = pa.chunked_array(chunks)
    assert np.array_equal(to_numpy(column), column.to_numpy())
    assert to_numpy(chunks[0].slice(2, 3)).tolist() == [2, 3, 4]
    floats = numpy_column(np.linspace(0, 1, 5, dtype=np.float32))
    assert to_numpy(floats).dtype == np.float32 and np.array_equal(to_numpy(floats), floats.to_numpy())
    flags = bool_column([True, None, False, True, None])
    assert to_numpy(flags, null_as=False).tolist() == [True, False, False, True, False]
    assert to_numpy(flags.slice(1), null_as=True).tolist() == [True, False, True, True]
    assert to_numpy(bool_column([False, True])).tolist() == [False, True]
    mask = np.array([True, False, True, True, False, False, True, False, True])
    assert numpy_column(mask).equals(pa.array(mask.tolist())) and to_numpy(numpy_column(mask)).tolist() == mask.tolist()


@pytest.mark.parametrize("values", [["a", None], [True, None, False], [1, None, 3], [1, 2.5, None], [None, None]])
def test_python_column_types_like_pa_array(values: list) -> None:
    assert python_column(values).equals(pa.array(values))


def test_python_column_leaves_mixed_and_nested_values_to_the_caller() -> None:
    assert python_column(["a", 1]) is None
    assert python_column([[1], [2]]) is None
    assert python_column([1 << 70]) is None


def test_build_verify_and_stats_never_import_pandas(tmp_path: Path) -> None:
    # pyarrow imports pandas (~0.5 s) on its first pa.array / to_numpy /
    # read_table; a plain build, verify and stats must not pay for it.
    photos = tmp_path / "photos" / "cat"
    photos.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((80, 90, 3), 40 * i, np.uint8)).save(photos / f"{i}.jpg")
    script = (
        "import sys\n"
        "from gandata.cli import main\n"
        f"for args in (['build', {str(photos.parent)!r}, '-o', {str(tmp_path / 'a')!r}, '-q', '--workers', '2', '--allow-empty'],\n"
        f"             ['build', 'synth:shapes?count=64', '-o', {str(tmp_path / 'b')!r}, '-q', '--workers', '1'],\n"
        f"             ['verify', {str(tmp_path / 'a')!r}], ['stats', {str(tmp_path / 'b')!r}]):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, args\n"
        "print('PANDAS', 'pandas' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "PANDAS False" in result.stdout
