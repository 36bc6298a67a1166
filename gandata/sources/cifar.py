"""CIFAR-10 and CIFAR-100: ``cifar:DIR[?split=train|test|all&labels=fine|coarse]``.

The binary versions (``cifar-10-batches-bin``, ``cifar-100-binary``) are
fixed-size records: CIFAR-10 ``<1 label byte><3072 pixel bytes>``, CIFAR-100
``<coarse byte><fine byte><3072 pixel bytes>``; pixels are the red, green and
blue 32x32 planes. Class names come from ``batches.meta.txt`` (CIFAR-10) or
``fine_label_names.txt`` / ``coarse_label_names.txt`` (CIFAR-100).

The "python" versions are pickles, and unpickling runs whatever code the file
names. They are read only through ``SafeUnpickler``, which resolves nothing but
numpy's array reconstruction; any other global (``os.system``, ``eval``, ...)
refuses the file with a SourceError before anything executes.

``DIR`` may be the batches folder itself or a folder that contains one.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.arrays import array_samples, file_stamp, row_partitions, split_uri
from gandata.sources.base import Partition, SourceContext

PIXELS = 32 * 32 * 3
_C10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_BIN_LAYOUTS = {
    # kind: (train files, test files, label bytes)
    "cifar10-bin": ([f + ".bin" for f in _C10_TRAIN], ["test_batch.bin"], 1),
    "cifar100-bin": (["train.bin"], ["test.bin"], 2),
    "cifar10-py": (_C10_TRAIN, ["test_batch"], 0),
    "cifar100-py": (["train"], ["test"], 0),
}
_SUBDIRS = ("cifar-10-batches-bin", "cifar-100-binary", "cifar-10-batches-py", "cifar-100-python")

# The only globals a CIFAR python pickle needs: numpy's ndarray rebuild, and
# the str -> bytes conversion Python 3 writes for bytes in protocol 2 (a pure
# function; it runs no code the file chooses).
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def safe_unpickle(path: str) -> Any:
    """Load a CIFAR python pickle through SafeUnpickler; SourceError when it
    names anything but plain data and numpy arrays."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
        raise SourceError(
            f"cifar file {path}: refused ({exc}); this pickle holds more than plain arrays and was not executed. "
            "Use the CIFAR binary version (cifar-10-binary.tar.gz / cifar-100-binary.tar.gz) instead"
        ) from None
    except OSError as exc:
        raise SourceError(f"cifar file {path}: cannot read it ({exc.strerror or exc})") from None


def _get(d: Any, key: str) -> Any:
    if isinstance(d, dict):
        for k in (key.encode(), key):
            if k in d:
                return d[k]
    return None


