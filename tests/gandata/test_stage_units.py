"""Each stage package's own functions, called directly on small real data:
staging (ingest), the plan's table and steps, the merge of sources, the
manifest and its reader, normalization, provenance summaries and the URL
helpers. The end-to-end behaviour is covered by the pipeline tests; these pin
the pieces a newcomer would change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from gandata.config import BuildConfig, ImageConfig, SourceSpec
from gandata.dataset.manifest import FORMAT_VERSION, read_manifest, write_json_atomic
from gandata.dataset.normalize import Normalization, normalization_for
from gandata.dataset.reader import open_dataset
from gandata.errors import FormatError
from gandata.ingest.staging import is_complete, open_images, read_meta
from gandata.pipeline import build, ingest_only
from gandata.plan.dedup import find_exact_duplicates
from gandata.plan.make import make_plan
from gandata.plan.merge import map_name
from gandata.plan.table import assign_shards, channel_stats, resolve_classes
from gandata.util.hashing import file_sha256
from gandata.util.remote import is_remote, join, local_path, protocol_of
from gandata.write.provenance_summary import license_counts

SHAPES = "synth:shapes?count=20&size=24"


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The same 20 shapes staged twice, as two sources: every sample of the
    second is an exact duplicate of one of the first."""
    config = BuildConfig(sources=(SourceSpec(SHAPES), SourceSpec(SHAPES + "&seed=0")), image=ImageConfig(size_px=16), workers=1)
    return ingest_only(config, tmp_path_factory.mktemp("staging"))


def test_staged_partitions_are_complete_and_hold_images_and_meta(staged) -> None:  # type: ignore[no-untyped-def]
    table, part_dirs = staged
    assert table.num_rows == 40 and len(part_dirs) >= 2
    for part_dir in part_dirs:
        assert is_complete(Path(part_dir))
        images = open_images(Path(part_dir))
        assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
        assert len(images) == read_meta(Path(part_dir)).num_rows
    assert set(table.column("source_index").tolist()) == {0, 1}


def test_exact_duplicates_keep_the_first_source(staged) -> None:  # type: ignore[no-untyped-def]
    table, _ = staged
    keep, rejections = find_exact_duplicates(table)
    assert keep.sum() == 20 and len(rejections) == 20
    assert all(r.reason == "duplicate" and r.source.endswith("&seed=0") for r in rejections)
    assert (table.column("source_index")[keep] == 0).all()


def test_channel_stats_are_the_pixel_mean_and_std(staged) -> None:  # type: ignore[no-untyped-def]
    table, part_dirs = staged
    rows = np.arange(table.num_rows)
    mean, std = channel_stats(table, rows, 16)
    pixels = np.concatenate([np.asarray(open_images(Path(d)), np.float64) / 255.0 for d in part_dirs])
    assert np.allclose(mean, pixels.mean(axis=(0, 1, 2)), atol=1e-9)
    assert np.allclose(std, pixels.std(axis=(0, 1, 2)), atol=1e-6)


def test_make_plan_dedups_merges_labels_and_shards(staged) -> None:  # type: ignore[no-untyped-def]
    table, _ = staged
    rename = {"circle": "round"}
    config = BuildConfig(sources=(SourceSpec(SHAPES, label_map=rename), SourceSpec(SHAPES + "&seed=0", label_map=rename)),
                         image=ImageConfig(size_px=16))
    plan = make_plan(table, config, [None, None])
    assert len(plan.rows) == 20  # the second source's copies are duplicates
    assert "round" in plan.classes and "circle" not in plan.classes
    assert sorted(np.concatenate([s.entries for s in plan.shards]).tolist()) == list(range(20))


def test_resolve_classes_keeps_declared_order_then_sorts_the_rest() -> None:
    assert resolve_classes(["b", None, "z", "a"], [["z", "y"], None]) == ["z", "y", "a", "b"]


