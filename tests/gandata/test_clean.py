"""Cleaning: scores, near-duplicate search, thresholds and the messy-folder
acceptance figures, through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageFilter

from gandata.clean.neardup import (
    candidate_pairs,
    cluster_labels,
    hamming,
    pairs_within,
    search_keys,
)
from gandata.clean.scores import image_scores
from gandata.config import (
    BuildConfig,
    CleanConfig,
    ImageConfig,
    SourceSpec,
    build_config_from_mapping,
)
from gandata.errors import ConfigError
from gandata.pipeline import build
from gandata.plan.cleaning import CleanError
from tests.common.cleandata import digit, jpeg, near_copy, photo, png, write


def _brute_pairs(values: np.ndarray, radius: int) -> set[tuple[int, int]]:
    i, j = np.triu_indices(len(values), 1)
    close = hamming(values[i], values[j]) <= radius
    return set(zip(i[close].tolist(), j[close].tolist()))


@pytest.mark.parametrize("radius", [0, 1, 3, 4, 6, 9])
@pytest.mark.parametrize("n", [50, 3000])
def test_multi_index_search_finds_exactly_the_pairs_of_brute_force(radius: int, n: int) -> None:
    rng = np.random.default_rng(radius * 100 + n)
    base = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    # Clustered data: many hashes a few bits from a handful of centres, plus
    # exact repeats, so that every block layout has real work to do.
    centres = base[:5]
    near = centres[rng.integers(0, 5, n // 3)].copy()
    for k in range(len(near)):
        for b in rng.choice(64, size=rng.integers(0, radius + 3), replace=False):
            near[k] ^= np.uint64(1) << np.uint64(b)
    values = np.concatenate([base, near, base[:7]])
    i, j = pairs_within(values, radius)
    labels = cluster_labels(len(values), i, j)
    truth = _brute_pairs(values, radius)
    # Clusters: every true pair ends in one cluster, and every found edge is true.
    assert all(labels[a] == labels[b] for a, b in truth)
    assert set(zip(i.tolist(), j.tolist())) <= truth
    ci, cj = candidate_pairs(values, radius)
    assert set(zip(ci.tolist(), cj.tolist())) == truth


def test_search_keys_cover_every_choice_of_blocks_and_share_a_lead_block() -> None:
    from math import comb

    values = np.random.default_rng(0).integers(0, 2**63, 5000, dtype=np.int64).view(np.uint64)
    for radius in (1, 4, 6):
        groups = search_keys(values, radius)
        keys = [k for _, masks in groups for k in masks]
        blocks = len(keys) and next(b for b in range(radius + 1, 65) if comb(b, b - radius) == len(keys))
        assert blocks > radius and len(set(keys)) == len(keys)
        for lead, masks in groups:
            assert all(mask & lead == lead for mask in masks)
        # Any ``radius`` flipped bits leave some key untouched (pigeonhole).
        rng = np.random.default_rng(radius)
        for _ in range(200):
            flipped = sum(1 << int(b) for b in rng.choice(64, radius, replace=False))
            assert any(mask & flipped == 0 for mask in keys)


def test_partitioned_key_join_finds_the_same_pairs_as_one_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above _PART_ROWS hashes the join cuts them into parts by a lead block;
    planted near pairs, a crowded run past the offset-by-offset limit and
    chance pairs come out the same as with one part."""
    from gandata.clean import neardup

    rng = np.random.default_rng(7)
    values = rng.integers(0, 2**63, 150_000, dtype=np.int64).view(np.uint64)
    planted = rng.choice(100_000, 300, replace=False)
    copies = values[planted] ^ (np.uint64(1) << rng.integers(0, 64, 300).astype(np.uint64))
    values[100_000:100_300] = copies
    values[120_000:120_100] = values[0] ^ (np.uint64(3) << rng.integers(0, 62, 100).astype(np.uint64))  # crowded
    originals = values[planted]
    values = np.unique(values)
    i, j = neardup._unique_pairs(values, 4)
    assert (hamming(values[i], values[j]) <= 4).all()
    found = set(zip(i.tolist(), j.tolist()))
    at = {int(v): k for k, v in enumerate(values.tolist())}
    for a, b in zip(originals.tolist(), copies.tolist()):
        assert (min(at[a], at[b]), max(at[a], at[b])) in found
    monkeypatch.setattr(neardup, "_PART_ROWS", 1 << 30)
    ri, rj = neardup._unique_pairs(values, 4)
    assert i.tolist() == ri.tolist() and j.tolist() == rj.tolist()


