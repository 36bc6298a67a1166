"""``gandata verify``: check a built dataset against its manifest."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file

from gandata.dataset.download import download_dataset
from gandata.dataset.manifest import SAMPLES_FILE, read_manifest
from gandata.util.arrow import read_parquet, to_numpy
from gandata.util.hashing import file_sha256
from gandata.util.paths import regular_file_inside
from gandata.util.remote import is_remote, local_path


@dataclass
class VerifyReport:
    """The outcome of a verification: ``ok`` when nothing is wrong."""

    root: str
    shards_checked: int = 0
    samples_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_dataset(root: str | os.PathLike[str], progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-hash every shard and check shapes, dtypes, counts and the sample
    index against the manifest. Problems are listed in order, shards first,
    so the first problem names the first bad shard. ``progress(done, total)``
    is called after each shard, in images (the manifest's per-shard counts).
    Raises FormatError when
    the manifest itself is missing or unreadable. An fsspec URL is
    downloaded to a temporary folder first (every byte is read anyway)."""
    if is_remote(root):
        with tempfile.TemporaryDirectory(prefix="gandata-verify-") as tmp:
            read_manifest(root)  # a missing manifest fails before any download
            download_dataset(str(root), Path(tmp))
            local = verify_dataset(tmp, progress)
            url = str(root).rstrip("/")
            return dataclasses.replace(local, root=url, problems=[p.replace(tmp, url) for p in local.problems])
    root = local_path(root)
    manifest = read_manifest(root)
    report = VerifyReport(root=str(root))
    base = Path(root)
    c, h, w = manifest["image_shape"]
    classes = manifest["classes"]
    shard_labels: list[np.ndarray] = []
    total = 0
    class_totals = np.zeros(len(classes), np.int64)
    shards = manifest["shards"]
    expected_images = sum(int(entry["num_samples"]) for entry in shards)
    images_done = 0
    for entry in shards:
        path = base / entry["path"]
        labels = _check_shard(report, base, path, entry, manifest["dtype"], (c, h, w), len(classes))
        shard_labels.append(labels if labels is not None else np.zeros(0, np.int64))
        if labels is not None:
            total += len(labels)
            class_totals += np.bincount(labels[labels >= 0], minlength=len(classes))[: len(classes)]
        report.shards_checked += 1
        images_done += int(entry["num_samples"])
        if progress:
            progress(images_done, expected_images)
    if not report.problems:
        if total != manifest["num_samples"]:
            report.problems.append(f"manifest: num_samples is {manifest['num_samples']} but the shards hold {total}")
        expected = {name: int(class_totals[k]) for k, name in enumerate(classes)}
        if expected != {k: int(v) for k, v in manifest["class_counts"].items()}:
            report.problems.append(f"manifest: class_counts {manifest['class_counts']} do not match the shards {expected}")
        _check_samples_index(report, base, shard_labels)
    report.samples_checked = total
    return report


def _check_shard(
    report: VerifyReport, base: Path, path: Path, entry: dict, dtype: str, shape: tuple[int, int, int], num_classes: int
) -> np.ndarray | None:
    if not os.path.lexists(path):
        report.problems.append(f"{path}: shard missing")
        return None
    # A shard is a regular file inside the dataset: a symlink out of it would
    # make verify vouch for a foreign file, and a FIFO would hang the hash.
    if regular_file_inside(base, entry["path"]) is None:
        report.problems.append(f"{path}: shard is not a regular file inside the dataset")
        return None
    digest = file_sha256(path)
    if digest != entry.get("sha256"):
        report.problems.append(f"{path}: sha256 {digest[:16]}... does not match the manifest's {str(entry.get('sha256'))[:16]}...")
        return None
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        report.problems.append(f"{path}: not a readable safetensors file: {exc}")
        return None
    images, labels = tensors.get("images"), tensors.get("labels")
    n = int(entry["num_samples"])
    if images is None or labels is None:
        report.problems.append(f"{path}: missing tensor 'images' or 'labels'")
        return None
    if images.shape != (n, *shape):
        report.problems.append(f"{path}: images shape {list(images.shape)}, expected {[n, *shape]}")
    if str(images.dtype) != dtype:
        report.problems.append(f"{path}: images dtype {images.dtype}, expected {dtype}")
    if labels.dtype != np.int64 or labels.shape != (n,):
        report.problems.append(f"{path}: labels must be int64 [{n}], found {labels.dtype} {list(labels.shape)}")
    elif len(labels) and (labels.max() >= num_classes or labels.min() < -1):
        report.problems.append(f"{path}: label ids outside [-1, {num_classes - 1}]")
    if "weights" in tensors and tensors["weights"].shape != (n,):
        report.problems.append(f"{path}: weights shape {list(tensors['weights'].shape)}, expected [{n}]")
    return labels


def _check_samples_index(report: VerifyReport, base: Path, shard_labels: list[np.ndarray]) -> None:
    path = base / SAMPLES_FILE
    if not path.is_file():
        report.problems.append(f"{path}: sample index missing")
        return
    try:
        table = read_parquet(path, columns=["shard", "row", "label"])
    except Exception as exc:  # pyarrow raises several types for a bad file
        report.problems.append(f"{path}: unreadable: {exc}")
        return
    shard = to_numpy(table.column("shard"))
    row = to_numpy(table.column("row"))
    label = to_numpy(table.column("label"))
    total = sum(len(x) for x in shard_labels)
    if len(shard) != total:
        report.problems.append(f"{path}: {len(shard)} rows, but the shards hold {total} samples")
        return
    for s, labels in enumerate(shard_labels):
        mine = shard == s
        rows = row[mine]
        if len(rows) != len(labels) or not np.array_equal(np.sort(rows), np.arange(len(labels))):
            report.problems.append(f"{path}: rows of shard {s} do not cover 0..{len(labels) - 1} exactly once")
            return
        if not np.array_equal(label[mine][np.argsort(rows)], labels):
            report.problems.append(f"{path}: labels of shard {s} differ from the shard's labels")
            return
