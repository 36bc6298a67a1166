"""Writers of tiny public-format datasets for the tests: real IDX, CIFAR
binary/python, npz files and real ``datasets`` objects."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def random_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)


def write_idx(path: Path, array: np.ndarray) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, np.uint8).tobytes()
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)
    return path


def write_cifar10_bin(folder: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> Path:
    """images [N, 32, 32, 3]; writes data_batch_1.bin (all) and test_batch.bin (first 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    records = np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1)
    (folder / "data_batch_1.bin").write_bytes(records.tobytes())
    (folder / "test_batch.bin").write_bytes(records[:2].tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return folder


def write_cifar100_bin(folder: Path, images: np.ndarray, coarse: np.ndarray, fine: np.ndarray,
                       coarse_names: list[str], fine_names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    records = np.concatenate([coarse.astype(np.uint8)[:, None], fine.astype(np.uint8)[:, None], planes], axis=1)
    (folder / "train.bin").write_bytes(records.tobytes())
    (folder / "test.bin").write_bytes(records[:1].tobytes())
    (folder / "coarse_label_names.txt").write_text("\n".join(coarse_names) + "\n")
    (folder / "fine_label_names.txt").write_text("\n".join(fine_names) + "\n")
    return folder


def write_cifar10_python(folder: Path, images: np.ndarray, labels: np.ndarray, names: list[str]) -> Path:
    """The CIFAR-10 "python" version: pickled dicts with a numpy data array."""
    folder.mkdir(parents=True, exist_ok=True)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": b"training batch 1 of 1", b"labels": [int(x) for x in labels], b"data": planes}
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps({b"labels": [int(labels[0])], b"data": planes[:1]}, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in names]}, protocol=2))
    return folder


class RunsCode:
    """Unpickling this would run ``os.system`` (it must never be unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def image_dataset(images: list[bytes | None], labels: list[int] | None, names: list[str] | None):
    """A real ``datasets.Dataset`` with an Image (and ClassLabel) feature."""
    import datasets

    data: dict = {"image": [None if b is None else {"bytes": b, "path": None} for b in images]}
    features: dict = {"image": datasets.Image()}
    if labels is not None:
        data["label"] = labels
        features["label"] = datasets.ClassLabel(names=names)
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def populate_hub_cache(hf_home: Path, repo_id: str, parquet_file: Path, features) -> None:
    """Prepare ``repo_id`` in the HF datasets cache under ``hf_home`` the way
    an earlier online ``load_dataset(repo_id)`` leaves it, so that it loads
    with ``HF_DATASETS_OFFLINE=1``."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    cache = hf_home / "datasets"
    namespace, name = repo_id.split("/")
    builder = Parquet(cache_dir=str(cache), dataset_name=name, config_name="default",
                      data_files={"train": [str(parquet_file)]}, hash="0123abcd", features=features)
    builder.download_and_prepare()
    prepared = cache / name
    config_dir = next(p for p in prepared.iterdir() if p.is_dir())
    target = cache / f"{namespace}___{name}"
    target.mkdir(parents=True)
    shutil.move(str(config_dir), str(target / "default"))
    shutil.rmtree(prepared)
