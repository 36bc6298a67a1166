"""The near-duplicate keep rule (gandata.plan.cleaning, issue 17): the
member with the most native information is kept, so an upscaled or heavily
compressed copy never wins over its original merely by its pixel count."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from gandata.clean.scores import detail_share, detail_shares
from gandata.config import BuildConfig, CleanConfig, ImageConfig, SourceSpec
from gandata.image.fit import NATIVE_TILE_PX, prepare_image
from gandata.pipeline import build
from gandata.plan.cleaning import native_areas
from tests.common.cleandata import jpeg, photo, png, write


def textured(size: int, seed: int = 7) -> Image.Image:
    """A photo-like original with detail down to the pixel: gradients and
    blobs (cleandata.photo), shapes with hard edges, a fine grating and grain."""
    rng = np.random.default_rng(seed)
    image = photo(rng, size)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(0.05, 0.2) * size
        draw.ellipse((x - r, y - r, x + r, y + r), outline=tuple(int(v) for v in rng.integers(0, 255, 3)), width=2)
    a = np.asarray(image).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    a += 20 * np.sin(xx / 2.1 + yy / 5.3)[..., None]
    a += rng.normal(0, 6, a.shape)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def resized(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC if factor > 1 else Image.Resampling.LANCZOS)


def _build(src: Path, out: Path, image: ImageConfig) -> tuple[set[str], dict[str, dict]]:
    build(BuildConfig(sources=(SourceSpec(str(src)),), output=str(out), image=image, workers=1, executor="serial"))
    kept = set(pq.read_table(out / "samples.parquet").column("key").to_pylist())
    rejected = {r["key"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    return kept, rejected


def _upscaled_copies(root: Path, original: Image.Image) -> None:
    """Copies named to sort first, so that no tie-break by key picks the original."""
    write(root / "a-up2x-q30.jpg", jpeg(resized(original, 2.0), 30))
    write(root / "b-up5pct-q30.jpg", jpeg(resized(original, 1.05), 30))
    write(root / "c-up5pct.png", png(resized(original, 1.05)))


def test_full_scale_decode_keeps_the_original_over_upscaled_and_compressed_copies(tmp_path: Path) -> None:
    original = textured(240)
    _upscaled_copies(tmp_path / "in", original)
    write(tmp_path / "in" / "d-original-q95.jpg", jpeg(original, 95))
    write(tmp_path / "in" / "e-original.png", png(original))
    image = ImageConfig(size_px=64, draft=False)
    kept, rejected = _build(tmp_path / "in", tmp_path / "out", image)
    assert kept == {"e-original.png"}
    for key in ("a-up2x-q30.jpg", "b-up5pct-q30.jpg", "c-up5pct.png", "d-original-q95.jpg"):
        assert rejected[key]["reason"] == "near_duplicate", key
        assert rejected[key]["kept_key"] == "e-original.png", key


def test_without_the_lossless_original_the_best_jpeg_is_kept(tmp_path: Path) -> None:
    original = textured(240)
    _upscaled_copies(tmp_path / "in", original)
    write(tmp_path / "in" / "d-original-q95.jpg", jpeg(original, 95))
    kept, rejected = _build(tmp_path / "in", tmp_path / "out", ImageConfig(size_px=64, draft=False))
    assert kept == {"d-original-q95.jpg"}
    assert {rejected[k]["kept_key"] for k in ("a-up2x-q30.jpg", "b-up5pct-q30.jpg", "c-up5pct.png")} == {"d-original-q95.jpg"}


def test_reduced_scale_decode_keeps_the_original_over_an_upscaled_low_quality_copy(tmp_path: Path) -> None:
    original = textured(1024)
    write(tmp_path / "in" / "a-up5pct-q30.jpg", jpeg(resized(original, 1.05), 30))
    write(tmp_path / "in" / "b-original-q95.jpg", jpeg(original, 95))
    image = ImageConfig(size_px=64)
    # Both are decoded at 1/8 scale: no detail is measured, the JPEG quality decides.
    assert all(prepare_image((tmp_path / "in" / name).read_bytes(), None, image).native_luma is None
               for name in ("a-up5pct-q30.jpg", "b-original-q95.jpg"))
    kept, rejected = _build(tmp_path / "in", tmp_path / "out", image)
    assert kept == {"b-original-q95.jpg"}
    assert rejected["a-up5pct-q30.jpg"]["reason"] == "near_duplicate"
    assert rejected["a-up5pct-q30.jpg"]["kept_key"] == "b-original-q95.jpg"


@pytest.mark.parametrize("draft", [False, True])
def test_a_larger_true_original_beats_a_downscaled_copy(tmp_path: Path, draft: bool) -> None:
    original = textured(256)
    write(tmp_path / "in" / "a-half.png", png(resized(original, 0.5)))
    write(tmp_path / "in" / "b-small-q95.jpg", jpeg(resized(original, 0.6), 95))
    write(tmp_path / "in" / "c-original-q90.jpg", jpeg(original, 90))
    kept, rejected = _build(tmp_path / "in", tmp_path / "out", ImageConfig(size_px=64, draft=draft))
    assert kept == {"c-original-q90.jpg"}
    assert rejected["a-half.png"]["kept_key"] == rejected["b-small-q95.jpg"]["kept_key"] == "c-original-q90.jpg"


def test_lossless_copies_of_one_size_keep_the_first_by_key(tmp_path: Path) -> None:
    original = textured(200)
    for name in ("b.png", "a.png"):
        write(tmp_path / "in" / name, png(original))
    write(tmp_path / "in" / "c.bmp", b"")  # a corrupt file: rejected, no member
    original.save(tmp_path / "in" / "d.bmp")
    kept, rejected = _build(tmp_path / "in", tmp_path / "out", ImageConfig(size_px=64))
    assert kept == {"a.png"}
    assert rejected["b.png"]["kept_key"] == rejected["d.bmp"]["kept_key"] == "a.png"


def test_staging_without_the_new_scores_keeps_the_old_rule(tmp_path: Path) -> None:
    original = textured(240)
    write(tmp_path / "in" / "a-original.png", png(original))
    write(tmp_path / "in" / "b-up5pct-q30.jpg", jpeg(resized(original, 1.05), 30))
    out = tmp_path / "out"
    config = BuildConfig(sources=(SourceSpec(str(tmp_path / "in")),), output=str(out),
                         image=ImageConfig(size_px=64, draft=False), workers=1, executor="serial", keep_staging=True)
    build(config)
    assert set(pq.read_table(out / "samples.parquet").column("key").to_pylist()) == {"a-original.png"}
    # Staging written before issue 17: no detail or quality columns.
    metas = list((out / ".staging").rglob("meta.parquet"))
    assert metas
    for meta in metas:
        table = pq.read_table(meta)
        pq.write_table(table.drop_columns(["score_detail", "score_jpeg_quality"]), meta)
    summary = build(dataclasses.replace(config, overwrite=True, clean=CleanConfig(near_dup_similarity=0.98)))
    assert summary.reused_partitions >= 1
    kept = set(pq.read_table(out / "samples.parquet").column("key").to_pylist())
    assert kept == {"b-up5pct-q30.jpg"}  # the largest original area, as before issue 17


def test_detail_share_sees_upscaling_and_compression_at_native_resolution() -> None:
    original = textured(240)
    config = ImageConfig(size_px=64, draft=False)

    def detail(image: Image.Image, quality: int | None = None) -> float:
        data = png(image) if quality is None else jpeg(image, quality)
        tile = prepare_image(data, None, config).native_luma
        assert tile is not None and tile.shape == (NATIVE_TILE_PX, NATIVE_TILE_PX)
        return detail_share(tile)

    native = detail(original)
    assert detail(original, 95) > 0.6 * native
    for copy in (detail(resized(original, 1.05)), detail(resized(original, 2.0)), detail(original, 30)):
        assert copy < 0.7 * native
    assert detail(resized(original, 2.0)) < 0.1 * native
    assert np.isnan(detail_share(np.full((64, 64), 90, np.uint8)))
    assert np.isnan(detail_share(np.zeros((8, 8), np.uint8)))
    # Per partition, tiles of one side share a transform: the same figures.
    tiles = [prepare_image(png(image), None, config).native_luma for image in (original, resized(original, 2.0))]
    tiles += [None, np.full((64, 64), 90, np.uint8), tiles[0][:40, :50]]
    batch = detail_shares(tiles)
    single = [detail_share(t) if t is not None else np.nan for t in tiles]
    np.testing.assert_allclose(batch, single, rtol=1e-6)
    assert np.isnan(batch[2:4]).all() and np.isfinite(batch[[0, 1, 4]]).all()


def test_native_areas_scale_by_relative_detail_and_ignore_unmeasured_members() -> None:
    area = np.array([100.0, 400.0, 110.0, 120.0])
    detail = np.array([1.0, 0.1, 0.5, np.nan])
    assert native_areas(area, detail).tolist() == [100.0, 40.0, 55.0, 120.0]
    assert native_areas(area, np.full(4, np.nan)).tolist() == area.tolist()
