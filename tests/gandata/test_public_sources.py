"""Public dataset formats as sources, multi-source merge, provenance and export,
through the real pipeline on real files and real ``datasets`` objects."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image
from safetensors.numpy import load_file

from gandata import open_dataset
from gandata.cli import main
from gandata.config import (
    BuildConfig,
    ImageConfig,
    SourceSpec,
    build_config_from_mapping,
)
from gandata.dataset.export import export
from gandata.errors import ConfigError, SourceError
from gandata.pipeline import build
from tests.common.public_data import (
    RunsCode,
    image_dataset,
    png_bytes,
    populate_hub_cache,
    random_images,
    write_cifar10_bin,
    write_cifar10_python,
    write_cifar100_bin,
    write_idx,
)

datasets = pytest.importorskip("datasets")
REPO = Path(__file__).resolve().parents[2]


def _build(specs: list[SourceSpec], out: Path, size: int, channels: int = 3, **kw) -> dict:
    build(BuildConfig(sources=tuple(specs), output=str(out), image=ImageConfig(size_px=size, channels=channels, min_size_px=4),
                      workers=1, **kw))
    return json.loads((out / "manifest.json").read_text())


def _by_origin(out: Path) -> dict[tuple[str, str], tuple[np.ndarray, str | None, dict]]:
    """(source, origin) -> (HWC/HW pixels, class name, samples.parquet row)."""
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    images = open_dataset(out).load_all().images
    result = {}
    for image, row in zip(images, rows):
        hwc = image.transpose(1, 2, 0)
        result[(row["source"], row["origin"])] = (hwc[:, :, 0] if hwc.shape[2] == 1 else hwc, row["class_name"], row)
    return result


# ---------------------------------------------------------------- HuggingFace


def test_hf_disk_pixels_labels_and_a_corrupt_record(tmp_path: Path) -> None:
    arrays = random_images(6, (16, 16, 3), seed=1)
    blobs: list[bytes | None] = [png_bytes(a) for a in arrays]
    blobs[2] = png_bytes(arrays[2])[:40]  # truncated PNG
    blobs[4] = None  # missing image
    ds = image_dataset(blobs, [0, 1, 2, 1, 0, 2], ["cat", "dog", "bird"])
    ds.save_to_disk(str(tmp_path / "disk"))
    uri = f"hf-disk:{tmp_path / 'disk'}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=16)
    assert manifest["classes"] == ["cat", "dog", "bird"]  # ClassLabel order kept
    assert manifest["num_samples"] == 4
    assert manifest["rejections"] == {"corrupt": 2}
    got = _by_origin(tmp_path / "out")
    names = ["cat", "dog", "bird"]
    for row, label in zip([0, 1, 3, 5], [0, 1, 1, 2]):
        pixels, name, rec = got[(uri, str(row))]
        np.testing.assert_array_equal(pixels, arrays[row])
        assert name == names[label] and rec["license"] == "unknown"
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in rejected) == ["2", "4"]


def test_hf_disk_datasetdict_split_and_column_override(tmp_path: Path) -> None:
    arrays = random_images(4, (8, 8), seed=2)
    train = image_dataset([png_bytes(a) for a in arrays], None, None).add_column("kind", ["x", "y", "x", "y"])
    test = image_dataset([png_bytes(arrays[0])], None, None).add_column("kind", ["z"])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "dd"))
    spec = SourceSpec(f"hf-disk:{tmp_path / 'dd'}@train", label_column="kind", license="cc0-1.0")
    manifest = _build([spec], tmp_path / "out", size=8, channels=1)
    assert manifest["classes"] == ["x", "y"] and manifest["class_counts"] == {"x": 2, "y": 2}
    assert manifest["licenses"] == {"cc0-1.0": 4}
    got = _by_origin(tmp_path / "out")
    for i in range(4):
        np.testing.assert_array_equal(got[(spec.uri, str(i))][0], arrays[i])
    with pytest.raises(SourceError, match="no split 'validation'"):
        _build([SourceSpec(f"hf-disk:{tmp_path / 'dd'}@validation")], tmp_path / "out2", size=8)
    with pytest.raises(SourceError, match="--image-column 'nope'"):
        _build([SourceSpec(f"hf-disk:{tmp_path / 'dd'}", image_column="nope")], tmp_path / "out3", size=8)


def _parquet_repo(root: Path, arrays: np.ndarray, labels: list[int], files: int = 1) -> Path:
    """A script-free Hub repository layout: README.md card + data/*.parquet."""
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nlicense: mit\npretty_name: tiny\n---\n# tiny\n")
    per = len(arrays) // files
    for f in range(files):
        part = slice(f * per, (f + 1) * per)
        ds = image_dataset([png_bytes(a) for a in arrays[part]], labels[part], ["a", "b"])
        ds.to_parquet(str(root / "data" / f"train-{f:05d}-of-{files:05d}.parquet"))
    return root


def test_hf_local_repo_layout_reads_card_license_and_streams_by_shard(tmp_path: Path) -> None:
    arrays = random_images(6, (12, 12, 3), seed=3)
    labels = [0, 1, 1, 0, 1, 0]
    repo = _parquet_repo(tmp_path / "repo", arrays, labels, files=2)
    cache = tmp_path / "cache"
    for streaming in ("0", "1"):
        uri = f"hf:{repo}?streaming={streaming}&cache_dir={cache}"
        from gandata.pipeline.inputs import open_sources

        config = BuildConfig(sources=(SourceSpec(uri),), output=str(tmp_path / f"out{streaming}"), image=ImageConfig(size_px=12, min_size_px=4), workers=1)
        (source,) = open_sources(config)
        assert len(source.partitions()) == (2 if streaming == "1" else 1)
        build(config)
        manifest = json.loads((tmp_path / f"out{streaming}" / "manifest.json").read_text())
        assert manifest["classes"] == ["a", "b"] and manifest["licenses"] == {"mit": 6}
        images = open_dataset(tmp_path / f"out{streaming}").load_all()
        got = {a.tobytes() for a in images.images.transpose(0, 2, 3, 1)}
        assert got == {a.tobytes() for a in arrays}


def test_hf_local_imagefolder(tmp_path: Path) -> None:
    arrays = random_images(4, (10, 10, 3), seed=4)
    for i, a in enumerate(arrays):
        folder = tmp_path / "imgs" / "train" / ("cat" if i % 2 else "dog")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(folder / f"{i}.png")
    uri = f"hf:{tmp_path / 'imgs'}?cache_dir={tmp_path / 'cache'}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=10)
    assert sorted(manifest["classes"]) == ["cat", "dog"] and manifest["num_samples"] == 4
    images = open_dataset(tmp_path / "out").load_all()
    assert {a.tobytes() for a in images.images.transpose(0, 2, 3, 1)} == {a.tobytes() for a in arrays}


def test_hf_hub_name_offline_from_populated_cache(tmp_path: Path) -> None:
    arrays = random_images(4, (14, 14, 3), seed=5)
    ds = image_dataset([png_bytes(a) for a in arrays], [1, 0, 1, 1], ["real", "fake"])
    ds.to_parquet(str(tmp_path / "faces.parquet"))
    hf_home = tmp_path / "hf"
    populate_hub_cache(hf_home, "someone/tiny-faces", tmp_path / "faces.parquet", ds.features)
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(REPO), "HF_DATASETS_CACHE": str(hf_home / "datasets")}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "gandata.cli", "build", "hf:someone/tiny-faces:default@train", "-o", str(out),
         "--size", "14", "--min-size", "4", "--workers", "1", "-q"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["classes"] == ["real", "fake"] and manifest["class_counts"] == {"real": 1, "fake": 3}
    got = _by_origin(out)
    for i, a in enumerate(arrays):
        np.testing.assert_array_equal(got[("hf:someone/tiny-faces:default@train", str(i))][0], a)


# ------------------------------------------------------------ classic formats


@pytest.mark.parametrize("gz", [False, True])
def test_idx_raw_and_gz_with_labels(tmp_path: Path, gz: bool) -> None:
    images = random_images(7, (28, 28), seed=6)
    labels = np.array([3, 1, 4, 1, 5, 9, 2], np.uint8)
    suffix = ".gz" if gz else ""
    path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    uri = f"idx:{path}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=28, channels=1)
    assert manifest["classes"] == ["1", "2", "3", "4", "5", "9"]
    got = _by_origin(tmp_path / "out")
    for i in range(7):
        pixels, name, _ = got[(uri, f"{path.name}#{i}")]
        np.testing.assert_array_equal(pixels, images[i])
        assert name == str(labels[i])


def test_idx_emnist_is_transposed_and_unlabeled_without_labels_file(tmp_path: Path) -> None:
    images = random_images(3, (28, 28), seed=7)
    path = write_idx(tmp_path / "emnist-letters-train-images-idx3-ubyte", images)
    manifest = _build([SourceSpec(f"idx:{path}")], tmp_path / "out", size=28, channels=1)
    assert manifest["classes"] == [] and manifest["num_unlabeled"] == 3
    got = _by_origin(tmp_path / "out")
    for i in range(3):
        np.testing.assert_array_equal(got[(f"idx:{path}", f"{path.name}#{i}")][0], images[i].T)
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)
    with pytest.raises(SourceError, match="type code 0x0d"):
        _build([SourceSpec(f"idx:{tmp_path / 'bad-images-idx3-ubyte'}")], tmp_path / "out2", size=28)


def test_cifar10_binary_pixels_and_meta_names(tmp_path: Path) -> None:
    images = random_images(5, (32, 32, 3), seed=8)
    labels = np.array([0, 2, 1, 2, 0])
    names = ["airplane", "automobile", "bird"]
    folder = write_cifar10_bin(tmp_path / "cifar-10-batches-bin", images, labels, names)
    uri = f"cifar:{tmp_path}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=32)
    assert manifest["classes"] == names and manifest["class_counts"] == {"airplane": 2, "automobile": 1, "bird": 2}
    got = _by_origin(tmp_path / "out")
    for i in range(5):
        pixels, name, _ = got[(uri, f"data_batch_1.bin#{i}")]
        np.testing.assert_array_equal(pixels, images[i])
        assert name == names[labels[i]]
    assert folder.is_dir()
    test_manifest = _build([SourceSpec(f"cifar:{folder}?split=test")], tmp_path / "out-test", size=32)
    assert test_manifest["num_samples"] == 2


def test_cifar100_binary_fine_and_coarse(tmp_path: Path) -> None:
    images = random_images(4, (32, 32, 3), seed=9)
    folder = write_cifar100_bin(tmp_path / "cifar-100-binary", images, np.array([0, 1, 1, 0]), np.array([2, 0, 1, 2]),
                                ["fish", "flowers"], ["apple", "aquarium_fish", "baby"])
    fine = _build([SourceSpec(f"cifar:{folder}")], tmp_path / "fine", size=32)
    assert fine["classes"] == ["apple", "aquarium_fish", "baby"] and fine["class_counts"] == {"apple": 1, "aquarium_fish": 1, "baby": 2}
    coarse = _build([SourceSpec(f"cifar:{folder}?labels=coarse")], tmp_path / "coarse", size=32)
    assert coarse["class_counts"] == {"fish": 2, "flowers": 2}
    got = _by_origin(tmp_path / "coarse")
    np.testing.assert_array_equal(got[(f"cifar:{folder}?labels=coarse", "train.bin#3")][0], images[3])


def test_cifar_python_read_safely_and_malicious_pickle_refused(tmp_path: Path) -> None:
    images = random_images(3, (32, 32, 3), seed=10)
    folder = write_cifar10_python(tmp_path / "cifar-10-batches-py", images, np.array([1, 0, 1]), ["cat", "dog"])
    uri = f"cifar:{folder}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=32)
    assert manifest["classes"] == ["cat", "dog"] and manifest["class_counts"] == {"cat": 1, "dog": 2}
    np.testing.assert_array_equal(_by_origin(tmp_path / "out")[(uri, "data_batch_1#2")][0], images[2])

    marker = tmp_path / "pwned"
    evil = {b"labels": [0], b"data": RunsCode(marker)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(SourceError, match="refused.*posix.system|refused.*os.system|refused.*nt.system") as info:
        _build([SourceSpec(uri)], tmp_path / "out-evil", size=32)
    assert "binary version" in str(info.value)
    (folder / "batches.meta").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(SourceError, match="refused"):
        _build([SourceSpec(uri)], tmp_path / "out-evil2", size=32)
    assert not marker.exists()


def test_npz_nchw_float_and_npy(tmp_path: Path) -> None:
    images = random_images(5, (3, 8, 8), seed=11)  # NCHW
    as_float = images.astype(np.float32) / 255.0
    np.savez(tmp_path / "arrays.npz", images=as_float, labels=np.array([0, 1, 0, 1, 1]), classes=np.array(["x", "y"]))
    uri = f"npz:{tmp_path / 'arrays.npz'}"
    manifest = _build([SourceSpec(uri)], tmp_path / "out", size=8)
    assert manifest["classes"] == ["x", "y"] and manifest["class_counts"] == {"x": 2, "y": 3}
    got = _by_origin(tmp_path / "out")
    for i in range(5):
        np.testing.assert_array_equal(got[(uri, f"arrays.npz#{i}")][0], images[i].transpose(1, 2, 0))
    gray = random_images(3, (8, 8), seed=12)
    np.save(tmp_path / "gray.npy", gray)
    manifest = _build([SourceSpec(f"npz:{tmp_path / 'gray.npy'}")], tmp_path / "out-npy", size=8, channels=1)
    assert manifest["num_unlabeled"] == 3
    np.savez(tmp_path / "bad.npz", images=np.full((2, 8, 8), 2.5, np.float32))
    with pytest.raises(SourceError, match=r"\[0, 1\]"):
        _build([SourceSpec(f"npz:{tmp_path / 'bad.npz'}")], tmp_path / "out-bad", size=8)


# ------------------------------------------------------------ several sources


def _mixed_inputs(tmp_path: Path) -> tuple[str, str, str, dict]:
    rng_images = random_images(12, (16, 16, 3), seed=13)
    for i, cls in enumerate(["cars", "cars", "boats"]):
        (tmp_path / "photos" / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng_images[i]).save(tmp_path / "photos" / cls / f"p{i}.png")
    ds = image_dataset([png_bytes(a) for a in rng_images[3:7]], [0, 1, 1, 2], ["airplane", "automobile", "ship"])
    ds.save_to_disk(str(tmp_path / "hub"))
    gray = random_images(3, (16, 16), seed=14)
    write_idx(tmp_path / "t-images-idx3-ubyte", gray)
    write_idx(tmp_path / "t-labels-idx1-ubyte", np.array([7, 7, 1], np.uint8))
    return str(tmp_path / "photos"), f"hf-disk:{tmp_path / 'hub'}", f"idx:{tmp_path / 't-images-idx3-ubyte'}", {"images": rng_images, "gray": gray}


def test_mixed_build_unifies_classes_and_attributes_every_sample(tmp_path: Path) -> None:
    folder, hub, idx, data = _mixed_inputs(tmp_path)
    specs = [
        SourceSpec(folder, label_map={"cars": "car", "boats": "ship"}, license="cc-by-4.0"),
        SourceSpec(hub, label_map={"automobile": "car"}),
        SourceSpec(idx, label_map={"7": "seven", "1": "one"}, license="cc-by-sa-3.0"),
    ]
    manifest = _build(specs, tmp_path / "out", size=16)
    assert manifest["classes"] == ["airplane", "car", "ship", "one", "seven"]
    assert manifest["class_counts"] == {"airplane": 1, "car": 4, "ship": 2, "one": 1, "seven": 2}
    assert [s["num_samples"] for s in manifest["sources"]] == [3, 4, 3]
    assert [s["license"] for s in manifest["sources"]] == ["cc-by-4.0", "unknown", "cc-by-sa-3.0"]
    assert manifest["licenses"] == {"cc-by-4.0": 3, "cc-by-sa-3.0": 3, "unknown": 4}
    got = _by_origin(tmp_path / "out")
    np.testing.assert_array_equal(got[(folder, "cars/p0.png")][0], data["images"][0])
    assert got[(folder, "boats/p2.png")][1] == "ship" and got[(folder, "boats/p2.png")][2]["license"] == "cc-by-4.0"
    assert got[(hub, "1")][1] == "car" and got[(hub, "3")][1] == "ship"
    np.testing.assert_array_equal(got[(hub, "3")][0], data["images"][6])
    pixels, name, rec = got[(idx, "t-images-idx3-ubyte#2")]
    assert name == "one" and rec["license"] == "cc-by-sa-3.0"
    np.testing.assert_array_equal(pixels, np.stack([data["gray"][2]] * 3, axis=-1))

    result = CliRunner().invoke(main, ["stats", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "per source:" in result.output and "per license:" in result.output
    assert "cc-by-sa-3.0" in result.output and hub in result.output
    data_json = json.loads(CliRunner().invoke(main, ["stats", str(tmp_path / "out"), "--json"]).output)
    assert {r["license"]: r["num_samples"] for r in data_json["licenses"]} == manifest["licenses"]


def test_class_conflict_and_bad_label_map_are_reported(tmp_path: Path) -> None:
    folder, hub, _, _ = _mixed_inputs(tmp_path)
    with pytest.raises(ConfigError, match="conflict.*'Car'.*'car'|conflict.*'car'.*'Car'"):
        _build([SourceSpec(folder, label_map={"cars": "Car"}), SourceSpec(hub, label_map={"automobile": "car"})], tmp_path / "o1", size=16)
    with pytest.raises(ConfigError, match="label_map: 'automobil' is not a class"):
        _build([SourceSpec(hub, label_map={"automobil": "car"})], tmp_path / "o2", size=16)


def test_fixed_label_cap_and_weight(tmp_path: Path) -> None:
    images = random_images(10, (8, 8), seed=15)
    np.save(tmp_path / "a.npy", images)
    folder, _, _, _ = _mixed_inputs(tmp_path)
    specs = [SourceSpec(f"npz:{tmp_path / 'a.npy'}", label="noise", max_samples=4, weight=2.5), SourceSpec(folder)]
    manifest = _build(specs, tmp_path / "out", size=8)
    assert manifest["class_counts"] == {"noise": 4, "boats": 1, "cars": 2}
    assert manifest["rejections"]["capped"] == 6
    rows = pq.read_table(tmp_path / "out" / "samples.parquet").to_pylist()
    weights = np.concatenate([load_file(str(tmp_path / "out" / s["path"]))["weights"] for s in manifest["shards"]])
    assert [float(w) for w in weights] == [2.5 if r["source"].startswith("npz:") else 1.0 for r in rows]
    again = _build(specs, tmp_path / "out2", size=8)
    assert again["shards"][0]["sha256"] == manifest["shards"][0]["sha256"]  # the cap is seeded


def test_config_file_sources_tables(tmp_path: Path) -> None:
    config = build_config_from_mapping({"sources": [
        {"uri": "hf:cifar10", "label_map": {"automobile": "car"}, "max_samples": 100, "weight": 0.5, "license": "mit",
         "image_column": "img", "label_column": "label", "streaming": "1"},
        {"uri": "./cars", "label": "car"},
    ]})
    first, second = config.sources
    assert first.label_map == {"automobile": "car"} and first.max_samples == 100 and first.weight == 0.5
    assert first.image_column == "img" and first.params == {"streaming": "1"} and second.label == "car"
    with pytest.raises(ConfigError, match=r"sources\[0\].max_samples"):
        build_config_from_mapping({"sources": [{"uri": "x", "max_samples": 0}]})
    with pytest.raises(ConfigError, match=r"sources\[0\].label_map"):
        build_config_from_mapping({"sources": [{"uri": "x", "label_map": ["a"]}]})


# -------------------------------------------------------------------- export


def test_export_hf_round_trip_and_folder(tmp_path: Path) -> None:
    images = random_images(6, (3, 16, 16), seed=16)
    np.savez(tmp_path / "src.npz", images=images, labels=np.array([0, 1, 2, 0, 1, 2]), classes=np.array(["r", "g", "b"]))
    first = tmp_path / "first"
    _build([SourceSpec(f"npz:{tmp_path / 'src.npz'}")], first, size=16)
    result = CliRunner().invoke(main, ["export", str(first), "--to", "hf", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert isinstance(loaded.features["image"], datasets.Image)
    assert loaded.features["label"].names == ["r", "g", "b"]
    second = tmp_path / "second"
    _build([SourceSpec(f"hf-disk:{tmp_path / 'hf'}")], second, size=16)
    a, b = open_dataset(first).load_all(), open_dataset(second).load_all()
    names_a, names_b = open_dataset(first).classes, open_dataset(second).classes
    assert names_a == names_b
    assert sorted((img.tobytes(), int(l)) for img, l in zip(a.images, a.labels)) == \
        sorted((img.tobytes(), int(l)) for img, l in zip(b.images, b.labels))

    export(first, "folder", tmp_path / "tree")
    third = tmp_path / "third"
    _build([SourceSpec(str(tmp_path / "tree"))], third, size=16)
    c = open_dataset(third)
    assert sorted(c.classes) == sorted(names_a)
    pairs_c = sorted((img.tobytes(), c.classes[int(l)]) for img, l in zip(c.load_all().images, c.load_all().labels))
    assert pairs_c == sorted((img.tobytes(), names_a[int(l)]) for img, l in zip(a.images, a.labels))
    with pytest.raises(ConfigError, match="not empty"):
        export(first, "folder", tmp_path / "tree")


def test_cli_build_with_column_and_license_flags(tmp_path: Path) -> None:
    arrays = random_images(3, (8, 8, 3), seed=17)
    ds = image_dataset([png_bytes(a) for a in arrays], None, None).add_column("kind", ["u", "v", "u"])
    ds = ds.rename_column("image", "picture")
    ds.save_to_disk(str(tmp_path / "disk"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "build", f"hf-disk:{tmp_path / 'disk'}", "-o", str(out), "--size", "8", "--min-size", "4", "--workers", "1",
        "--image-column", "picture", "--label-column", "kind", "--license", "cc0-1.0", "-q",
    ])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["class_counts"] == {"u": 2, "v": 1} and manifest["licenses"] == {"cc0-1.0": 3}
    assert manifest["config"]["sources"][0]["license"] == "cc0-1.0"
    result = CliRunner().invoke(main, ["build", f"hf-disk:{tmp_path / 'disk'}", "-o", str(tmp_path / "o2"), "--image-column", "nope"])
    assert result.exit_code != 0 and "--image-column 'nope'" in result.output


def test_bad_array_sources_fail_before_work_with_the_file_named(tmp_path: Path) -> None:
    np.savez(tmp_path / "objects.npz", images=np.array([object(), object()], dtype=object))
    with pytest.raises(SourceError, match="objects.npz"):
        _build([SourceSpec(f"npz:{tmp_path / 'objects.npz'}")], tmp_path / "o1", size=8)
    images = write_idx(tmp_path / "x-images-idx3-ubyte", random_images(3, (8, 8), seed=18))
    write_idx(tmp_path / "x-labels-idx1-ubyte", np.array([1, 2], np.uint8))
    with pytest.raises(SourceError, match="holds \\(2,\\) labels for 3 images"):
        _build([SourceSpec(f"idx:{images}")], tmp_path / "o2", size=8)
    with pytest.raises(SourceError, match="unknown option"):
        _build([SourceSpec(f"cifar:{tmp_path}?color=1")], tmp_path / "o3", size=8)
    with pytest.raises(SourceError, match="no CIFAR batches"):
        _build([SourceSpec(f"cifar:{tmp_path}")], tmp_path / "o4", size=8)
