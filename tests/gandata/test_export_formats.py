"""gandata export --to stylegan / cyclegan / hf: round trips of pixels and labels,
read back the way each consumer documents its format."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata import open_dataset
from gandata.cli import main
from gandata.config import BalanceConfig, BuildConfig, ImageConfig, SourceSpec
from gandata.dataset.export import export, stylegan_name, to_cyclegan, to_stylegan
from gandata.errors import ConfigError
from gandata.pipeline import build


def _build(out: Path, size: int = 16, channels: int = 3, count: int = 40, val: float = 0.0) -> Path:
    config = BuildConfig(
        sources=(SourceSpec(f"synth:shapes?count={count}"),), output=str(out),
        image=ImageConfig(size_px=size, channels=channels, min_size_px=min(16, size)), workers=1, executor="serial",
        balance=BalanceConfig(val_fraction=val),
    )
    build(config)
    return out


@pytest.fixture(scope="module")
def rgb16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("rgb16") / "ds", val=0.25)


def _dataset_pixels(root: Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, H, W) uint8 images and labels of a split, in reading order."""
    ds = open_dataset(root, split=split)
    arrays = ds.load_all()
    return ds.to_uint8(arrays.images), arrays.labels


# ---- a reader written to StyleGAN2-ADA's documented format (dataset_tool.py's help,
# training/dataset.py's ImageFolderDataset): images are the PNG members in sorted
# order; dataset.json at the root maps each member name to its class id, or is null.


