"""Training batches from a gandata dataset.

The usual case is that the whole uint8 dataset fits in the accelerator's
memory (CelebA at 64 px is 2.5 GB): it is loaded there once and every batch is
drawn, normalized and flipped on the device, so the input pipeline costs a
gather and one fused multiply-add per step and never waits on the host. When it
does not fit, the dataset stays in pinned host memory and each batch is
gathered on the host and copied asynchronously (``StreamingBatches``).

Batches are drawn with replacement (uniformly, or in proportion to the
per-sample weights that gandata's class balancing writes into the shards);
GAN training has no notion of an epoch, and independent draws make the stream
a pure function of one generator state, which is what exact resume needs.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from gantrain.errors import DataError

# Fraction of the free accelerator memory the dataset may take in placement
# "auto"; the rest is left to the models, activations and the allocator.
DEVICE_MEMORY_FRACTION = 0.5


@dataclass(frozen=True)
class DatasetInfo:
    """What training needs to know about a dataset before loading its pixels."""

    path: str
    manifest_sha256: str
    num_samples: int
    image_shape: tuple[int, int, int]
    dtype: str
    classes: tuple[str, ...]
    offset: tuple[float, ...]
    scale: tuple[float, ...]
    split: str | None
    has_weights: bool

    @property
    def nbytes(self) -> int:
        """Bytes the split's images take in memory, as stored."""
        itemsize = {"uint8": 1, "float16": 2, "float32": 4}.get(self.dtype, 4)
        return self.num_samples * math.prod(self.image_shape) * itemsize

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "manifest_sha256": self.manifest_sha256, "num_samples": self.num_samples,
            "image_shape": list(self.image_shape), "dtype": self.dtype, "classes": list(self.classes),
            "offset": list(self.offset), "scale": list(self.scale), "split": self.split,
            "has_weights": self.has_weights,
        }


def manifest_sha256(path: str | Path) -> str:
    """SHA-256 of the dataset's manifest.json: identifies the dataset's content."""
    try:
        return hashlib.sha256((Path(path) / "manifest.json").read_bytes()).hexdigest()
    except OSError as exc:
        raise DataError(f"DATA: {path} is not a gandata dataset (no readable manifest.json: {exc.strerror or exc})") from None


def open_dataset(path: str | Path, split: str | None):
    """gandata's reader, with its errors turned into ``DataError``."""
    import gandata
    from gandata.errors import GandataError

    try:
        return gandata.open_dataset(str(path), split=split)
    except GandataError as exc:
        raise DataError(f"DATA: {exc}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"DATA: cannot read the dataset in {path}: {exc}") from None


def read_dataset_info(path: str | Path, split: str | None) -> DatasetInfo:
    """Probe a dataset (manifest and shard index only, no pixels)."""
    sha = manifest_sha256(path)
    ds = open_dataset(path, split)
    manifest = ds.manifest
    shards = [s for s in manifest.get("shards", []) if split is None or s.get("split", "train") == split]
    norm = ds.normalization
    return DatasetInfo(
        # Absolute, so `gantrain eval RUN` finds the dataset from any directory.
        path=str(Path(path).resolve()),
        manifest_sha256=sha,
        num_samples=len(ds),
        image_shape=tuple(int(v) for v in ds.image_shape),  # type: ignore[arg-type]
        dtype=str(manifest.get("dtype", "uint8")),
        classes=tuple(ds.classes),
        offset=tuple(float(v) for v in norm.offset),
        scale=tuple(float(v) for v in norm.scale),
        split=split,
        has_weights=_any_shard_has_weights(path, shards),
    )


def _any_shard_has_weights(path: str | Path, shards: list[dict[str, Any]]) -> bool:
    # The manifest does not record weights; peek at the first shard's tensor
    # names (safetensors reads only the header).
    if not shards:
        return False
    from safetensors import safe_open

    try:
        with safe_open(str(Path(path) / shards[0]["path"]), framework="numpy") as f:
            return "weights" in f.keys()
    except Exception:  # a damaged shard is reported by the loader, with its name
        return False


class Batches(Protocol):
    """A source of training batches: normalized images and int64 labels."""

    placement: str

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        ...

    def peek(self, n: int) -> torch.Tensor:
        ...

    def state_dict(self) -> dict[str, torch.Tensor]:
        ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        ...


class _Normalizer:
    """(pixel / 255 - offset) / scale as one multiply-add on the device."""

    def __init__(self, offset: torch.Tensor, scale: torch.Tensor, stored_dtype: str, device: torch.device):
        offset = offset.to(device=device, dtype=torch.float32).view(1, -1, 1, 1)
        scale = scale.to(device=device, dtype=torch.float32).view(1, -1, 1, 1)
        self.uint8 = stored_dtype == "uint8"
        self.gain = 1.0 / (255.0 * scale)
        self.bias = -offset / scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.uint8:
            return torch.addcmul(self.bias, x.float(), self.gain)
        # float storage holds already-normalized values.
        return x.float()


class _Sampler:
    """Draws batch indices, uniformly or in proportion to per-sample weights."""

    def __init__(self, n: int, weights: torch.Tensor | None, gen: torch.Generator, device: torch.device):
        self.n = n
        self.gen = gen
        self.device = device
        # Inverse-CDF sampling rather than torch.multinomial: it has no limit
        # on the number of categories (multinomial stops at 2**24).
        self.cdf = None
        if weights is not None:
            # float64 keeps the CDF exact over millions of samples (MPS has no float64).
            self.dtype = torch.float32 if device.type == "mps" else torch.float64
            cdf = weights.to(device=device, dtype=self.dtype).cumsum(0)
            self.cdf = cdf / cdf[-1]

    def draw(self, batch_size: int) -> torch.Tensor:
        if self.cdf is None:
            return torch.randint(self.n, (batch_size,), generator=self.gen, device=self.device)
        u = torch.rand(batch_size, generator=self.gen, device=self.device, dtype=self.dtype)
        return torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.n - 1)