def _names(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _detect(root: str) -> tuple[str, str]:
    """(kind, batches folder) under ``root``."""
    candidates = [root] + [os.path.join(root, d) for d in _SUBDIRS]
    for folder in candidates:
        for kind, (train, test, _) in _BIN_LAYOUTS.items():
            if all(os.path.isfile(os.path.join(folder, f)) for f in test):
                return kind, folder
    raise SourceError(
        f"source cifar:{root}: no CIFAR batches found (expected test_batch.bin/test.bin of the binary version, "
        f"in {root} or one of {', '.join(_SUBDIRS)})"
    )


@dataclass
class CifarSource:
    uri: str
    folder: str
    kind: str
    files: tuple[str, ...]
    counts: tuple[int, ...]
    names: tuple[str, ...] | None
    coarse: bool

    def partitions(self) -> Sequence[Partition]:
        return row_partitions(list(zip(self.files, self.counts)))

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        name, start, stop = partition.items
        path = os.path.join(self.folder, name)
        if self.kind.endswith("-bin"):
            label_bytes = _BIN_LAYOUTS[self.kind][2]
            record = label_bytes + PIXELS
            with open(path, "rb") as fh:
                fh.seek(start * record)
                raw = fh.read((stop - start) * record)
            if len(raw) != (stop - start) * record:
                raise SourceError(f"cifar file {path}: truncated")
            rows = np.frombuffer(raw, np.uint8).reshape(stop - start, record)
            label_col = 0 if (label_bytes == 1 or self.coarse) else 1
            labels = rows[:, label_col].astype(np.int64)
            pixels = rows[:, label_bytes:]
        else:
            batch = safe_unpickle(path)
            pixels = np.asarray(_get(batch, "data"), dtype=np.uint8)[start:stop]
            key = "coarse_labels" if self.coarse else ("fine_labels" if self.kind == "cifar100-py" else "labels")
            labels = np.asarray(_get(batch, key), dtype=np.int64)[start:stop]
        images = pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        yield from array_samples(images, labels, start, self.names, name, path)

    def class_names(self) -> list[str] | None:
        return list(self.names) if self.names is not None else None

    def fingerprint(self) -> str:
        stamps = "|".join(file_stamp(os.path.join(self.folder, f)) for f in self.files)
        return f"cifar/1|{self.kind}|coarse={self.coarse}|{stamps}"


def _check_labels(uri: str, path: str, key: str, labels: object, n: int) -> None:
    """A python batch's labels: one non-negative integer per image, checked
    when the source opens so that a malformed batch is one clear error."""
    try:
        values = np.asarray(labels)
    except (TypeError, ValueError):
        values = np.asarray([])
    if labels is None or values.ndim != 1 or len(values) != n or not np.issubdtype(values.dtype, np.integer):
        raise SourceError(f"source {uri}: {path}: '{key}' must be a list of {n} integer class ids")
    if n and values.min() < 0:
        raise SourceError(f"source {uri}: {path}: '{key}' holds the negative class id {values.min()}")


def _bin_names(folder: str, kind: str, coarse: bool) -> list[str] | None:
    meta = "batches.meta.txt" if kind == "cifar10-bin" else ("coarse_label_names.txt" if coarse else "fine_label_names.txt")
    path = os.path.join(folder, meta)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def _py_names(folder: str, kind: str, coarse: bool) -> list[str] | None:
    path = os.path.join(folder, "batches.meta" if kind == "cifar10-py" else "meta")
    if not os.path.isfile(path):
        return None
    meta = safe_unpickle(path)
    key = "label_names" if kind == "cifar10-py" else ("coarse_label_names" if coarse else "fine_label_names")
    values = _get(meta, key)
    return _names(values) if values is not None else None


def open_cifar(uri: str, spec: SourceSpec, ctx: SourceContext) -> CifarSource:
    """The CIFAR source for ``cifar:DIR``; SourceError for a folder without
    batches, a bad option, or a python pickle that is not plain data."""
    root, options = split_uri(uri, "cifar", spec, ("split", "labels"))
    if not os.path.isdir(root):
        raise SourceError(f"source {uri}: no such folder {root}")
    split = options.get("split", "train")
    if split not in ("train", "test", "all"):
        raise SourceError(f"source {uri}: split={split!r} must be train, test or all")
    granularity = options.get("labels", "fine")
    if granularity not in ("fine", "coarse"):
        raise SourceError(f"source {uri}: labels={granularity!r} must be fine or coarse")
    kind, folder = _detect(root)
    coarse = granularity == "coarse"
    if coarse and kind.startswith("cifar10-"):
        raise SourceError(f"source {uri}: labels=coarse applies to CIFAR-100 only")
    train, test, label_bytes = _BIN_LAYOUTS[kind]
    wanted = {"train": train, "test": test, "all": train + test}[split]
    files = [f for f in wanted if os.path.isfile(os.path.join(folder, f))]
    if not files:
        raise SourceError(f"source {uri}: no {split} batches in {folder} (expected {', '.join(wanted)})")
    counts = []
    for f in files:
        path = os.path.join(folder, f)
        if kind.endswith("-bin"):
            size = os.path.getsize(path)
            if size % (label_bytes + PIXELS):
                raise SourceError(f"source {uri}: {path} is {size} bytes, not a whole number of {label_bytes + PIXELS}-byte records")
            counts.append(size // (label_bytes + PIXELS))
        else:
            batch = safe_unpickle(path)
            data = _get(batch, "data")
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != PIXELS:
                raise SourceError(f"source {uri}: {path} has no 'data' array of N x {PIXELS} pixels")
            key = "coarse_labels" if coarse else ("fine_labels" if kind == "cifar100-py" else "labels")
            _check_labels(uri, path, key, _get(batch, key), int(data.shape[0]))
            counts.append(int(data.shape[0]))
    names = _bin_names(folder, kind, coarse) if kind.endswith("-bin") else _py_names(folder, kind, coarse)
    return CifarSource(uri=uri, folder=folder, kind=kind, files=tuple(files), counts=tuple(counts),
                       names=tuple(names) if names else None, coarse=coarse)
