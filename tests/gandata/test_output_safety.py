"""The output folder of a build (issue 15, bugs 1, 2, 3, 11, 12, 13 and the
empty-build rule): nothing foreign is deleted, one build at a time, no stale
temporaries published, I/O errors are one-line errors, a build that keeps no
sample fails unless --allow-empty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main
from gandata.config import (
    BalanceConfig,
    BuildConfig,
    CleanConfig,
    ImageConfig,
    SourceSpec,
)
from gandata.dataset.verify import verify_dataset
from gandata.errors import ConfigError
from gandata.pipeline import build, open_inputs
from gandata.pipeline.lock import LOCK_FILE, output_lock


def _config(src: str, dest: Path, **kw) -> BuildConfig:
    return BuildConfig(sources=(SourceSpec(src),), output=str(dest), image=ImageConfig(size_px=16, min_size_px=4),
                       workers=1, executor="serial", **kw)


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(path)


@pytest.mark.parametrize("name", ["shards/mine.tar", "samples.parquet", "rejected.jsonl", ".staging/notes.txt"])
def test_a_foreign_file_where_a_build_writes_is_never_deleted(tmp_path: Path, name: str) -> None:
    out = tmp_path / "o"
    foreign = out / name
    foreign.parent.mkdir(parents=True)
    foreign.write_text("k")
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="gandata did not write"):
            build(_config("synth:shapes?count=20", out, overwrite=overwrite))
        assert foreign.read_text() == "k"


def test_a_foreign_file_added_to_the_shards_of_a_dataset_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "o"
    build(_config("synth:shapes?count=20", out))
    (out / "shards" / "mine.tar").write_text("k")
    with pytest.raises(ConfigError, match="mine.tar"):
        build(_config("synth:shapes?count=21", out, overwrite=True))
    assert (out / "shards" / "mine.tar").read_text() == "k"


def test_gandata_replaces_what_it_wrote_itself(tmp_path: Path) -> None:
    out = tmp_path / "o"
    build(_config("synth:shapes?count=20", out, keep_staging=True))
    summary = build(_config("synth:shapes?count=21", out, overwrite=True))
    assert summary.num_samples == 21 and verify_dataset(out).ok


def test_an_object_store_output_keeps_foreign_keys(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe_file("/hard15/o/shards/mine.tar", b"k")
    with pytest.raises(ConfigError, match="gandata did not write"):
        build(_config("synth:shapes?count=20", "memory://hard15/o", overwrite=True))  # type: ignore[arg-type]
    assert fs.cat_file("/hard15/o/shards/mine.tar") == b"k"


def test_a_second_build_into_a_locked_output_is_refused_with_the_owner(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with output_lock(out):
        assert str(os.getpid()) in (out / LOCK_FILE).read_text()
        result = CliRunner().invoke(main, ["build", "synth:shapes?count=10", "-o", str(out), "--size", "16", "-q"])
        assert result.exit_code == 1, result.output
        assert f"pid {os.getpid()}" in result.output and "being built" in result.output
    assert not (out / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_build_is_stale_and_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "o"
    # A process that takes the lock and dies by SIGKILL, leaving the file.
    code = ("import os, signal, sys; from pathlib import Path; from gandata.pipeline.lock import output_lock\n"
            f"with output_lock(Path({str(out)!r})):\n    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert proc.returncode == -9 and (out / LOCK_FILE).exists()
    assert build(_config("synth:shapes?count=10", out)).num_samples == 10


def test_stale_shard_temporaries_are_never_published(tmp_path: Path) -> None:
    out = tmp_path / "o"
    config = _config("synth:shapes?count=20", out)
    # What a build killed during writing leaves behind.
    stale = out / ".staging" / f"write-{open_inputs(config).fingerprint}" / "shards" / ".tmp-shard-00000.safetensors-99999"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a shard")
    (out / ".gandata-output").write_text("{}")
    build(config)
    listed = {Path(s["path"]).name for s in json.loads((out / "manifest.json").read_text())["shards"]}
    assert {p.name for p in (out / "shards").iterdir()} == listed


def test_a_build_that_keeps_no_sample_fails_with_the_rejection_summary(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes(b"not a png")
    (src / "b.jpg").write_bytes(b"\xff\xd8 broken")
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "o"), "--size", "16", "--workers", "1"])
    assert result.exit_code == 1, result.output
    assert "no sample kept" in result.output and "corrupt 2" in result.output
    assert not (tmp_path / "o" / "manifest.json").exists()
    result = CliRunner().invoke(main, ["build", str(src), "-o", str(tmp_path / "o"), "--size", "16", "--workers", "1",
                                       "--allow-empty"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["num_samples"] == 0


def test_a_huge_sampling_strategy_is_refused_before_allocating(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(8):
        _png(src / ("a" if i < 5 else "b") / f"{i}.png", i)
    config = _config(str(src), tmp_path / "o", balance=BalanceConfig(mode="oversample", sampling_strategy=100_000_000))
    with pytest.raises(ConfigError, match="--allow-huge-oversample"):
        build(config)
    result = CliRunner().invoke(main, ["build", "--help"])
    assert "--allow-huge-oversample" in result.output and "--allow-empty" in result.output


def test_non_utf8_file_names_are_kept_with_an_escaped_key(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "c").mkdir(parents=True)
    _png(src / "c" / "ok.png", 1)
    raw = os.path.join(os.fsencode(src / "c"), b"caf\xe9.png")
    with open(raw, "wb") as fh:
        Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(fh, format="PNG")
    os.mkdir(os.path.join(os.fsencode(src), b"cl\xe4ss"))
    _png(Path(os.fsdecode(os.path.join(os.fsencode(src), b"cl\xe4ss", b"x.png"))), 2)
    summary = build(_config(str(src), tmp_path / "o", clean=CleanConfig(enabled=False)))
    assert summary.num_samples == 3
    assert "cl\\xe4ss" in summary.classes

    keys = pq.read_table(tmp_path / "o" / "samples.parquet").column("key").to_pylist()
    assert "c/caf\\xe9.png" in keys


def test_output_inside_a_source_folder_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _png(src / "a" / "1.png", 1)
    for out in (src, src / "out"):
        with pytest.raises(ConfigError, match="inside the source folder"):
            build(_config(str(src), out))


def test_io_errors_are_one_line_errors_naming_the_path(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["build", "synth:shapes?count=10", "-o", "/proc/self/x/y", "--size", "16", "-q"])
    assert result.exit_code == 1 and "/proc/self/x/y" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_disk_full_is_a_one_line_error(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes writes past 200 KB fail with EFBIG, like a full disk.
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))\n"
        "from gandata.cli import main\n"
        f"sys.argv = ['gandata', 'build', 'synth:shapes?count=400', '-o', {str(tmp_path / 'o')!r}, '--size', '64',"
        " '--workers', '1', '--executor', 'serial', '-q']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: ") and str(tmp_path / "o") in proc.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_non_utf8_tar_member_names_are_kept(tmp_path: Path) -> None:
    import io as _io
    import tarfile

    buf = _io.BytesIO()
    Image.fromarray(np.full((24, 24, 3), 70, np.uint8)).save(buf, format="PNG")
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        info = tarfile.TarInfo("c/caf\xe9.png")  # stored as the byte 0xE9: not UTF-8
        info.size = len(buf.getvalue())
        tf.addfile(info, _io.BytesIO(buf.getvalue()))
    summary = build(_config(f"tar:{path}", tmp_path / "o", clean=CleanConfig(enabled=False)))
    assert summary.num_samples == 1
    keys = pq.read_table(tmp_path / "o" / "samples.parquet").column("key").to_pylist()
    assert keys == ["c/caf\\xe9.png"]
