"""Export a built dataset to the formats other tools read (``gandata export``).

- ``to_hf``: a ``datasets`` dataset written with ``save_to_disk``: an
  ``image`` column (``Image`` feature, lossless PNG) and, for a labelled
  dataset, a ``label`` column (``ClassLabel`` with the dataset's class names).
  One split gives a ``Dataset``; several give a ``DatasetDict`` whose splits
  follow the HF convention (gandata's ``val`` is named ``validation``).
  Build from it again with ``hf-disk:DIR`` (the train split) and
  ``hf-disk:DIR@validation``; publish it with ``datasets``' ``push_to_hub``.
- ``to_folder``: an ImageFolder tree of PNGs, ``DIR/<class>/<index>.png``
  (unlabeled samples directly in ``DIR``; with several splits, one complete
  tree per split, ``DIR/train/<class>/`` and ``DIR/val/<class>/``). Build
  from it again with ``folder:DIR``, or one split's tree ``DIR/train``.

Pixels are the stored uint8 pixels (float storage is denormalized first), so
a re-build at the same size reproduces them exactly. Both exports write under
a temporary name and rename when complete.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from gandata.dataset.manifest import read_manifest
from gandata.dataset.reader import Dataset
from gandata.errors import ConfigError

EXPORT_FORMATS = ("hf", "folder")

# gandata split name -> the HF convention's name for it.
HF_SPLIT_NAMES = {"val": "validation"}

# Called with (images done, images in all) as an export goes.
ExportProgress = Callable[[int, int], None]


@dataclass
class ExportSummary:
    """What an export wrote."""

    path: str
    num_samples: int
    splits: dict[str, int]


def _splits(root: str | os.PathLike[str]) -> list[str]:
    manifest = read_manifest(root)
    names = {s.get("split", "train") for s in manifest["shards"]}
    ordered = [s for s in ("train", "val", "test") if s in names]
    return ordered + sorted(names - set(ordered))


def iter_images(ds: Dataset) -> Iterator[tuple[np.ndarray, int]]:
    """(HxW or HxWxC uint8 image, label) for every sample of a split, one
    shard in memory at a time."""
    for i in range(len(ds.shards)):
        tensors = ds.load_shard(i)
        images = ds.to_uint8(tensors["images"])
        for image, label in zip(images, tensors["labels"]):
            hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
            yield (hwc[:, :, 0] if hwc.shape[2] == 1 else hwc), int(label)


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _prepare_dest(dest: Path, overwrite: bool) -> Path:
    if dest.exists() and not overwrite and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"--to: {dest} exists and is not empty; choose another directory or pass --overwrite")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".tmp-{dest.name}-", dir=dest.parent))


def _publish(tmp: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    os.rename(tmp, dest)


class _Counter:
    """Counts exported images and reports them every ``every`` images."""

    def __init__(self, root: str | os.PathLike[str], progress: ExportProgress | None, every: int = 256) -> None:
        self.total = int(read_manifest(root)["num_samples"]) if progress else 0
        self.progress = progress
        self.every = every
        self.done = 0

    # datasets pickles the row generator (and so this counter) to fingerprint
    # it: leave the callback, which may hold a terminal stream, out of that.
    def __getstate__(self) -> dict[str, Any]:
        return {"total": self.total, "progress": None, "every": self.every, "done": 0}

    def add(self) -> None:
        self.done += 1
        if self.progress and (self.done % self.every == 0 or self.done == self.total):
            self.progress(self.done, self.total)


def to_hf(root: str | os.PathLike[str], dest: str | os.PathLike[str], overwrite: bool = False,
          progress: ExportProgress | None = None) -> ExportSummary:
    """Write the dataset at ``root`` as a ``datasets`` dataset in ``dest``
    (split ``val`` named ``validation``, as HF datasets name it)."""
    try:
        import datasets
    except ImportError:
        raise ConfigError("--to hf: needs the 'datasets' package (pip install 'gandata[hf]')") from None
    from datasets.utils import logging as hf_logging

    dest_path = Path(dest)
    tmp = _prepare_dest(dest_path, overwrite)
    counts: dict[str, int] = {}
    counter = _Counter(root, progress)
    # The library never prints: silence datasets' progress bars meanwhile.
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        built: dict[str, Any] = {}
        for split in _splits(root):
            ds = Dataset(root, split=split)
            labelled = bool(ds.classes)
            features = {"image": datasets.Image()}
            if labelled:
                features["label"] = datasets.ClassLabel(names=list(ds.classes))

            def rows(ds: Dataset = ds, labelled: bool = labelled) -> Iterator[dict[str, Any]]:
                for image, label in iter_images(ds):
                    row: dict[str, Any] = {"image": {"bytes": _png(image), "path": None}}
                    if labelled:
                        row["label"] = label
                    counter.add()
                    yield row

            # from_generator writes Arrow batches to its cache as it goes, so
            # the export never holds more than one shard of pixels.
            name = HF_SPLIT_NAMES.get(split, split)
            built[name] = datasets.Dataset.from_generator(
                rows, features=datasets.Features(features), cache_dir=str(tmp / ".cache"),
            )
            counts[name] = len(ds)
        out: Any = built[next(iter(built))] if len(built) == 1 else datasets.DatasetDict(built)
        out.save_to_disk(str(tmp / "data"))
        # save_to_disk copies the Arrow data: the generator cache can go.
        del out, built
        final = tmp / "data"
        shutil.rmtree(tmp / ".cache", ignore_errors=True)
        for entry in final.iterdir():
            os.rename(entry, tmp / entry.name)
        final.rmdir()
        _publish(tmp, dest_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()
    return ExportSummary(path=str(dest_path), num_samples=sum(counts.values()), splits=counts)


def to_folder(root: str | os.PathLike[str], dest: str | os.PathLike[str], overwrite: bool = False,
              progress: ExportProgress | None = None) -> ExportSummary:
    """Write the dataset at ``root`` as an ImageFolder tree of PNGs in ``dest``."""
    dest_path = Path(dest)
    tmp = _prepare_dest(dest_path, overwrite)
    counts: dict[str, int] = {}
    counter = _Counter(root, progress)
    splits = _splits(root)
    try:
        for split in splits:
            ds = Dataset(root, split=split)
            base = tmp / split if len(splits) > 1 else tmp
            base.mkdir(parents=True, exist_ok=True)
            for name in ds.classes:
                if name.startswith(".") or "/" in name or "\\" in name or name in ("", ".", ".."):
                    raise ConfigError(f"--to folder: class name {name!r} cannot be a folder name")
                (base / name).mkdir(exist_ok=True)
            n = 0
            for index, (image, label) in enumerate(iter_images(ds)):
                folder = base / ds.classes[label] if label >= 0 else base
                Image.fromarray(image).save(folder / f"{index:08d}.png", format="PNG")
                n += 1
                counter.add()
            counts[split] = n
        _publish(tmp, dest_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(path=str(dest_path), num_samples=sum(counts.values()), splits=counts)


def export(root: str | os.PathLike[str], to: str, dest: str | os.PathLike[str], overwrite: bool = False,
           progress: ExportProgress | None = None) -> ExportSummary:
    """Export the dataset at ``root`` in format ``to`` (``hf`` or ``folder``);
    ``progress(done, total)`` is called as images are written."""
    if to == "hf":
        return to_hf(root, dest, overwrite, progress)
    if to == "folder":
        return to_folder(root, dest, overwrite, progress)
    raise ConfigError(f"--to: {to!r} must be one of {', '.join(EXPORT_FORMATS)}")