def _flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mask = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


class DeviceBatches:
    """The whole dataset in device memory; batches drawn, normalized and
    flipped there with one device-side generator."""

    placement = "device"

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
        normalizer: _Normalizer, batch_size: int, flip: bool, seed: int, channels_last: bool,
    ):
        self.images, self.labels = images, labels
        self.batch_size, self.flip, self.channels_last = batch_size, flip, channels_last
        self.normalize = normalizer
        self.gen = torch.Generator(device=images.device)
        self.gen.manual_seed(seed)
        self.sampler = _Sampler(images.shape[0], weights, self.gen, images.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.sampler.draw(self.batch_size)
        x = self.normalize(self.images.index_select(0, idx))
        if self.flip:
            x = _flip(x, self.gen)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels.index_select(0, idx)

    def peek(self, n: int) -> torch.Tensor:
        """The first ``n`` images, normalized (no random draw)."""
        return self.normalize(self.images[:n])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.gen.set_state(state["gen"])


class StreamingBatches:
    """The dataset in (pinned) host memory; each batch is gathered on the host
    into one of two pinned staging buffers and copied without blocking, so the
    copy of batch t overlaps the compute of batch t-1."""

    placement = "stream"

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
        normalizer: _Normalizer, batch_size: int, flip: bool, seed: int, channels_last: bool,
        device: torch.device,
    ):
        self.images, self.labels = images, labels
        self.batch_size, self.flip, self.channels_last = batch_size, flip, channels_last
        self.device = device
        self.normalize = normalizer
        self.host_gen = torch.Generator()
        self.host_gen.manual_seed(seed)
        self.device_gen = torch.Generator(device=device)
        self.device_gen.manual_seed(seed + 1)
        self.sampler = _Sampler(images.shape[0], weights, self.host_gen, torch.device("cpu"))
        pin = device.type == "cuda"
        shape = (batch_size, *images.shape[1:])
        self._staging = [torch.empty(shape, dtype=images.dtype, pin_memory=pin) for _ in range(2)]
        self._events: list[Any] = [None, None]
        self._turn = 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.sampler.draw(self.batch_size)
        buf = self._staging[self._turn]
        if self._events[self._turn] is not None:
            # Do not overwrite a staging buffer whose copy is still in flight.
            self._events[self._turn].synchronize()
        torch.index_select(self.images, 0, idx, out=buf)
        x = buf.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
            self._events[self._turn] = event
        self._turn ^= 1
        y = self.labels.index_select(0, idx).to(self.device, non_blocking=True)
        x = self.normalize(x)
        if self.flip:
            x = _flip(x, self.device_gen)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def peek(self, n: int) -> torch.Tensor:
        """The first ``n`` images, normalized (no random draw)."""
        return self.normalize(self.images[:n].to(self.device))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"host_gen": self.host_gen.get_state(), "device_gen": self.device_gen.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.host_gen.set_state(state["host_gen"])
        self.device_gen.set_state(state["device_gen"])


