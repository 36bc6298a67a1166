"""Shards written straight from numpy are byte for byte what
``safetensors.numpy.save`` writes, and the returned hash is the file's."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_save

from gandata.write.safetensors_file import write_safetensors


def _tensors(dtype: str, n: int, weights: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 3, 5, 7)).astype(dtype)
    tensors = {"images": images, "labels": rng.integers(-1, 9, n).astype(np.int64)}
    if weights:
        tensors["weights"] = rng.random(n).astype(np.float32)
    return tensors


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32"])
@pytest.mark.parametrize("n", [0, 1, 3, 64])
@pytest.mark.parametrize("weights", [False, True])
def test_same_bytes_as_safetensors(tmp_path: Path, dtype: str, n: int, weights: bool) -> None:
    tensors = _tensors(dtype, n, weights)
    path = tmp_path / "shard.safetensors"
    digest = write_safetensors(path, tensors, {"format": "gandata"})
    expected = safetensors_save(tensors, metadata={"format": "gandata"})
    assert path.read_bytes() == expected
    assert digest == hashlib.sha256(expected).hexdigest()
    loaded = load_file(str(path))
    assert all(np.array_equal(loaded[k], v) for k, v in tensors.items())


def test_other_dtypes_and_strided_arrays_go_through_the_library(tmp_path: Path) -> None:
    strided = np.arange(48, dtype=np.uint8).reshape(4, 12)[:, ::2]  # not contiguous
    tensors = {"a": strided, "b": np.arange(3, dtype=np.int32), "names-é": np.ones(2, np.float64)}
    path = tmp_path / "x.safetensors"
    digest = write_safetensors(path, tensors, {"format": "gändata"})
    expected = safetensors_save(tensors, metadata={"format": "gändata"})
    assert path.read_bytes() == expected and digest == hashlib.sha256(expected).hexdigest()


def test_non_ascii_metadata_is_written_as_the_library_does(tmp_path: Path) -> None:
    tensors = _tensors("uint8", 3, False)
    path = tmp_path / "x.safetensors"
    write_safetensors(path, tensors, {"format": "gändata"})
    assert path.read_bytes() == safetensors_save(tensors, metadata={"format": "gändata"})
