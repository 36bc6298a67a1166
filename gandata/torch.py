"""PyTorch adapter for built datasets. Imports torch lazily: ``import gandata``
never does, only using this module."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gandata.dataset.reader import Dataset, open_dataset


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("gandata.torch needs PyTorch: pip install torch==2.13.0 --extra-index-url https://download.pytorch.org/whl/cpu "
                          "(CPU build), or pip install torch (CUDA build, on a GPU machine)") from None
    return torch


@dataclass
class DeviceDataset:
    """A whole split resident on a device; batches are sampled there."""

    images: Any  # tensor [N, C, H, W], stored dtype
    labels: Any  # int64 tensor [N]
    weights: Any | None  # float32 tensor [N] or None
    offset: Any  # float32 [1, C, 1, 1]
    scale: Any  # float32 [1, C, 1, 1]
    classes: list[str]
    manifest: dict[str, Any]
    stored_dtype: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def normalize(self, batch: Any) -> Any:
        """Stored batch -> normalized float32 on the same device."""
        if self.stored_dtype == "uint8":
            return (batch.float().div_(255.0) - self.offset) / self.scale
        return batch.float()


def load_to_device(path_or_dataset: str | os.PathLike[str] | Dataset, device: Any = "cpu", split: str | None = None) -> DeviceDataset:
    """Load a whole split onto ``device`` in its stored dtype (uint8: 4x
    smaller than float32; normalize per batch with ``.normalize``)."""
    torch = _torch()
    ds = path_or_dataset if isinstance(path_or_dataset, Dataset) else open_dataset(path_or_dataset, split=split)
    arrays = ds.load_all()
    c = ds.image_shape[0]
    offset = torch.tensor(ds.normalization.offset, dtype=torch.float32, device=device).view(1, c, 1, 1)
    scale = torch.tensor(ds.normalization.scale, dtype=torch.float32, device=device).view(1, c, 1, 1)
    return DeviceDataset(
        images=torch.from_numpy(arrays.images).to(device),
        labels=torch.from_numpy(arrays.labels).to(device),
        weights=None if arrays.weights is None else torch.from_numpy(arrays.weights).to(device),
        offset=offset,
        scale=scale,
        classes=ds.classes,
        manifest=ds.manifest,
        stored_dtype=ds.dtype,
    )


class TorchDataset:
    """A map-style dataset for ``torch.utils.data.DataLoader`` yielding
    ``(image tensor [C, H, W], label)``, normalized to float32 by default.

    DataLoader needs only ``__len__`` and ``__getitem__``, so this class does
    not subclass torch's Dataset: it stays importable and picklable (for
    worker processes) without importing torch at module import time.

    Each item is read through a memory map of its shard (``Dataset.__getitem__``),
    so shuffled access costs about as much as in-order access; a pickled copy
    in a ``DataLoader(num_workers>0)`` worker maps the shards itself.
    """

    def __init__(self, path: str | os.PathLike[str], split: str | None = None, normalize: bool = True) -> None:
        self.ds = open_dataset(path, split=split)
        self.classes = self.ds.classes
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        torch = _torch()
        image, label = self.ds.get(i, normalize=self.normalize)
        return torch.from_numpy(np.ascontiguousarray(image)), label
