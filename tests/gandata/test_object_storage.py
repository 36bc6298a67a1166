"""Object storage: builds to and from a real S3-compatible server (moto's
server mode on 127.0.0.1), read back through open_dataset."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

fsspec = pytest.importorskip("fsspec")
pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from gandata import open_dataset  # noqa: E402
from gandata.config import BuildConfig, ImageConfig, OutputConfig, SourceSpec  # noqa: E402
from gandata.dataset.verify import verify_dataset  # noqa: E402
from gandata.errors import ConfigError, FormatError  # noqa: E402
from gandata.pipeline import build  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    # The server logs every request; keep failures readable.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket; endpoint and dummy credentials through the environment
    (spawned workers read them too) and fsspec's config (this process)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    options = {"client_kwargs": {"endpoint_url": s3_server}}
    monkeypatch.setenv("FSSPEC_S3", json.dumps(options))
    monkeypatch.setitem(fsspec.config.conf, "s3", options)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    name = f"b{_free_port()}"
    fs.mkdir(name)
    yield name
    fs.rm(name, recursive=True)


def _fs():
    return fsspec.filesystem("s3", skip_instance_cache=True)


def _config(dest: str, source: str = "synth:shapes?count=120", **kw) -> BuildConfig:
    return BuildConfig(
        sources=(SourceSpec(source),), output=dest, image=ImageConfig(size_px=16),
        out=OutputConfig(shard_size=50), **{"workers": 1, **kw},
    )


def _local_shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").iterdir())}


def test_build_to_s3_matches_local_build_and_opens_from_url(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    build(_config(str(local)))
    url = f"s3://{bucket}/datasets/shapes"
    summary = build(_config(url))
    assert summary.output == url and summary.num_samples == 120
    fs = _fs()
    keys = sorted(k.split("/shapes/", 1)[1] for k in fs.find(f"{bucket}/datasets/shapes"))
    assert keys == [".gandata-output", "README.md", "manifest.json", "rejected.jsonl", "samples.parquet",
                    "shards/shard-00000.safetensors", "shards/shard-00001.safetensors", "shards/shard-00002.safetensors"]
    remote_shards = {k.rsplit("/", 1)[1]: fs.cat_file(f"{bucket}/datasets/shapes/{k}") for k in keys if k.startswith("shards/")}
    assert remote_shards == _local_shards(local)
    assert fs.cat_file(f"{bucket}/datasets/shapes/samples.parquet") == (local / "samples.parquet").read_bytes()
    manifest = json.loads(fs.cat_file(f"{bucket}/datasets/shapes/manifest.json"))
    assert manifest["config"]["output"] == url
    # The dataset card is the local build's, byte for byte.
    assert fs.cat_file(f"{bucket}/datasets/shapes/README.md") == (local / "README.md").read_bytes()

    remote_ds, local_ds = open_dataset(url), open_dataset(local)
    assert len(remote_ds) == 120
    a, b = remote_ds.load_all(), local_ds.load_all()
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    image, label = remote_ds[57]
    assert image.shape == (3, 16, 16) and label == int(b.labels[57])

    assert verify_dataset(url).ok
    shard = f"{bucket}/datasets/shapes/shards/shard-00001.safetensors"
    good = fs.cat_file(shard)
    fs.pipe_file(shard, good[:-1] + bytes([good[-1] ^ 1]))
    report = verify_dataset(url)
    assert not report.ok and report.problems[0].startswith(f"{url}/shards/shard-00001.safetensors: sha256")
    fs.pipe_file(shard, good)

    # Same config again: nothing to do; another config needs --overwrite.
    assert build(_config(url)).up_to_date
    with pytest.raises(ConfigError, match="--overwrite"):
        build(_config(url, seed=1))


class _Interrupt(Exception):
    pass


def test_build_interrupted_before_the_manifest_leaves_no_manifest(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/ds"
    build(_config(url))  # an older dataset is in place
    fs = _fs()
    assert fs.exists(f"{bucket}/ds/manifest.json")

    def stop_mid_upload(phase: str, done: int, total: int) -> None:
        if phase == "upload" and done == 2:
            raise _Interrupt

    staging = tmp_path / "staging"
    new = _config(url, source="synth:shapes?count=150", overwrite=True, staging_dir=str(staging))
    with pytest.raises(_Interrupt):
        build(new, progress=stop_mid_upload)
    # Two new shards were uploaded, the old manifest is gone and no new one
    # was written: no manifest points at a mix of old and new shards.
    assert fs.exists(f"{bucket}/ds/shards/shard-00000.safetensors")
    assert not fs.exists(f"{bucket}/ds/manifest.json")
    assert not [k for k in fs.find(f"{bucket}/ds") if "/.tmp-" in k]
    with pytest.raises(FormatError, match="manifest.json: missing"):
        open_dataset(url)

    # The re-run reuses the local staging folder and completes the upload.
    summary = build(new)
    assert summary.num_samples == 150
    assert any(staging.iterdir())  # the local build was kept for this resume
    assert len(open_dataset(url)) == 150
    fs.invalidate_cache()
    assert json.loads(fs.cat_file(f"{bucket}/ds/manifest.json"))["num_samples"] == 150


def _image_tree(root: Path) -> None:
    """3 classes x 4 small distinct PNGs, a hidden file, a hidden folder and
    a text file: what a real photo bucket tends to hold."""
    from PIL import Image

    rng = np.random.default_rng(7)
    for cls in ("cat", "dog", "owl"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    (root / "cat" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "a.png").write_bytes(b"x")
    (root / "README.txt").write_text("not an image")


def test_folder_and_zip_sources_on_s3_match_local_sources(bucket: str, tmp_path: Path) -> None:
    import zipfile

    tree = tmp_path / "photos"
    _image_tree(tree)
    fs = _fs()
    fs.put(str(tree) + "/", f"{bucket}/photos", recursive=True)
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(tree.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(tree).as_posix())
    fs.put_file(str(archive), f"{bucket}/in/photos.zip")

    local = tmp_path / "local"
    build(_config(str(local), source=str(tree)))
    # Two spawned workers: they fetch the objects themselves.
    remote = tmp_path / "remote"
    summary = build(_config(str(remote), source=f"s3://{bucket}/photos/", workers=2))
    assert summary.num_samples == 12 and summary.classes == ["cat", "dog", "owl"]
    assert summary.rejections == {"hidden": 2, "unsupported": 1}
    assert _local_shards(remote) == _local_shards(local)
    rejected = [json.loads(line) for line in (remote / "rejected.jsonl").read_text().splitlines()]
    assert {r["source"] for r in rejected} == {
        f"s3://{bucket}/photos/.thumbs", f"s3://{bucket}/photos/cat/.DS_Store", f"s3://{bucket}/photos/README.txt",
    }

    # The zip on S3, built straight to S3: same pixels again.
    zipped = f"s3://{bucket}/out/zipped"
    summary = build(_config(zipped, source=f"s3://{bucket}/in/photos.zip"))
    assert summary.num_samples == 12
    assert np.array_equal(open_dataset(zipped).load_all().images, open_dataset(local).load_all().images)


def test_file_urls_are_local_paths(shapes_dataset: Path) -> None:
    url = f"file://{shapes_dataset}"
    assert len(open_dataset(url)) == len(open_dataset(shapes_dataset))
    assert verify_dataset(url).ok
