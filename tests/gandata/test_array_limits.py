"""Array sources against hostile headers and labels (issue 15, bug 8 and the
array-source weaknesses): declared shapes are checked against --max-pixels,
the file size and a memory budget before anything is allocated; label ids
outside the classes are an error, never new classes; malformed CIFAR labels
are one clear error."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gandata.cli import main
from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.sources import open_source
from gandata.sources.base import SourceContext
from tests.common.public_data import (
    random_images,
    write_cifar10_bin,
    write_cifar10_python,
    write_idx,
)


def _npy_bytes(shape: tuple[int, ...], payload: bytes = b"\0" * 64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def _npz_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return path


def _open(uri: str, max_pixels: int = 90_000_000) -> object:
    return open_source(SourceSpec(uri), SourceContext(size_px=16, max_pixels=max_pixels))


@pytest.mark.parametrize("shape, message", [
    ((100_000, 10_000, 10_000), "exceed --max-pixels"),  # 10 TB declared in a few hundred bytes
    ((1_000_000, 64, 64), "declares"),  # within the pixel limit, but not in the file
])
def test_an_npz_header_declaring_a_huge_array_is_refused_before_allocating(tmp_path: Path, shape, message) -> None:
    path = _npz_with(tmp_path / "bomb.npz", {"images": _npy_bytes(shape)})
    with pytest.raises(SourceError, match=message):
        _open(f"npz:{path}")
    result = CliRunner().invoke(main, ["build", f"npz:{path}", "-o", str(tmp_path / "o"), "--size", "16", "-q"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output


def test_an_npy_header_declaring_a_huge_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npy"
    path.write_bytes(_npy_bytes((100_000, 10_000, 10_000)))
    with pytest.raises(SourceError, match="exceed --max-pixels"):
        _open(f"npz:{path}")


def test_array_sources_obey_max_pixels(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    np.savez(path, images=random_images(2, (40, 40), 1))
    _open(f"npz:{path}")
    with pytest.raises(SourceError, match="--max-pixels 1000"):
        _open(f"npz:{path}", max_pixels=1000)


@pytest.mark.parametrize("dims, message", [((1000, 60_000, 60_000), "exceed --max-pixels"), ((1000, 28, 28), "declares")])
def test_an_idx_header_declaring_a_huge_array_is_refused(tmp_path: Path, dims, message) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", *dims) + b"\0" * 100)
    with pytest.raises(SourceError, match=message):
        _open(f"idx:{path}")


def test_large_array_images_make_small_partitions(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "big-images-idx3-ubyte", random_images(40, (2048, 2048), 1))
    source = _open(f"idx:{path}")
    assert len(source.partitions()) == 3  # 16 rows of 4 MiB per 64 MiB partition


@pytest.mark.parametrize("labels, classes", [([0, 1, 5], ["a", "b"]), ([0, -1, 1], None)])
def test_npz_label_ids_outside_the_classes_are_an_error(tmp_path: Path, labels, classes) -> None:
    path = tmp_path / "a.npz"
    extra = {"classes": np.array(classes)} if classes else {}
    np.savez(path, images=random_images(3, (8, 8), 1), labels=np.array(labels), **extra)
    with pytest.raises(SourceError, match="outside the class ids"):
        _open(f"npz:{path}")


def test_cifar_binary_label_ids_beyond_the_names_are_an_error_not_new_classes(tmp_path: Path) -> None:
    folder = write_cifar10_bin(tmp_path / "c", random_images(4, (32, 32, 3), 1), np.array([0, 1, 7, 1]), ["a", "b"])
    result = CliRunner().invoke(main, ["build", f"cifar:{folder}", "-o", str(tmp_path / "o"), "--size", "16",
                                       "--workers", "1", "-q"])
    assert result.exit_code == 2, result.output
    assert "label id 7" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("labels", ["abc", [[0], [1]], [0, 1], None, [0, -3, 1, 2]])
def test_malformed_cifar_python_labels_are_a_clear_error(tmp_path: Path, labels) -> None:
    folder = write_cifar10_python(tmp_path / "c", random_images(4, (32, 32, 3), 1), np.array([0, 1, 0, 1]), ["a", "b"])
    batch = pickle.loads((folder / "data_batch_1").read_bytes())
    batch[b"labels"] = labels
    (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(SourceError, match="labels"):
        _open(f"cifar:{folder}")