def _read_stylegan_zip(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(n for n in archive.namelist() if n.lower().endswith(".png"))
        images = []
        for name in names:
            image = np.array(Image.open(io.BytesIO(archive.read(name))))
            if image.ndim == 2:
                image = image[:, :, np.newaxis]
            images.append(image.transpose(2, 0, 1))
        meta = json.loads(archive.read("dataset.json"))
        # Stored, like dataset_tool writes it.
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
    labels = None
    if meta["labels"] is not None:
        table = dict(meta["labels"])
        labels = np.array([table[n] for n in names], dtype=np.int64)
    return np.stack(images), labels


def test_stylegan_zip_round_trip(rgb16: Path, tmp_path: Path) -> None:
    summary = to_stylegan(rgb16, tmp_path / "out.zip")
    images, labels = _read_stylegan_zip(tmp_path / "out.zip")
    want_images, want_labels = _dataset_pixels(rgb16, "train")
    assert summary.num_samples == len(want_images) == len(images)
    assert images.shape[1:] == (3, 16, 16)
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        names = archive.namelist()
    assert names[0] == "00000/img00000000.png" and names[-1] == "dataset.json"
    assert stylegan_name(123456) == "00123/img00123456.png"


def test_stylegan_folder_and_val_split(rgb16: Path, tmp_path: Path) -> None:
    to_stylegan(rgb16, tmp_path / "sg", split="val")
    meta = json.loads((tmp_path / "sg" / "dataset.json").read_text())
    want_images, want_labels = _dataset_pixels(rgb16, "val")
    assert [entry[1] for entry in meta["labels"]] == want_labels.tolist()
    for (name, _), want in zip(meta["labels"], want_images):
        np.testing.assert_array_equal(np.array(Image.open(tmp_path / "sg" / name)).transpose(2, 0, 1), want)


def test_stylegan_grayscale_unlabeled(tmp_path: Path) -> None:
    root = tmp_path / "gray"
    config = BuildConfig(sources=(SourceSpec("synth:shapes?count=12"),), output=str(root),
                         image=ImageConfig(size_px=16, channels=1), workers=1, executor="serial")
    build(config)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["image_shape"] == [1, 16, 16]
    to_stylegan(root, tmp_path / "g.zip")
    images, labels = _read_stylegan_zip(tmp_path / "g.zip")
    want_images, want_labels = _dataset_pixels(root, "train")
    np.testing.assert_array_equal(images, want_images)
    np.testing.assert_array_equal(labels, want_labels)


def test_stylegan_null_labels_when_unlabeled(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    root = tmp_path / "ds"
    build(BuildConfig(sources=(SourceSpec(str(folder)),), output=str(root), image=ImageConfig(size_px=16),
                      workers=1, executor="serial"))
    to_stylegan(root, tmp_path / "u.zip")
    images, labels = _read_stylegan_zip(tmp_path / "u.zip")
    assert labels is None and len(images) == 5


def test_stylegan_refuses_non_power_of_two(tmp_path: Path) -> None:
    root = _build(tmp_path / "ds", size=12, count=8)
    with pytest.raises(ConfigError, match="power-of-two.*--size 8 or --size 16"):
        to_stylegan(root, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def _read_folder(path: Path) -> np.ndarray:
    files = sorted(path.glob("*.png"))
    return np.stack([np.array(Image.open(f).convert("RGB")).transpose(2, 0, 1) for f in files]) if files else np.zeros((0,))


def test_cyclegan_domains_round_trip(rgb16: Path, tmp_path: Path) -> None:
    ds = open_dataset(rgb16)
    a, b = ds.classes[0], ds.classes[1]
    summary = to_cyclegan(rgb16, tmp_path / "cg", domains=(a, b))
    for folder, split, cls in (("trainA", "train", 0), ("trainB", "train", 1), ("testA", "val", 0), ("testB", "val", 1)):
        want_images, want_labels = _dataset_pixels(rgb16, split)
        want = want_images[want_labels == cls]
        got = _read_folder(tmp_path / "cg" / folder)
        assert summary.splits[folder] == len(want) == len(got)
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in (tmp_path / "cg").iterdir()) == ["testA", "testB", "trainA", "trainB"]


def test_cyclegan_two_datasets_and_errors(rgb16: Path, tmp_path: Path) -> None:
    other = _build(tmp_path / "other", count=10)
    summary = to_cyclegan(rgb16, tmp_path / "two", other=other)
    assert summary.splits["trainB"] == len(open_dataset(other, split="train"))
    assert summary.splits["testB"] == 0 and (tmp_path / "two" / "testB").is_dir()
    with pytest.raises(ConfigError, match="--domains: .* no class 'zebra'"):
        to_cyclegan(rgb16, tmp_path / "bad", domains=("zebra", open_dataset(rgb16).classes[0]))
    with pytest.raises(ConfigError, match="needs two classes"):
        to_cyclegan(rgb16, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_export_cli_stylegan_and_cyclegan(rgb16: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["export", str(rgb16), "--to", "stylegan", str(tmp_path / "c.zip")])
    assert result.exit_code == 0, result.output
    assert "(stylegan)" in result.output
    classes = open_dataset(rgb16).classes
    result = runner.invoke(main, ["export", str(rgb16), "--to", "cyclegan", str(tmp_path / "cg"),
                                  "--domains", f"{classes[0]},{classes[1]}"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["export", str(rgb16), "--to", "cyclegan", str(tmp_path / "cg2"), "--domains", "onlyone"])
    assert result.exit_code != 0 and "--domains" in result.output
    result = runner.invoke(main, ["export", str(rgb16), "--to", "folder", str(tmp_path / "f"), "--split", "val"])
    assert result.exit_code != 0 and "--split" in result.output


def test_hf_export_carries_card(rgb16: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    export(rgb16, "hf", tmp_path / "hf")
    card = (tmp_path / "hf" / "README.md").read_text(encoding="utf-8")
    assert card == (rgb16 / "README.md").read_text(encoding="utf-8")
    import datasets

    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    want_images, want_labels = _dataset_pixels(rgb16, "train")
    got = np.stack([np.array(img).transpose(2, 0, 1) for img in loaded["train"]["image"]])
    np.testing.assert_array_equal(got, want_images)
    assert loaded["train"]["label"] == want_labels.tolist()