def test_assign_shards_cuts_each_split_in_output_order() -> None:
    splits = np.array(["train"] * 5 + ["val"] * 3, dtype=object)
    shards = assign_shards(splits, 2)
    assert [(s.split, s.entries.tolist()) for s in shards] == [
        ("train", [0, 1]), ("train", [2, 3]), ("train", [4]), ("val", [5, 6]), ("val", [7])]


def test_assign_shards_spreads_a_split_evenly_over_the_fewest_shards() -> None:
    # 6,000 samples at --shard-size 4096: two shards of 3,000, not 4,096 + 1,904
    # (the write stage's parallel workers then finish together).
    shards = assign_shards(np.array(["train"] * 6000, dtype=object), 4096)
    assert [len(s.entries) for s in shards] == [3000, 3000]
    sizes = [len(s.entries) for s in assign_shards(np.array(["train"] * 10, dtype=object), 4)]
    assert sizes == [4, 3, 3] and max(sizes) <= 4
    order = np.concatenate([s.entries for s in assign_shards(np.array(["train"] * 10, dtype=object), 4)])
    assert order.tolist() == list(range(10))


def test_map_name_applies_a_source_label_map() -> None:
    spec = SourceSpec("x", label_map={"Cat": "cat"})
    assert map_name(spec, "Cat") == "cat" and map_name(spec, "dog") == "dog" and map_name(spec, None) is None


