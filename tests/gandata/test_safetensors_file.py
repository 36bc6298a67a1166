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


@pytest.mark.parametrize("block", [1, 5, 64, 1000])
def test_a_tensor_written_in_blocks_is_the_same_file(tmp_path: Path, block: int) -> None:
    from gandata.write.safetensors_file import TensorBlocks

    tensors = _tensors("float16", 64, True)
    images = tensors["images"]
    blocks = TensorBlocks(images.dtype, images.shape, (images[k : k + block] for k in range(0, len(images), block)))
    path = tmp_path / "blocks.safetensors"
    digest = write_safetensors(path, {**tensors, "images": blocks}, {"format": "gandata"})
    expected = safetensors_save(tensors, metadata={"format": "gandata"})
    assert path.read_bytes() == expected and digest == hashlib.sha256(expected).hexdigest()


def test_blocks_that_do_not_make_the_declared_tensor_are_refused(tmp_path: Path) -> None:
    from gandata.write.safetensors_file import TensorBlocks

    images = np.zeros((4, 3, 2, 2), np.uint8)
    short = TensorBlocks(images.dtype, (5, 3, 2, 2), iter([images]))
    with pytest.raises(ValueError, match="blocks of 48 bytes for a tensor of 60"):
        write_safetensors(tmp_path / "a.safetensors", {"images": short}, {})
    other = TensorBlocks(np.dtype(np.uint8), (4, 3, 2, 2), iter([images.astype(np.float16)]))
    with pytest.raises(ValueError, match="a block of float16"):
        write_safetensors(tmp_path / "b.safetensors", {"images": other}, {})