def choose_placement(info: DatasetInfo, device: torch.device, requested: str) -> str:
    """``device`` when the dataset fits comfortably in device memory (always on
    CPU, where host memory is the device), else ``stream``."""
    if requested != "auto":
        return requested
    if device.type != "cuda":
        return "device"
    free, _total = torch.cuda.mem_get_info(device)
    return "device" if info.nbytes <= DEVICE_MEMORY_FRACTION * free else "stream"


def _labelled(images: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    """Only the samples with a class (label >= 0), and how many were left out."""
    keep = labels >= 0
    skipped = int((~keep).sum())
    if not skipped:
        return images, labels, weights, 0
    if skipped == len(labels):
        raise DataError("DATA: no sample has a class; conditional training needs labelled samples")
    index = torch.nonzero(keep).flatten()
    kept_weights = None if weights is None else weights.index_select(0, index.to(weights.device))
    return images.index_select(0, index.to(images.device)), labels.index_select(0, index), kept_weights, skipped


def load_batches(
    info: DatasetInfo, device: torch.device, batch_size: int, *, placement: str = "auto",
    flip: bool = False, use_weights: bool = True, seed: int = 0, channels_last: bool = False,
    labelled_only: bool = False,
) -> Batches:
    """Load the dataset for training and return its batch source.

    ``labelled_only`` (conditional training) leaves out samples without a
    class (label -1, e.g. files in a folder's root); the batch source's
    ``skipped_unlabeled`` says how many."""
    where = choose_placement(info, device, placement)
    offset = torch.tensor(info.offset, dtype=torch.float32)
    scale = torch.tensor(info.scale, dtype=torch.float32)
    normalizer = _Normalizer(offset, scale, info.dtype, device)
    if where == "device":
        from gandata.errors import GandataError
        from gandata.torch import load_to_device

        try:
            dd = load_to_device(info.path, device, split=info.split)
        except GandataError as exc:
            raise DataError(f"DATA: {exc}") from None
        except torch.OutOfMemoryError:
            raise DataError(
                f"DATA: the dataset ({info.nbytes / 2**30:.1f} GiB) does not fit in {device} memory; "
                "use --placement stream"
            ) from None
        weights = dd.weights if use_weights else None
        images, labels, skipped = dd.images, dd.labels, 0
        if labelled_only:
            images, labels, weights, skipped = _labelled(images, labels, weights)
        batches: Any = DeviceBatches(images, labels, weights, normalizer, batch_size, flip, seed, channels_last)
        batches.skipped_unlabeled = skipped
        return batches
    data = open_dataset(info.path, info.split).load_all()
    images = torch.from_numpy(data.images)
    if device.type == "cuda":
        images = images.pin_memory()
    labels = torch.from_numpy(data.labels).to(torch.int64)
    weights = torch.from_numpy(data.weights) if (use_weights and data.weights is not None) else None
    skipped = 0
    if labelled_only:
        images, labels, weights, skipped = _labelled(images, labels, weights)
    streaming: Any = StreamingBatches(images, labels, weights, normalizer, batch_size, flip, seed, channels_last, device)
    streaming.skipped_unlabeled = skipped
    return streaming


def load_real_uint8(path: str | Path, split: str | None, labelled_only: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor, DatasetInfo]:
    """All images of a split as uint8 pixels [N, C, H, W] on the CPU, with labels
    (with ``labelled_only``, only the samples that have a class).

    Float-stored datasets are mapped back to pixels through their
    normalization, so evaluation always compares pixels with pixels.
    """
    info = read_dataset_info(path, split)
    data = open_dataset(path, split).load_all()
    images = torch.from_numpy(data.images)
    if images.dtype != torch.uint8:
        offset = torch.tensor(info.offset).view(1, -1, 1, 1)
        scale = torch.tensor(info.scale).view(1, -1, 1, 1)
        pixels = images.float() * scale + offset
        images = (pixels.clamp(0, 1) * 255).round().to(torch.uint8)
    labels = torch.from_numpy(data.labels).to(torch.int64)
    if labelled_only and info.classes:
        images, labels, _, _ = _labelled(images, labels, None)
    return images, labels, info