def test_manifest_reader_and_shards_agree(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    build(BuildConfig(sources=(SourceSpec(SHAPES),), output=str(out), image=ImageConfig(size_px=16), workers=1))
    manifest = read_manifest(out)
    ds = open_dataset(out)
    assert len(ds) == manifest["num_samples"] and ds.classes == manifest["classes"]
    first = manifest["shards"][0]
    tensors = load_file(str(out / first["path"]))
    image, label = ds[0]
    assert np.array_equal(image, tensors["images"][0]) and label == int(tensors["labels"][0])
    assert file_sha256(out / first["path"]) == first["sha256"]


def test_manifest_of_another_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    write_json_atomic(tmp_path / "ds" / "manifest.json", {"format": "gandata", "version": FORMAT_VERSION + 1})
    with pytest.raises(FormatError, match="format version"):
        read_manifest(tmp_path / "ds")
    assert [p.name for p in (tmp_path / "ds").iterdir()] == ["manifest.json"]  # no temporary left behind
    with pytest.raises(FormatError, match="no such dataset"):
        read_manifest(tmp_path / "missing")


@pytest.mark.parametrize("mode", ["minus1-1", "zero-1", "center", "standardize"])
def test_normalization_round_trips_uint8(mode: str) -> None:
    norm = normalization_for(mode, [0.4, 0.5, 0.6], [0.2, 0.0, 0.3], 3)
    pixels = np.random.default_rng(0).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    assert np.array_equal(norm.invert(norm.apply(pixels)), pixels)
    assert Normalization.from_json(json.loads(json.dumps(norm.to_json()))) == norm
    if mode == "minus1-1":
        values = norm.apply(np.array([0, 255], np.uint8).reshape(1, 1, 1, 2).repeat(3, axis=1))
        assert values.min() == -1.0 and values.max() == 1.0


def test_license_counts_overall_and_per_source() -> None:
    provenance = [json.dumps({"license": "cc0"}), json.dumps({}), json.dumps({"license": "cc0"})]
    overall, per_source = license_counts(provenance, np.array([0, 0, 1]), 2)
    assert overall == {"cc0": 2, "unknown": 1}
    assert per_source == [{"cc0": 1, "unknown": 1}, {"cc0": 1}]


def test_url_helpers() -> None:
    assert protocol_of("s3://b/k") == "s3" and protocol_of("/a/b") is None and protocol_of("C:/x") is None
    assert is_remote("gs://b") and not is_remote("file:///tmp/x") and not is_remote("rel/path")
    assert local_path("file:///tmp/x") == "/tmp/x"
    assert join("s3://b/p/", "shards", "a") == "s3://b/p/shards/a"


def test_content_groups_are_exact_when_two_hashes_share_their_first_eight_bytes() -> None:
    """Exact dedup sorts by the first 64 bits of the content hash; a
    collision there (different last 8 bytes, interleaved in row order) must
    not merge or split groups."""
    import pyarrow as pa

    from gandata.plan.table import StagedTable

    head = b"\x01" * 8
    a, b, c = head + b"A" * 8, head + b"B" * 8, b"\x00" * 16
    hashes = [a, b, a, c, b, a]
    table = pa.table({"content_hash": pa.array(hashes, pa.binary(16))})
    groups = StagedTable(table=table, part_dirs=[], source_uris=[]).content_groups()
    assert len(set(groups.tolist())) == 3
    for i in range(len(hashes)):
        for j in range(len(hashes)):
            assert (groups[i] == groups[j]) == (hashes[i] == hashes[j])


def test_staging_from_another_staging_version_is_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Partitions staged by code with other staged columns (an older
    STAGING_VERSION) are keyed apart, so a build never mixes them with new ones
    (a keep rule reading a column older partitions lack)."""
    from gandata.pipeline import stages

    config = BuildConfig(sources=(SourceSpec("synth:shapes?count=20"),), output=str(tmp_path / "out"),
                         image=ImageConfig(size_px=16), executor="serial")
    staging = tmp_path / "staging"
    _, first = ingest_only(config, staging)
    _, again = ingest_only(config, staging)
    assert again == first  # same version: reused
    monkeypatch.setattr(stages, "STAGING_VERSION", stages.STAGING_VERSION - 1)
    _, older = ingest_only(config, staging)
    assert set(older).isdisjoint(first)


def test_rows_are_summed_in_blocks_to_the_last_bit() -> None:
    """channel_stats sums the kept rows block by block: the same float64
    result as gathering them all and summing, in their (shuffled) order."""
    from gandata.plan.table import _SUM_BLOCK, _sum_rows

    rng = np.random.default_rng(5)
    values = rng.uniform(50, 200, (3 * _SUM_BLOCK + 11, 3)) * rng.choice([1.0, 1e-3, 1e6], (3 * _SUM_BLOCK + 11, 1))
    for rows in (rng.permutation(len(values)), rng.integers(0, len(values), 2 * _SUM_BLOCK + 5), np.array([7])):
        assert np.array_equal(_sum_rows(values, rows), values[rows].sum(axis=0))
    # The naive sum in another order differs in its last bits, so the test can tell.
    rows = rng.permutation(len(values))
    assert not np.array_equal(values[np.sort(rows)].sum(axis=0), values[rows].sum(axis=0))


def test_exact_duplicates_match_a_plain_sort_of_every_row() -> None:
    """Only rows of shared content are sorted by (source, key); keepers and
    rejections (their order included) are those of sorting every row."""
    import pyarrow as pa

    from gandata.plan.table import StagedTable

    rng = np.random.default_rng(7)
    n = 3000
    content = rng.integers(0, 900, n)  # about a third of the rows share their content
    keys = [f"k{rng.integers(0, 10**6):06d}" for _ in range(n)]  # unsorted, some repeated
    sources = rng.integers(0, 3, n)
    hashes = np.zeros((n, 16), np.uint8)
    hashes[:, :8] = content.astype(">u8").view(np.uint8).reshape(n, 8)
    table = pa.table({
        "key": pa.array(keys), "locator": pa.array([f"/x/{k}" for k in keys]),
        "source_index": pa.array(sources.astype(np.int32)),
        "content_hash": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(hashes.tobytes())]),
    })
    staged = StagedTable(table=table, part_dirs=[], source_uris=["a", "b", "c"])
    keep, rejections = find_exact_duplicates(staged)
    order = sorted(range(n), key=lambda i: (int(sources[i]), keys[i], i))
    keeper: dict[int, int] = {}
    expected = []
    for i in order:
        if content[i] in keeper:
            expected.append((keys[i], keys[keeper[content[i]]], "abc"[sources[i]]))
        else:
            keeper[content[i]] = i
    assert [(r.key, r.kept_key, r.source) for r in rejections] == expected
    assert keep.sum() == len(keeper) and sorted(np.flatnonzero(keep)) == sorted(keeper.values())
