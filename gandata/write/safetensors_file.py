"""Write a safetensors file straight from numpy arrays, hashing it on the way.

``safetensors.numpy.save`` copies every tensor into Python bytes and then
into one payload (a 4,096-image shard at 256 px is 0.8 GB, so two extra
copies of it per worker). This writes the same bytes, header and tensor
buffers in turn, while a second thread hashes them: about half the time per
shard and no copy. A tensor may also be given as ``TensorBlocks``, made
block by block while the file is written, so a shard never needs to be whole
in memory. The header is byte-identical to the library's (tests compare
whole files); a dtype outside the table below goes through the library.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Union

import numpy as np
from safetensors.numpy import save as safetensors_save

from gandata.util.writes import write_in_slices

__all__ = ["Tensor", "TensorBlocks", "write_safetensors"]

# safetensors orders tensors by dtype, the later members of its Dtype enum
# first, then by name; these are the ranks (enum positions) of the dtypes a
# shard can hold. Data is little-endian, as numpy stores it here.
_DTYPES: dict[np.dtype, tuple[str, int]] = {
    np.dtype("uint8"): ("U8", 4),
    np.dtype("float16"): ("F16", 11),
    np.dtype("float32"): ("F32", 15),
    np.dtype("int64"): ("I64", 18),
}


@dataclass(frozen=True)
class TensorBlocks:
    """A tensor of ``dtype`` and ``shape`` given as consecutive blocks along
    its first axis (``blocks``: iterated once, while the file is written)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    blocks: Iterable[np.ndarray]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


Tensor = Union[np.ndarray, TensorBlocks]

# Blocks the hashing thread may lag behind the writes (bounds the memory
# that blocks made on the fly hold).
_HASH_QUEUE = 4


def _layout(tensors: dict[str, Tensor], metadata: dict[str, str]) -> tuple[bytes, list[str]] | None:
    """The file's header (length prefix included) and the tensor names in
    file order, as safetensors lays them out; None for a dtype not in _DTYPES."""
    if any(np.dtype(t.dtype) not in _DTYPES or np.dtype(t.dtype).byteorder == ">" for t in tensors.values()):
        return None
    names = sorted(tensors, key=lambda name: (-_DTYPES[np.dtype(tensors[name].dtype)][1], name))
    header: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in names:
        t = tensors[name]
        header[name] = {"dtype": _DTYPES[np.dtype(t.dtype)][0], "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text, names


def _bytes_of(name: str, tensor: Tensor) -> Iterator[memoryview]:
    """The tensor's data in file order, as byte views; checks that blocks
    add up to the declared dtype and shape."""
    if isinstance(tensor, np.ndarray):
        if tensor.size:
            yield memoryview(np.ascontiguousarray(tensor).reshape(-1).view(np.uint8))
        return
    written = 0
    for block in tensor.blocks:
        block = np.ascontiguousarray(block)
        if block.dtype != np.dtype(tensor.dtype) or block.shape[1:] != tuple(tensor.shape[1:]):
            raise ValueError(f"{name}: a block of {block.dtype} {block.shape} in a {np.dtype(tensor.dtype)} {tensor.shape} tensor")
        written += block.nbytes
        if block.size:
            yield memoryview(block.reshape(-1).view(np.uint8))
    if written != tensor.nbytes:
        raise ValueError(f"{name}: blocks of {written} bytes for a tensor of {tensor.nbytes}")


def _whole(tensor: Tensor) -> np.ndarray:
    if isinstance(tensor, np.ndarray):
        return tensor
    blocks = list(tensor.blocks)
    return np.concatenate(blocks) if blocks else np.zeros(tensor.shape, tensor.dtype)


def write_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """Write ``tensors`` to ``path`` as safetensors, fsync it, and return the
    file's SHA-256 (hex)."""
    layout = _layout(tensors, metadata)
    if layout is None:
        whole = {name: _whole(t) for name, t in tensors.items()}
        chunks: Iterable[memoryview] = [memoryview(safetensors_save(whole, metadata=metadata))]
    else:
        header, names = layout
        chunks = _chunks(header, [(name, tensors[name]) for name in names])
    digest = hashlib.sha256()
    pending: queue.Queue[memoryview | None] = queue.Queue(_HASH_QUEUE)

    def hash_all() -> None:
        while (chunk := pending.get()) is not None:
            digest.update(chunk)

    # Hashing, writing and fsync all release the GIL: hash while the file is
    # written (the writes and fsync stay on this thread, so their errors surface here).
    hashing = threading.Thread(target=hash_all)
    hashing.start()
    try:
        with open(path, "wb") as fh:  # buffered: a short write() is retried
            for chunk in chunks:
                write_in_slices(fh, chunk)
                pending.put(chunk)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        pending.put(None)
        hashing.join()
    return digest.hexdigest()


def _chunks(header: bytes, tensors: list[tuple[str, Tensor]]) -> Iterator[memoryview]:
    yield memoryview(header)
    for name, tensor in tensors:
        yield from _bytes_of(name, tensor)