def test_union_find_clusters_are_named_by_smallest_member() -> None:
    labels = cluster_labels(6, np.array([4, 1, 5]), np.array([1, 3, 4]))
    assert labels.tolist() == [0, 1, 2, 1, 1, 1]


def test_scores_separate_blank_gray_dark_and_blurred_images() -> None:
    rng = np.random.default_rng(0)
    good = np.asarray(photo(rng, 64))
    s_good, h_good, thumb = image_scores(good)
    blank, _, _ = image_scores(np.full((64, 64, 3), 128, np.uint8))
    assert blank["std"] == 0 and s_good["std"] > 5 and len(thumb) == 256
    gray3, _, _ = image_scores(np.repeat(good.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2))
    assert gray3["color"] == 0 and s_good["color"] > 10
    dark, _, _ = image_scores((good // 40).astype(np.uint8))
    assert dark["p99"] < 12 <= s_good["p99"]
    strokes = np.asarray(digit(rng, 1).resize((64, 64), Image.Resampling.LANCZOS))
    blurred = np.asarray(Image.fromarray(strokes).filter(ImageFilter.GaussianBlur(2)))
    assert image_scores(blurred)[0]["blur"] < image_scores(strokes)[0]["blur"]
    # A smooth, structureless gradient cannot be judged blurry.
    ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, 0).repeat(3, 2)
    assert image_scores(ramp)[0]["blur"] == float("inf")


def test_clean_config_from_file_mapping_and_errors_name_the_option() -> None:
    config = build_config_from_mapping({"clean": {"near_dup_radius": 3, "skip": ["blurry"], "label_conflicts": "majority"}})
    assert config.clean == CleanConfig(near_dup_radius=3, skip=("blurry",), label_conflicts="majority")
    with pytest.raises(ConfigError, match="--label-conflicts"):
        build_config_from_mapping({"clean": {"label_conflicts": "vote"}})
    with pytest.raises(ConfigError, match="clean.bogus"):
        build_config_from_mapping({"clean": {"bogus": 1}})
    with pytest.raises(ConfigError, match="--skip-check"):
        build_config_from_mapping({"clean": {"skip": ["sharpness"]}})
    with pytest.raises(ConfigError, match="clean.min_std"):
        build_config_from_mapping({"clean": {"min_std": "high"}})


def _messy_folder(root: Path) -> dict[str, list]:
    """Good photos and digits (with many natural look-alike 1s) plus planted
    exact duplicates, near duplicates, blank and tiny images and label
    conflicts. Returns the planted keys by kind."""
    rng = np.random.default_rng(42)
    planted: dict[str, list] = {"good": [], "exact": [], "near": [], "blank": [], "tiny": [], "conflict": []}
    images: dict[str, Image.Image] = {}
    for i in range(60):
        images[f"photo/p{i:03d}.jpg"] = photo(rng)
        write(root / f"photo/p{i:03d}.jpg", jpeg(images[f"photo/p{i:03d}.jpg"], 90))
    for i in range(400):  # many natural look-alikes
        images[f"one/o{i:03d}.png"] = digit(rng, 1)
        write(root / f"one/o{i:03d}.png", png(images[f"one/o{i:03d}.png"]))
    for i in range(60):
        images[f"zero/z{i:03d}.png"] = digit(rng, 0)
        write(root / f"zero/z{i:03d}.png", png(images[f"zero/z{i:03d}.png"]))
    planted["good"] = sorted(images)
    originals = rng.permutation(planted["good"])
    for k, key in enumerate(originals[:12]):  # byte-identical copies, same class
        copy = key.replace("/", "/copy-")
        write(root / copy, (root / key).read_bytes())
        planted["exact"].append((key, copy))
    for k, key in enumerate(originals[12:42]):  # rescaled + re-encoded copies
        copy = key.rsplit(".", 1)[0].replace("/", "/near-") + ".jpg"
        write(root / copy, near_copy(images[key], rng))
        planted["near"].append((key, copy))
    for k, key in enumerate(originals[42:46]):  # same picture under another label
        other = "zero" if not key.startswith("zero") else "one"
        copy = f"{other}/mislabelled-{k}.{key.rsplit('.', 1)[1]}"
        write(root / copy, (root / key).read_bytes())
        planted["conflict"].append((key, copy))
    for k in range(8):
        value = rng.integers(0, 256, 3)
        blank = np.broadcast_to(value, (80, 80, 3)).astype(np.float64) + (rng.normal(0, 1, (80, 80, 3)) if k % 2 else 0)
        key = f"photo/blank-{k}.jpg"
        write(root / key, jpeg(Image.fromarray(np.clip(blank, 0, 255).astype(np.uint8)), 85))
        planted["blank"].append(key)
    for k in range(5):
        key = f"one/tiny-{k}.png"
        write(root / key, png(digit(rng, 1).resize((8, 8))))
        planted["tiny"].append(key)
    return planted


@pytest.fixture(scope="module")
def messy_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list], dict[str, dict]]:
    root = tmp_path_factory.mktemp("messy")
    planted = _messy_folder(root / "in")
    out = root / "out"
    build(BuildConfig(sources=(SourceSpec(str(root / "in")),), output=str(out), image=ImageConfig(size_px=32), workers=1, keep_staging=True))
    rejected = {r["key"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    return out, planted, rejected


def test_messy_folder_acceptance_figures(messy_build: tuple[Path, dict[str, list], dict[str, dict]]) -> None:
    out, planted, rejected = messy_build
    kept = set(pq.read_table(out / "samples.parquet").column("key").to_pylist())
    # All exact duplicates: exactly one of each pair remains.
    assert all((a in kept) != (b in kept) for a, b in planted["exact"])
    assert all(rejected[b if a in kept else a]["reason"] == "duplicate" for a, b in planted["exact"])
    # Near duplicates: at least 90% of the pairs collapse to one sample.
    collapsed = [(a in kept) != (b in kept) for a, b in planted["near"]]
    near_recall = sum(collapsed) / len(collapsed)
    print(f"near-duplicate pairs removed: {sum(collapsed)}/{len(collapsed)} ({100 * near_recall:.0f}%)")
    assert near_recall >= 0.9
    for a, b in planted["near"]:
        gone = a if b in kept else b
        if gone in rejected and rejected[gone]["reason"] == "near_duplicate":
            assert rejected[gone]["kept_key"] in (a, b)
    # Blank and tiny images: all removed, for the right reason.
    assert all(rejected[k]["reason"] == "low_information" for k in planted["blank"])
    assert all(rejected[k]["reason"] == "too_small" for k in planted["tiny"])
    # Label conflicts: both sides dropped (the default) and reported.
    for a, b in planted["conflict"]:
        assert rejected[a]["reason"] == rejected[b]["reason"] == "label_conflict"
    # Good images outside any planted pair: less than 1% removed.
    involved = {k for kind in ("exact", "near", "conflict") for pair in planted[kind] for k in pair}
    good = [k for k in planted["good"] if k not in involved]
    lost = [k for k in good if k not in kept]
    print(f"good images removed: {len(lost)}/{len(good)} {[(k, rejected[k]['reason']) for k in lost]}")
    assert len(lost) / len(good) < 0.01
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rejections"]["label_conflict"] == 8


def test_changing_thresholds_reuses_staged_partitions(messy_build: tuple[Path, dict[str, list], dict[str, dict]], tmp_path: Path) -> None:
    out, planted, _ = messy_build
    source = SourceSpec(str(out.parent / "in"))
    config = BuildConfig(
        sources=(source,), output=str(out), image=ImageConfig(size_px=32), workers=1, overwrite=True, keep_staging=True,
        clean=CleanConfig(label_conflicts="majority", near_dups=False, min_std=0.0),
    )
    summary = build(config)
    assert summary.reused_partitions >= 1
    rejected = {r["key"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert "near_duplicate" not in summary.rejections
    # Two-member conflicts are ties: "majority" still drops both.
    assert all(rejected[a]["reason"] == "label_conflict" for a, _ in planted["conflict"])
    assert not any(rejected.get(k, {}).get("reason") == "low_information" for k in planted["blank"])
    summary = build(BuildConfig(sources=(source,), output=str(out), image=ImageConfig(size_px=32), workers=1,
                                overwrite=True, clean=CleanConfig(enabled=False)))
    assert set(summary.rejections) <= {"duplicate", "too_small"}


def test_majority_label_keeps_the_majority_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    picture = jpeg(photo(rng), 90)
    for name in ("cat/a.jpg", "cat/b.jpg", "dog/c.jpg"):
        write(tmp_path / "in" / name, picture)
    for i in range(3):
        write(tmp_path / "in" / f"dog/other{i}.jpg", jpeg(photo(rng), 90))
    out = tmp_path / "out"
    build(BuildConfig(sources=(SourceSpec(str(tmp_path / "in")),), output=str(out), image=ImageConfig(size_px=32), workers=1,
                      clean=CleanConfig(label_conflicts="majority")))
    rejected = {r["key"]: r for r in map(json.loads, (out / "rejected.jsonl").read_text().splitlines())}
    assert rejected["dog/c.jpg"]["reason"] == "label_conflict" and rejected["dog/c.jpg"]["kept_key"] == "cat/a.jpg"
    assert rejected["cat/b.jpg"]["reason"] == "duplicate" and rejected["cat/b.jpg"]["kept_key"] == "cat/a.jpg"
    assert "cat/a.jpg" in pq.read_table(out / "samples.parquet").column("key").to_pylist()


def test_a_check_removing_most_of_a_class_stops_the_build(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i in range(12):
        write(tmp_path / "in" / f"sky/s{i}.jpg", jpeg(photo(rng), 90))
    with pytest.raises(CleanError, match=r"--min-std: the low_information check would remove 12 of 12 samples of class 'sky'"):
        build(BuildConfig(sources=(SourceSpec(str(tmp_path / "in")),), output=str(tmp_path / "out"),
                          image=ImageConfig(size_px=32), workers=1, clean=CleanConfig(min_std=200.0)))


def test_same_picture_in_other_colours_is_not_a_near_duplicate(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:64, 0:64]
    disc = ((xx - 30) ** 2 + (yy - 34) ** 2 < 18**2)[..., None]
    background = 40 + rng.normal(0, 4, (64, 64, 1))
    # Two discs of (almost) equal luma: the grayscale thumbnails correlate
    # ~1, only the colour tells them apart.
    red = np.where(disc, np.array([200, 50, 50]), background)
    green = np.where(disc, np.array([50, 130, 60]), background)
    picture = Image.fromarray(np.clip(red, 0, 255).astype(np.uint8))
    write(tmp_path / "in/a.png", png(picture))
    write(tmp_path / "in/b.png", png(Image.fromarray(np.clip(green, 0, 255).astype(np.uint8))))
    write(tmp_path / "in/c.jpg", near_copy(picture, rng))
    out = tmp_path / "out"
    summary = build(BuildConfig(sources=(SourceSpec(str(tmp_path / "in")),), output=str(out), image=ImageConfig(size_px=32), workers=1))
    assert summary.num_samples == 2 and summary.rejections == {"near_duplicate": 1}
    kept = set(pq.read_table(out / "samples.parquet").column("key").to_pylist())
    assert "b.png" in kept


def test_perceptual_hashes_survive_reencoding_and_tell_pictures_apart() -> None:
    from gandata.clean.phash import dhash, phash

    rng = np.random.default_rng(2)
    a, b = photo(rng, 64), photo(rng, 64)
    gray = lambda im: np.asarray(im.convert("L"))  # noqa: E731
    import io

    buf = io.BytesIO()
    a.save(buf, "JPEG", quality=60)
    a2 = Image.open(io.BytesIO(buf.getvalue()))
    for fn in (phash, dhash):
        same = hamming(np.array([fn(gray(a))]).view(np.uint64), np.array([fn(gray(a2))]).view(np.uint64))[0]
        other = hamming(np.array([fn(gray(a))]).view(np.uint64), np.array([fn(gray(b))]).view(np.uint64))[0]
        assert same <= 8 < 16 <= other
