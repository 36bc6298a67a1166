"""Export a built dataset to the formats other tools read (``gandata export``).

- ``to_hf``: a ``datasets`` dataset written with ``save_to_disk``: an
  ``image`` column (``Image`` feature, lossless PNG) and, for a labelled
  dataset, a ``label`` column (``ClassLabel`` with the dataset's class names).
  One split gives a ``Dataset``; several give a ``DatasetDict`` whose splits
  follow the HF convention (gandata's ``val`` is named ``validation``).
  Build from it again with ``hf-disk:DIR`` (the train split) and
  ``hf-disk:DIR@validation``; publish it with ``datasets``' ``push_to_hub``.
  The dataset card (``README.md``) of the build goes with it.
- ``to_folder``: an ImageFolder tree of PNGs, ``DIR/<class>/<index>.png``
  (unlabeled samples directly in ``DIR``; with several splits, one complete
  tree per split, ``DIR/train/<class>/`` and ``DIR/val/<class>/``, the
  folder source's split layout). ``gandata build DIR`` builds it back as one
  dataset with the same classes and splits; one split's tree ``DIR/train``
  builds on its own too. A one-split dataset whose class names are all split
  names (``train``, ``test`` ...) is written in the split layout as well, so
  that its classes are not read back as splits.
- ``to_stylegan``: what StyleGAN2-ADA / StyleGAN3 / EDM's ``dataset_tool.py``
  writes and their ``ImageFolderDataset`` reads: a ZIP (stored, not
  deflated) or a folder of PNGs named ``00000/img00000000.png`` (the first
  five digits of the eight-digit index name the folder), and ``dataset.json``
  at the root holding ``{"labels": [[name, class_id], ...]}``, or
  ``{"labels": null}`` when any sample is unlabeled. One split (train by
  default). The images must be square, of a power-of-two size, with 1 or 3
  channels, as those tools require.
- ``to_cyclegan``: the ``trainA/ trainB/ testA/ testB/`` folders of PNGs the
  CycleGAN / pix2pix ``unaligned`` dataset reads: two classes of one dataset
  (``domains``), or two datasets. ``train*`` take the train split, ``test*``
  the val and test splits (empty folders when the dataset has neither).

Pixels are the stored uint8 pixels (float storage is denormalized first), so
a re-build at the same size reproduces them exactly. Both exports write under
a temporary name and rename when complete.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from gandata.dataset.manifest import CARD_FILE, read_manifest
from gandata.dataset.reader import Dataset
from gandata.dataset.splits import (
    CLASSES_FILE,
    is_folder_name,
    ordered_splits,
    split_of_folder,
)
from gandata.errors import ConfigError

EXPORT_FORMATS = ("hf", "folder", "stylegan", "cyclegan")

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
    return ordered_splits({s.get("split", "train") for s in manifest["shards"]})


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
        # The build's dataset card travels with the data: the Hub shows it as
        # the dataset's page, and load_from_disk ignores it.
        card = Path(root) / CARD_FILE
        if card.is_file():
            shutil.copyfile(card, tmp / CARD_FILE)
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
    # One tree per split when there are several; also for one split when every
    # class name is a split name, which the folder source would read as splits.
    classes = Dataset(root, split=splits[0]).classes if splits else []
    nested = len(splits) > 1 or (bool(classes) and all(split_of_folder(name) for name in classes))
    try:
        for split in splits:
            ds = Dataset(root, split=split)
            base = tmp / split if nested else tmp
            base.mkdir(parents=True, exist_ok=True)
            for name in ds.classes:
                if not is_folder_name(name):
                    raise ConfigError(f"--to folder: class name {name!r} cannot be a folder name")
                (base / name).mkdir(exist_ok=True)
            n = 0
            for index, (image, label) in enumerate(iter_images(ds)):
                folder = base / ds.classes[label] if label >= 0 else base
                Image.fromarray(image).save(folder / f"{index:08d}.png", format="PNG")
                n += 1
                counter.add()
            counts[split] = n
        if classes:
            # The label ids, for a build of this tree (sorted names would renumber them).
            (tmp / CLASSES_FILE).write_text("".join(f"{name}\n" for name in classes), encoding="utf-8")
        _publish(tmp, dest_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(path=str(dest_path), num_samples=sum(counts.values()), splits=counts)


def _check_stylegan_shape(root: str | os.PathLike[str]) -> tuple[int, int]:
    """(channels, size) of the dataset, or ConfigError saying what StyleGAN
    needs (its dataset_tool refuses the same images)."""
    channels, height, width = (int(v) for v in read_manifest(root)["image_shape"])
    if channels not in (1, 3):
        raise ConfigError(f"--to stylegan: the images have {channels} channels; StyleGAN reads grayscale (1) or RGB (3)")
    if height != width:
        raise ConfigError(f"--to stylegan: the images are {width}x{height}; StyleGAN needs square images")
    if width < 4 or width & (width - 1):
        lower = 1 << (width.bit_length() - 1)
        raise ConfigError(
            f"--to stylegan: the images are {width}x{width}; StyleGAN needs a power-of-two size: "
            f"rebuild with --size {lower} or --size {lower * 2}"
        )
    return channels, width


def stylegan_name(index: int) -> str:
    """The archive name dataset_tool gives the ``index``-th image:
    ``00000/img00000000.png`` (at most 1000 images a folder)."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def _stylegan_png(image: np.ndarray) -> bytes:
    # Uncompressed, like dataset_tool: the training loop decodes these for
    # every batch, and zlib level 0 decodes fastest.
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def to_stylegan(root: str | os.PathLike[str], dest: str | os.PathLike[str], split: str | None = None,
                overwrite: bool = False) -> ExportSummary:
    """Write one split (default train) of the dataset at ``root`` as a
    StyleGAN2-ADA / StyleGAN3 / EDM dataset: a ZIP when ``dest`` ends in
    ``.zip``, else a folder, with ``dataset.json`` holding the labels."""
    _check_stylegan_shape(root)
    split = split or "train"
    ds = Dataset(root, split=split)
    dest_path = Path(dest)
    as_zip = dest_path.suffix.lower() == ".zip"
    labels: list[list[Any] | None] = []
    if as_zip:
        if dest_path.exists() and not overwrite:
            raise ConfigError(f"--to: {dest_path} exists; choose another file or pass --overwrite")
        if dest_path.is_dir():
            raise ConfigError(f"--to: {dest_path} is a directory; a ZIP needs a file name")
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{dest_path.name}-", dir=dest_path.parent)
        os.close(fd)
        try:
            # ZIP_STORED as dataset_tool writes: PNGs are compressed already.
            with zipfile.ZipFile(tmp_name, "w", compression=zipfile.ZIP_STORED) as archive:
                for index, (image, label) in enumerate(iter_images(ds)):
                    name = stylegan_name(index)
                    archive.writestr(name, _stylegan_png(image))
                    labels.append([name, label] if label >= 0 else None)
                archive.writestr("dataset.json", json.dumps(_stylegan_labels(ds, labels)))
            os.replace(tmp_name, dest_path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    else:
        tmp = _prepare_dest(dest_path, overwrite)
        try:
            for index, (image, label) in enumerate(iter_images(ds)):
                name = stylegan_name(index)
                (tmp / name).parent.mkdir(exist_ok=True)
                (tmp / name).write_bytes(_stylegan_png(image))
                labels.append([name, label] if label >= 0 else None)
            (tmp / "dataset.json").write_text(json.dumps(_stylegan_labels(ds, labels)), encoding="utf-8")
            _publish(tmp, dest_path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return ExportSummary(path=str(dest_path), num_samples=len(labels), splits={split: len(labels)})


def _stylegan_labels(ds: Dataset, labels: list[list[Any] | None]) -> dict[str, Any]:
    # dataset_tool's rule: labels only when every image has one; the
    # training code then sizes its one-hot vectors to max(class_id) + 1.
    labelled = bool(ds.classes) and bool(labels) and all(x is not None for x in labels)
    return {"labels": labels if labelled else None}


CYCLEGAN_DIRS = ("trainA", "trainB", "testA", "testB")


def _class_id(ds: Dataset, name: str, root: str | os.PathLike[str]) -> int:
    if name not in ds.classes:
        known = ", ".join(ds.classes) or "none: the dataset is unlabeled"
        raise ConfigError(f"--domains: {root} has no class {name!r} (classes: {known})")
    return ds.classes.index(name)


def _domain_images(root: str | os.PathLike[str], class_name: str | None, test: bool) -> Iterator[np.ndarray]:
    """The images of one domain: the train split, or the val and test splits
    (``test``), of one class or of every sample."""
    wanted = [s for s in _splits(root) if (s in ("val", "test")) == test]
    for split in wanted:
        ds = Dataset(root, split=split)
        class_id = _class_id(ds, class_name, root) if class_name is not None else None
        for image, label in iter_images(ds):
            if class_id is None or label == class_id:
                yield image


def to_cyclegan(root: str | os.PathLike[str], dest: str | os.PathLike[str], domains: tuple[str, str] | None = None,
                other: str | os.PathLike[str] | None = None, overwrite: bool = False) -> ExportSummary:
    """Write two domains as CycleGAN / pix2pix ``trainA/ trainB/ testA/
    testB/`` folders in ``dest``: classes ``domains`` (A, B) of the dataset at
    ``root``, or, with ``other``, the dataset at ``root`` as A and ``other``
    as B (``domains`` then picks one class of each)."""
    if other is None and domains is None:
        raise ConfigError("--domains: --to cyclegan needs two classes (--domains A_CLASS,B_CLASS) or a second dataset (--domain-b)")
    if domains is not None and other is None and domains[0] == domains[1]:
        raise ConfigError(f"--domains: A and B are the same class {domains[0]!r}")
    roots = (root, other if other is not None else root)
    names: tuple[str | None, str | None] = domains if domains is not None else (None, None)
    # Check the classes before any image is written.
    for r, name in zip(roots, names):
        if name is not None:
            _class_id(Dataset(r), name, r)
    dest_path = Path(dest)
    tmp = _prepare_dest(dest_path, overwrite)
    counts: dict[str, int] = {}
    try:
        for folder in CYCLEGAN_DIRS:
            side = 0 if folder.endswith("A") else 1
            out = tmp / folder
            out.mkdir()
            n = 0
            for n, image in enumerate(_domain_images(roots[side], names[side], folder.startswith("test")), start=1):
                Image.fromarray(image).save(out / f"{n - 1:08d}.png", format="PNG")
            counts[folder] = n
        if counts["trainA"] == 0 or counts["trainB"] == 0:
            empty = "trainA" if counts["trainA"] == 0 else "trainB"
            raise ConfigError(f"--to cyclegan: {empty} would be empty (no training samples of that domain)")
        _publish(tmp, dest_path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(path=str(dest_path), num_samples=sum(counts.values()), splits=counts)


def export(root: str | os.PathLike[str], to: str, dest: str | os.PathLike[str], overwrite: bool = False, *,
           split: str | None = None, domains: tuple[str, str] | None = None,
           other: str | os.PathLike[str] | None = None, progress: ExportProgress | None = None) -> ExportSummary:
    """Export the dataset at ``root`` in format ``to`` (one of EXPORT_FORMATS);
    ``progress(done, total)`` is called as images are written (hf, folder).

    ``split`` picks the split of a StyleGAN export; ``domains`` and ``other``
    choose the two domains of a CycleGAN export."""
    if to == "hf":
        return to_hf(root, dest, overwrite, progress)
    if to == "folder":
        return to_folder(root, dest, overwrite, progress)
    if to == "stylegan":
        return to_stylegan(root, dest, split=split, overwrite=overwrite)
    if to == "cyclegan":
        return to_cyclegan(root, dest, domains=domains, other=other, overwrite=overwrite)
    raise ConfigError(f"--to: {to!r} must be one of {', '.join(EXPORT_FORMATS)}")
