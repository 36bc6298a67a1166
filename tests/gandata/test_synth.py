"""Tests of the synth:shapes source (the default dataset)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Sample
from gandata.sources.base import Partition, SourceContext
from gandata.sources.shapes import (
    GENERATOR_VERSION,
    PARTITION_SIZE,
    SHAPE_CLASSES,
    SynthShapesSource,
    _colours,
    _Draws,
    _luma,
    class_counts,
    open_shapes,
)


def _open(uri: str = "synth:shapes", params: dict[str, str] | None = None, **ctx: object) -> SynthShapesSource:
    return open_shapes(uri, SourceSpec(uri, params=params or {}), SourceContext(**ctx))  # type: ignore[arg-type]


def _read_all(source: SynthShapesSource) -> list[Sample]:
    samples = [s for p in source.partitions() for s in source.read(p)]
    assert all(isinstance(s, Sample) for s in samples)
    return samples  # type: ignore[return-value]


def _images(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    source = SynthShapesSource("synth:shapes", count=count, size=size, seed=seed)
    return np.stack([source.render(i) for i in range(count)]), source.label_ids().astype(np.int64)


# --- the URI and its parameters ----------------------------------------------


def test_defaults_come_from_the_build_context() -> None:
    source = _open(size_px=32, seed=7)
    assert (source.count, source.size, source.seed, source.imbalance) == (5000, 32, 7, 1.0)
    assert source.class_names() == list(SHAPE_CLASSES) == ["circle", "square", "triangle", "star", "cross"]
    assert source.uri == "synth:shapes"


def test_query_parameters_and_spec_params_query_wins() -> None:
    source = _open("synth:shapes?count=40&size=24&seed=3&imbalance=2.5", params={"count": "99", "classes": "star,circle"})
    assert (source.count, source.size, source.seed, source.imbalance) == (40, 24, 3, 2.5)
    assert source.class_names() == ["circle", "star"]  # canonical order, whatever order was written
    # Generic options in spec.params (for the pipeline) are not synth's business.
    assert _open("synth:shapes?count=10", params={"max_samples": "5"}).count == 10
    assert _open("synth://shapes?count=10").count == 10


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("synth:shapes?count=abc", ["count", "abc"]),
        ("synth:shapes?count=0", ["count"]),
        ("synth:shapes?count=3", ["count", "classes"]),
        ("synth:shapes?size=2", ["size"]),
        ("synth:shapes?size=64.5", ["size"]),
        ("synth:shapes?seed=-1", ["seed"]),
        ("synth:shapes?imbalance=0.5", ["imbalance"]),
        ("synth:shapes?imbalance=nan", ["imbalance"]),
        ("synth:shapes?imbalance=many", ["imbalance"]),
        ("synth:shapes?classes=circle,hexagon", ["hexagon", "circle, square, triangle, star, cross"]),
        ("synth:shapes?classes=", ["classes"]),
        ("synth:shapes?classes=star,star", ["classes"]),
        ("synth:shapes?colour=red", ["colour", "count"]),
        ("synth:shapes?count=5&count=6", ["count"]),
        ("synth:shapes?count", ["count"]),
        ("synth:other", ["other", "shapes"]),
        ("synth:", ["shapes"]),
    ],
)
def test_bad_parameters_raise_source_error_naming_them(uri: str, words: list[str]) -> None:
    with pytest.raises(SourceError) as info:
        _open(uri)
    message = str(info.value)
    assert uri in message
    for word in words:
        assert word in message


def test_bad_spec_params_are_reported_too() -> None:
    with pytest.raises(SourceError, match="imbalance"):
        _open("synth:shapes", params={"imbalance": "0"})


# --- counts, labels, partitions ------------------------------------------------


@pytest.mark.parametrize("ratio", [1.0, 2.0, 10.0, 37.5])
def test_imbalance_ratio_and_total(ratio: float) -> None:
    counts = class_counts(5000, 5, ratio)
    assert sum(counts) == 5000
    assert counts == sorted(counts, reverse=True)  # decays from the first class
    assert max(counts) / min(counts) == pytest.approx(ratio, rel=0.01)
    # Geometric: successive ratios are (nearly) equal.
    steps = [a / b for a, b in zip(counts, counts[1:])]
    assert max(steps) - min(steps) < 0.02 * ratio


def test_counts_edge_cases() -> None:
    assert class_counts(5, 5, 1000.0) == [1, 1, 1, 1, 1]
    small = class_counts(12, 5, 1000.0)
    assert sum(small) == 12 and min(small) >= 1
    assert class_counts(7, 1, 5.0) == [7]
    assert class_counts(10, 3, 1.0) == [4, 3, 3]


def test_labels_follow_counts_and_are_interleaved() -> None:
    source = _open("synth:shapes?count=1000&imbalance=4&size=8")
    ids = source.label_ids()
    assert np.bincount(ids, minlength=5).tolist() == source.counts
    # Shuffled, not in blocks: every class shows up early, and runs are short.
    assert set(ids[:100].tolist()) == set(range(5))
    assert (np.diff(ids) != 0).mean() > 0.5
    # Deterministic from (seed, counts); another seed shuffles differently.
    assert np.array_equal(ids, _open("synth:shapes?count=1000&imbalance=4&size=8").label_ids())
    assert not np.array_equal(ids, _open("synth:shapes?count=1000&imbalance=4&size=8&seed=1").label_ids())


def test_partitions_cover_every_index_once() -> None:
    source = _open(f"synth:shapes?count={2 * PARTITION_SIZE + 3}&size=8")
    parts = source.partitions()
    assert [p.index for p in parts] == [0, 1, 2]
    assert [p.items for p in parts] == [(0, 512), (512, 1024), (1024, 1027)]
    assert all(p.description for p in parts)


def test_samples_have_the_documented_fields() -> None:
    source = _open("synth:shapes?count=20&size=16&imbalance=3")
    samples = _read_all(source)
    assert [s.key for s in samples] == [f"shapes/{i:07d}" for i in range(20)]
    assert samples[5].locator == "synth:shapes?count=20&size=16&imbalance=3#5"
    assert samples[5].provenance == {"origin": "5", "license": "CC0-1.0"}
    assert [s.label for s in samples] == [SHAPE_CLASSES[i] for i in source.label_ids()]
    for s in samples:
        assert s.data is None and s.array is not None
        assert s.array.shape == (16, 16, 3) and s.array.dtype == np.uint8


def test_grayscale_builds_still_get_rgb() -> None:
    sample = next(iter(_open("synth:shapes?count=5&size=12", channels=1).read(Partition(0, (0, 1)))))
    assert isinstance(sample, Sample) and sample.array is not None
    assert sample.array.shape == (12, 12, 3)


def test_class_subset_yields_only_those_classes() -> None:
    source = _open("synth:shapes?count=60&size=8&classes=circle,star")
    labels = {s.label for s in _read_all(source)}
    assert labels == {"circle", "star"}
    assert source.counts == [30, 30]


# --- determinism ---------------------------------------------------------------


def test_images_do_not_depend_on_partitioning_or_pickling() -> None:
    source = _open("synth:shapes?count=30&size=16&seed=5")
    whole = {s.key: s for s in source.read(Partition(0, (0, 30)))}
    clone = pickle.loads(pickle.dumps(source))
    pieces = [s for a, b in [(17, 30), (0, 4), (4, 17)] for s in clone.read(Partition(9, (a, b)))]
    assert len(pieces) == 30
    for s in pieces:
        assert s.label == whole[s.key].label
        assert np.array_equal(s.array, whole[s.key].array)
    assert np.array_equal(source.render(12), whole["shapes/0000012"].array)


def test_image_depends_only_on_seed_and_index() -> None:
    # The same index with the same class renders the same pixels whatever the
    # total count; another seed renders something else.
    a = SynthShapesSource("synth:shapes", count=10, size=16, seed=2, classes=("square",))
    b = SynthShapesSource("synth:shapes", count=500, size=16, seed=2, classes=("square",))
    c = SynthShapesSource("synth:shapes", count=10, size=16, seed=3, classes=("square",))
    assert all(np.array_equal(a.render(i), b.render(i)) for i in range(10))
    assert not np.array_equal(a.render(4), c.render(4))


def test_fingerprint_names_every_parameter_and_the_version() -> None:
    source = _open("synth:shapes?count=50&size=16&seed=4&imbalance=2&classes=square,cross")
    fp = source.fingerprint()
    for part in ("count=50", "size=16", "seed=4", "imbalance=2.0", "classes=square,cross", f"v{GENERATOR_VERSION}"):
        assert part in fp
    others = {
        _open(uri).fingerprint()
        for uri in ("synth:shapes?count=51&size=16", "synth:shapes?count=50&size=17", "synth:shapes?count=50&size=16&seed=1",
                    "synth:shapes?count=50&size=16&imbalance=3", "synth:shapes?count=50&size=16&classes=star")
    }
    assert len(others) == 5 and fp not in others
    assert fp == _open("synth:shapes?count=50&size=16&seed=4&imbalance=2&classes=cross,square").fingerprint()


def test_direct_construction_is_validated() -> None:
    with pytest.raises(SourceError, match="classes"):
        SynthShapesSource("synth:shapes", classes=("hexagon",))
    with pytest.raises(SourceError, match="count"):
        SynthShapesSource("synth:shapes", count=2)


# --- image content ---------------------------------------------------------------


def test_images_are_not_trivial() -> None:
    images, _ = _images(60, 32, 0)
    flat = images.reshape(len(images), -1, 3).astype(np.float32)
    # Every image has a shape on a background: plenty of contrast inside it.
    assert flat.std(axis=1).mean(axis=1).min() > 15
    # Backgrounds vary: the corner colours are spread out, and within an
    # image the background is not always flat (gradients, noise, grain).
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]].astype(np.float32)
    assert corners.mean(axis=1).std(axis=0).min() > 25
    assert (np.abs(corners - corners.mean(axis=1, keepdims=True)).max(axis=(1, 2)) > 8).mean() > 0.3
    # Anti-aliased: edges produce many intermediate values, not two colours.
    assert min(len(np.unique(im.reshape(-1, 3), axis=0)) for im in images) > 40


def test_shape_colour_always_contrasts_the_background_in_luma() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        shape, background, _ = _colours(_Draws(rng))
        assert all(abs(_luma(shape) - _luma(c)) >= 0.3 - 1e-6 for c in background)
        assert np.all((shape >= 0) & (shape <= 1)) and all(np.all((c >= 0) & (c <= 1)) for c in background)


def _polar_signature(images: np.ndarray) -> np.ndarray:
    """Rotation-, scale- and translation-free description of the strongest
    edges: a histogram of their distance from the edge centroid (relative to
    the mean distance) plus the strength of 2- to 6-fold angular symmetry."""
    gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
    gy[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    mag = np.hypot(gx, gy)
    n, h, w = mag.shape
    weight = np.where(mag >= np.quantile(mag.reshape(n, -1), 0.8, axis=1)[:, None, None], mag, 0.0)
    weight /= weight.sum(axis=(1, 2), keepdims=True)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = xx - (weight * xx).sum(axis=(1, 2))[:, None, None]
    dy = yy - (weight * yy).sum(axis=(1, 2))[:, None, None]
    r = np.hypot(dx, dy)
    r /= (weight * r).sum(axis=(1, 2))[:, None, None]
    bins = 16
    slot = np.minimum((r / 2.0 * bins).astype(np.int64), bins - 1) + np.arange(n)[:, None, None] * bins
    hist = np.bincount(slot.ravel(), weights=weight.ravel(), minlength=n * bins).reshape(n, bins)
    # (dx + i dy)^k / |.|^(k-1) = r e^{ik theta}: weighted k-fold symmetry.
    z = (dx + 1j * dy) / np.maximum(np.hypot(dx, dy), 1e-6)
    zk = z * z
    harmonics = []
    for _ in range(2, 7):
        harmonics.append(np.abs((weight * r * zk).sum(axis=(1, 2))))
        zk = zk * z
    return np.concatenate([hist, np.stack(harmonics, axis=1)], axis=1)


def test_classes_are_separable_by_a_nearest_centroid() -> None:
    # At 32 px, the smallest size a GAN is trained on: a nearest-centroid
    # classifier on a crude edge-geometry signature (no learning beyond class
    # means) must be far above chance (20%) on images it did not see.
    train, train_y = _images(250, 32, seed=0)
    test, test_y = _images(150, 32, seed=1)
    f_train, f_test = _polar_signature(train), _polar_signature(test)
    centroids = np.stack([f_train[train_y == k].mean(axis=0) for k in range(5)])
    predicted = ((f_test[:, None] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    accuracy = (predicted == test_y).mean()
    assert accuracy > 0.75, accuracy
    # And every class is recognised, not just the easy ones.
    for k in range(5):
        assert (predicted[test_y == k] == k).mean() > 0.5, (SHAPE_CLASSES[k], accuracy)


@pytest.mark.slow
def test_default_dataset_renders_fast_enough() -> None:
    # The default build (5000 images at 64 px) must leave most of its minute
    # for the rest of the pipeline: rendering alone stays well under 10 s.
    import time

    source = _open(size_px=64)
    # CPU time of this process: wall time would measure the machine's load.
    start = time.process_time()
    n = sum(1 for p in source.partitions() for _ in source.read(p))
    elapsed = time.process_time() - start
    assert n == 5000
    assert elapsed < 10.0, f"{elapsed:.1f} s"
