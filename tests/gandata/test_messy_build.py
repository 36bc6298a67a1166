"""A folder of real-world messy files builds without a crash, and every bad
input lands in rejected.jsonl with the right reason."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gandata import open_dataset
from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.dataset.verify import verify_dataset
from gandata.pipeline import build
from tests.common.imagefactory import quadrants, write_exif_rotated, write_messy_folder


def _messy(root: Path) -> dict[str, str]:
    expected = write_messy_folder(root)
    (root / "upright").mkdir()
    # Non-square, rotated 90 degrees: upright means red top-left, green
    # top-right, blue bottom half in the output too.
    for orientation in (6, 8):
        content = quadrants(96, 64)
        # Distinct content per file: identical pictures would be (rightly)
        # removed as near duplicates of each other.
        content[40:48, 10 + 30 * (orientation == 8) : 40 + 30 * (orientation == 8)] = 255
        write_exif_rotated(root / "upright" / f"rot{orientation}.jpg", orientation, size=(96, 64), content=content)
        expected[f"upright/rot{orientation}.jpg"] = "ok"
    return expected


def _check(out: Path, expected: dict[str, str], locator_of) -> None:
    assert verify_dataset(out).ok
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    by_key = {r["key"]: r for r in rejected}
    for rel, outcome in expected.items():
        if outcome == "ok":
            assert rel not in by_key, f"{rel} rejected: {by_key.get(rel)}"
        else:
            assert rel in by_key, f"{rel} should be rejected as {outcome}"
            assert by_key[rel]["reason"] == outcome, f"{rel}: {by_key[rel]}"
            assert by_key[rel]["source"] == locator_of(rel)
            assert by_key[rel]["detail"]
    samples = pq.read_table(out / "samples.parquet").to_pylist()
    kept = {rel for rel, outcome in expected.items() if outcome == "ok"}
    assert {s["key"] for s in samples} == kept
    for s in samples:
        top = s["key"].split("/")[0]
        assert s["class_name"] == top
    ds = open_dataset(out)
    offsets = np.cumsum([0] + [sh["num_samples"] for sh in ds.manifest["shards"]])
    for s in samples:
        if s["key"].startswith("upright/"):
            image, _ = ds[int(offsets[s["shard"]] + s["row"])]
            hwc = image.transpose(1, 2, 0).astype(int)
            h, w = hwc.shape[:2]
            top_left = hwc[: h // 4, : w // 4].mean(axis=(0, 1))
            top_right = hwc[: h // 4, -w // 4 :].mean(axis=(0, 1))
            bottom = hwc[-h // 4 :].mean(axis=(0, 1))
            assert top_left.argmax() == 0 and top_right.argmax() == 1 and bottom.argmax() == 2, s["key"]


def test_messy_folder_builds_and_rejects_with_reasons(tmp_path: Path) -> None:
    src = tmp_path / "messy"
    expected = _messy(src)
    out = tmp_path / "out"
    build(BuildConfig(sources=(SourceSpec(str(src)),), output=str(out), image=ImageConfig(size_px=32), workers=2))
    _check(out, expected, lambda rel: str(src / rel))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rejections"]["corrupt"] == sum(1 for v in expected.values() if v == "corrupt")


def test_messy_zip_builds_and_rejects_with_reasons(tmp_path: Path) -> None:
    src = tmp_path / "messy"
    expected = _messy(src)
    archive = tmp_path / "messy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(src).as_posix())
    out = tmp_path / "out"
    build(BuildConfig(sources=(SourceSpec(str(archive)),), output=str(out), image=ImageConfig(size_px=32), workers=1))
    # Hidden files inside an archive are rejected as hidden too.
    _check(out, expected, lambda rel: f"{archive}!{rel}")


@pytest.mark.parametrize("background", ["black", "white"])
def test_background_option_reaches_alpha_compositing(tmp_path: Path, background: str) -> None:
    from PIL import Image

    src = tmp_path / "alpha"
    src.mkdir()
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent everywhere
    Image.fromarray(rgba, "RGBA").save(src / "clear.png")
    out = tmp_path / "out"
    from gandata.config import parse_color

    # A uniform black or white image is what the quality checks remove.
    build(BuildConfig(sources=(SourceSpec(str(src)),), output=str(out),
                      image=ImageConfig(size_px=32, background=parse_color(background, "--background")), workers=1,
                      clean=CleanConfig(skip=("low_information", "too_dark", "too_light"))))
    image, _ = open_dataset(out)[0]
    assert int(image.mean()) == (0 if background == "black" else 255)
