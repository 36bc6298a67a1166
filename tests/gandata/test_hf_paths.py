"""HuggingFace Image cells given by path only (issue 15, bug 6): the path
must be a regular file inside the dataset's own folder, of bounded size; any
other path is a counted rejection, never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.pipeline import build
from tests.common.public_data import png_bytes, random_images

datasets = pytest.importorskip("datasets")


def _path_dataset(folder: Path, paths: list[str]) -> str:
    # The cells of an Image column, stored as a plain struct: save_to_disk
    # would otherwise embed (read) the files the paths name.
    data = {"image": [{"bytes": None, "path": p} for p in paths]}
    struct = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    datasets.Dataset.from_dict(data, features=datasets.Features({"image": struct})).save_to_disk(str(folder))
    return f"hf-disk:{folder}"


def test_image_paths_outside_the_dataset_or_not_regular_files_are_rejected_unread(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    inside = disk / "ok.png"
    inside.write_bytes(png_bytes(random_images(1, (16, 16, 3), 1)[0]))
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes(random_images(1, (16, 16, 3), 2)[0]))
    os.mkfifo(disk / "fifo.png")
    os.symlink(outside, disk / "link.png")
    uri = _path_dataset(disk, [str(inside), "ok.png", str(outside), "/etc/passwd", "/dev/zero", str(disk / "fifo.png"),
                               str(disk / "link.png"), "../secret.png"])
    out = tmp_path / "out"
    summary = build(BuildConfig(sources=(SourceSpec(uri, image_column="image"),), output=str(out), image=ImageConfig(size_px=16),
                                workers=1, executor="serial", clean=CleanConfig(enabled=False), dedup=False))
    assert summary.num_samples == 2
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 6
    assert all(r["reason"] == "unsupported" and "not a regular file inside" in r["detail"] for r in rejected)
