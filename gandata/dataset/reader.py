"""Reading a built dataset: ``open_dataset(path)``.

Shards are opened with safetensors (never pickle: loading a dataset cannot run
code from it). Random access (``ds[i]``) reads one sample through a memory map
of the shard's tensor bytes (the safetensors header gives each tensor's dtype,
shape and byte range), keeping a few shards mapped; ``iter_batches`` and
``load_all`` stream whole shards. Mapped shards are never pickled: a copy sent
to a DataLoader worker maps its own on first use.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, load_file

from gandata.dataset.manifest import read_manifest
from gandata.dataset.normalize import Normalization
from gandata.errors import FormatError
from gandata.util.paths import regular_file_inside
from gandata.util.remote import is_remote, join, local_path, read_bytes


@dataclass
class Arrays:
    """A whole split in memory."""

    images: np.ndarray  # [N, C, H, W], the stored dtype
    labels: np.ndarray  # int64 [N]
    weights: np.ndarray | None  # float32 [N], when the build wrote weights


class Dataset:
    """A built gandata dataset (one split of it).

    ``ds[i]`` returns ``(image [C, H, W] in the stored dtype, label)``;
    ``ds.get(i, normalize=True)`` returns the normalized float32 image.
    """

    def __init__(self, root: str | os.PathLike[str], split: str | None = None) -> None:
        # An object-store URL stays a string: Path would mangle "s3://".
        self.root: Any = str(root) if is_remote(root) else Path(local_path(root))
        self.manifest: dict[str, Any] = read_manifest(self.root)
        shards = self.manifest["shards"]
        available = sorted({s.get("split", "train") for s in shards})
        if split is None:
            # Without a name, read the training split when splits exist.
            split = "train" if "train" in available or not available else available[0]
            self.shards = [s for s in shards if s.get("split", "train") == split] if available else []
        else:
            if split not in available:
                raise FormatError(f"{self.root}: no split {split!r} (available: {', '.join(available) or 'none'})")
            self.shards = [s for s in shards if s.get("split", "train") == split]
        self.split = split
        self.classes: list[str] = list(self.manifest["classes"])
        self.image_shape: tuple[int, int, int] = tuple(self.manifest["image_shape"])  # type: ignore[assignment]
        self.dtype: str = self.manifest["dtype"]
        self.normalization = Normalization.from_json(self.manifest["normalization"])
        counts = [int(s["num_samples"]) for s in self.shards]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._cache: tuple[int, dict[str, np.ndarray]] | None = None
        # shard index -> its tensors memory-mapped, least recently used first.
        self._mapped: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps and a loaded shard stay in this process; a pickled copy
        # (a DataLoader worker) opens its own handles when it first reads.
        state = dict(self.__dict__)
        state["_cache"] = None
        state["_mapped"] = OrderedDict()
        return state

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, shape={list(self.image_shape)}, classes={len(self.classes)})"

    def load_shard(self, index: int) -> dict[str, np.ndarray]:
        """The tensors of one shard of this split (images, labels[, weights])."""
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        entry = self.shards[index]
        if isinstance(self.root, str):
            path: Any = join(self.root, entry["path"])
        else:
            path = self._local_shard_path(index)
        try:
            # A remote shard is read whole into memory (one shard at a time).
            tensors = load(read_bytes(path)) if isinstance(self.root, str) else load_file(str(path))
        except (OSError, SafetensorError) as exc:
            raise FormatError(f"{path}: cannot read shard: {exc}") from None
        if "images" not in tensors or "labels" not in tensors:
            raise FormatError(f"{path}: shard lacks the 'images' or 'labels' tensor")
        self._cache = (index, tensors)
        return tensors

    def _local_shard_path(self, index: int) -> Path:
        """The file of a local shard, checked: the manifest's paths are
        relative (checked on read), but a symlink could still lead out of the
        dataset and a FIFO would hang the read."""
        entry = self.shards[index]
        path = regular_file_inside(self.root, entry["path"])
        if path is None:
            raise FormatError(f"{self.root / entry['path']}: shard is not a regular file inside the dataset")
        return path

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} samples")
        shard = int(np.searchsorted(self._offsets, i, side="right") - 1)
        return shard, i - int(self._offsets[shard])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        shard, row = self._locate(int(i))
        if self._cache is not None and self._cache[0] == shard:
            tensors = self._cache[1]
        elif isinstance(self.root, str):
            tensors = self.load_shard(shard)  # an object store: no file to map
        else:
            tensors = self._map_shard(shard)
        return np.array(tensors["images"][row]), int(tensors["labels"][row])

    def _map_shard(self, index: int) -> dict[str, np.ndarray]:
        """The tensors of one local shard as read-only memory maps (a few
        shards stay mapped, least recently used dropped first)."""
        tensors = self._mapped.get(index)
        if tensors is not None:
            self._mapped.move_to_end(index)
            return tensors
        path = self._local_shard_path(index)
        tensors = map_safetensors(path)
        if "images" not in tensors or "labels" not in tensors:
            raise FormatError(f"{path}: shard lacks the 'images' or 'labels' tensor")
        self._mapped[index] = tensors
        if len(self._mapped) > MAPPED_SHARDS:
            self._mapped.popitem(last=False)
        return tensors

    def get(self, i: int, normalize: bool = False) -> tuple[np.ndarray, int]:
        """One sample; with ``normalize`` a float32 image per the manifest."""
        image, label = self[i]
        return (self.normalize(image) if normalize else image), label

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """Stored values -> normalized float32 (float storage is already normalized)."""
        if self.dtype == "uint8":
            return self.normalization.apply(images)
        return images.astype(np.float32)

    def to_uint8(self, images: np.ndarray) -> np.ndarray:
        """Stored values -> uint8 pixels, denormalizing float storage."""
        if self.dtype == "uint8":
            return images
        return self.normalization.invert(images)

    def iter_batches(
        self, batch_size: int, normalize: bool = False, shuffle: bool = False, seed: int = 0, drop_last: bool = False
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, labels)`` batches; shuffling is within a shard
        after a seeded shuffle of the shard order, so memory stays one shard."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.shards)) if shuffle else np.arange(len(self.shards))
        carry_images: list[np.ndarray] = []
        carry_labels: list[np.ndarray] = []
        carried = 0
        for shard in order:
            tensors = self.load_shard(int(shard))
            images, labels = tensors["images"], tensors["labels"]
            if shuffle:
                perm = rng.permutation(len(labels))
                images, labels = images[perm], labels[perm]
            carry_images.append(images)
            carry_labels.append(labels)
            carried += len(labels)
            while carried >= batch_size:
                all_images = np.concatenate(carry_images)
                all_labels = np.concatenate(carry_labels)
                batch = all_images[:batch_size]
                yield (self.normalize(batch) if normalize else batch), all_labels[:batch_size]
                carry_images, carry_labels = [all_images[batch_size:]], [all_labels[batch_size:]]
                carried -= batch_size
        if carried and not drop_last:
            batch = np.concatenate(carry_images)
            yield (self.normalize(batch) if normalize else batch), np.concatenate(carry_labels)

    def load_all(self) -> Arrays:
        """The whole split in memory, in stored dtype."""
        c, h, w = self.image_shape
        images = np.empty((len(self), c, h, w), dtype=np.dtype(self.dtype))
        labels = np.empty(len(self), dtype=np.int64)
        weights: np.ndarray | None = None
        for i in range(len(self.shards)):
            tensors = self.load_shard(i)
            lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
            images[lo:hi] = tensors["images"]
            labels[lo:hi] = tensors["labels"]
            if "weights" in tensors:
                if weights is None:
                    weights = np.ones(len(self), dtype=np.float32)
                weights[lo:hi] = tensors["weights"]
        self._cache = None
        return Arrays(images, labels, weights)


# Shards kept memory-mapped per Dataset (per DataLoader worker): a map costs
# address space, not memory (pages are read on access), so many can stay;
# with fewer than the shards a shuffled read keeps re-mapping (8 of 20 shards:
# 0.08x the sequential rate).
MAPPED_SHARDS = 64
# safetensors dtype names -> numpy (BF16 has no numpy dtype; such shards are
# not written by gandata).
_DTYPES = {"U8": np.uint8, "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
           "F16": np.float16, "F32": np.float32, "F64": np.float64, "BOOL": np.bool_}


def map_safetensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a read-only numpy memory map.

    Reads only the header (8-byte length, then JSON with each tensor's dtype,
    shape and byte range); no code is run and no tensor bytes are read until
    used. Raises FormatError for a file that is not valid safetensors."""
    try:
        with open(path, "rb") as fh:
            # One read-only map of the whole file; each tensor is an ndarray
            # view of its byte range (plain ndarrays index faster than np.memmap).
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        size = len(mapped)
        (length,) = struct.unpack("<Q", mapped[:8])
        if length > size - 8:
            raise ValueError(f"header length {length} exceeds the file")
        header = json.loads(mapped[8 : 8 + length])
        out: dict[str, np.ndarray] = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            if end - begin != count * dtype.itemsize or 8 + length + end > size:
                raise ValueError(f"tensor {name!r}: byte range {begin}-{end} does not fit its shape or the file")
            out[name] = np.frombuffer(mapped, dtype=dtype, count=count, offset=8 + length + begin).reshape(shape)
        return out
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise FormatError(f"{path}: cannot read shard: {exc}") from None


def open_dataset(path: str | os.PathLike[str], split: str | None = None) -> Dataset:
    """Open a built dataset; ``split`` names a split ("train", "val"), default train.
    ``path`` is a folder or an fsspec URL (``s3://bucket/prefix``).

    Raises FormatError for a missing manifest or an unknown format version.
    """
    return Dataset(path, split=split)
