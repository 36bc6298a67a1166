"""Seeded random mutation of valid inputs through the CLI (issue 15).

Images in a folder, zip and tar archives, npz files, manifests of a built
dataset and config files are mutated (bytes flipped, cut, inserted, JSON
values replaced) and handed to ``gandata``. Whatever the input, these hold:

- no traceback escapes the CLI: an exception is a one-line ``error:``;
- the exit code is one of those documented (docs/SECURITY.md): 0 success,
  1 the work failed (a build that kept no sample, verify finding a problem),
  2 bad input or usage;
- nothing outside the output folder is written, and a foreign file in the
  output (beside the dataset) is never removed;
- peak memory stays under MEMORY_BUDGET_MB (checked in a subprocess).

The default run tries a few seeds per kind (about a minute on 2 cores);
``-m slow`` tries many more.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gandata.cli import main

# Peak resident memory of a process running fuzzed builds one after another.
MEMORY_BUDGET_MB = 1500
EXIT_CODES = {0, 1, 2}
FAST = list(range(12))
SLOW = [pytest.param(s, marks=pytest.mark.slow) for s in range(12, 150)]
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


def _image_bytes(rng: random.Random, fmt: str) -> bytes:
    size = (rng.randint(8, 48), rng.randint(8, 48))
    pixels = np.random.default_rng(rng.randint(0, 2**31)).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to four random byte-level mutations: flips, cuts, insertions,
    repeated chunks, header fields set to extremes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "cut", "insert", "repeat", "extreme"))
        if not out:
            out += bytes(rng.getrandbits(8) for _ in range(8))
        pos = rng.randrange(len(out))
        if op == "flip":
            out[pos] ^= 1 << rng.randrange(8)
        elif op == "cut":
            del out[pos:pos + rng.randint(1, max(1, len(out) // 3))]
        elif op == "insert":
            out[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        elif op == "repeat":
            chunk = out[pos:pos + rng.randint(1, 256)]
            out[pos:pos] = chunk * rng.randint(2, 50)
        else:
            out[pos:pos + 4] = rng.choice((b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"))
    return bytes(out)


def _snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            dirnames[:] = []
            continue
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.join(dirpath, name)] = (st.st_size, st.st_mtime_ns)
    return out


def _invoke(args: list[str], sandbox: Path, out: Path) -> Any:
    """Run the CLI and check the invariants that hold for every input."""
    before = _snapshot(sandbox, out)
    result = CliRunner().invoke(main, args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert result.exit_code in EXIT_CODES, (args, result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    if result.exit_code:
        assert "error:" in result.output or "FAILED" in result.output, result.output
    assert _snapshot(sandbox, out) == before, f"{args} wrote outside {out}"
    return result


def _build_args(source: str, out: Path, *extra: str) -> list[str]:
    return ["build", source, "-o", str(out), "--size", "16", "--min-size", "4", "--workers", "1",
            "--executor", "serial", "-q", "--overwrite", *extra]


def _with_foreign(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    foreign = out / "notes-of-the-user.txt"
    foreign.write_text("precious")
    return foreign


def fuzz_folder(seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    src = tmp / "in"
    for i in range(rng.randint(2, 6)):
        data = _image_bytes(rng, rng.choice(FORMATS))
        if rng.random() < 0.7:
            data = mutate(rng, data)
        folder = src / rng.choice(("a", "b", "."))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}{rng.choice(('.png', '.jpg', '.gif', '', '.bin', '.tif'))}").write_bytes(data)
    out = tmp / "out"
    foreign = _with_foreign(out)
    _invoke(_build_args(str(src), out, *rng.choice(((), ("--allow-empty",), ("--no-clean",)))), tmp, out)
    assert foreign.read_text() == "precious"


def fuzz_archive(seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    kind = rng.choice(("zip", "tar", "tar.gz"))
    members = {f"{rng.choice(('a', 'b', '../x', '/abs', 'c/d'))}/m{i}.png": _image_bytes(rng, rng.choice(FORMATS))
               for i in range(rng.randint(1, 5))}
    buf = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buf, "w", rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED))) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(fileobj=buf, mode="w:gz" if kind == "tar.gz" else "w") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    if rng.random() < 0.8:
        data = mutate(rng, data)
    path = tmp / f"in.{kind}"
    path.write_bytes(data)
    out = tmp / "out"
    foreign = _with_foreign(out)
    _invoke(_build_args(str(path), out, "--allow-empty"), tmp, out)
    assert foreign.read_text() == "precious"


def fuzz_npz(seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    buf = io.BytesIO()
    n = rng.randint(1, 6)
    np.savez(buf, images=np.zeros((n, 12, 12), np.uint8) + rng.randint(0, 255),
             labels=np.array([rng.randint(-1, 3) for _ in range(n)]))
    path = tmp / "in.npz"
    path.write_bytes(mutate(rng, buf.getvalue()) if rng.random() < 0.8 else buf.getvalue())
    out = tmp / "out"
    _invoke(_build_args(f"npz:{path}", out, "--allow-empty"), tmp, out)


JSON_VALUES = (None, -1, 0, 2**63, 1e308, "x", "../../escape", "/etc/passwd", [], {}, [1, 2], {"a": 1}, True, [3, 64])


def _mutate_json(rng: random.Random, node: Any, depth: int = 0) -> Any:
    if isinstance(node, dict) and node and rng.random() < 0.85:
        key = rng.choice(list(node))
        if rng.random() < 0.2:
            node.pop(key)
        else:
            node[key] = _mutate_json(rng, node[key], depth + 1)
        return node
    if isinstance(node, list) and node and rng.random() < 0.85:
        i = rng.randrange(len(node))
        node[i] = _mutate_json(rng, node[i], depth + 1)
        return node
    return rng.choice(JSON_VALUES)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-built") / "ds"
    result = CliRunner().invoke(main, ["build", "synth:shapes?count=24", "-o", str(out), "--size", "16", "--workers", "1",
                                       "--executor", "serial", "-q", "--shard-size", "8", "--val-fraction", "0.25"])
    assert result.exit_code == 0, result.output
    return out


def fuzz_manifest(seed: int, tmp: Path, built: Path) -> None:
    rng = random.Random(seed)
    ds = tmp / "ds"
    import shutil

    shutil.copytree(built, ds)
    manifest = json.loads((ds / "manifest.json").read_text())
    for _ in range(rng.randint(1, 3)):
        manifest = _mutate_json(rng, manifest)
    text = json.dumps(manifest)
    if rng.random() < 0.2:
        text = mutate(rng, text.encode()).decode("utf-8", "replace")
    (ds / "manifest.json").write_text(text)
    out = tmp / "out"
    out.mkdir()
    for args in (["verify", str(ds)], ["stats", str(ds)], ["preview", str(ds), "-o", str(out / "p.png")],
                 ["export", str(ds), "--to", "folder", str(out / "exp")]):
        _invoke(args, tmp, out)


CONFIG_KEYS = {
    "": ("seed", "workers", "dedup", "sources", "output", "overwrite", "allow_empty"),
    "image": ("size", "channels", "resize", "fill", "max_pixels", "max_upscale", "min_size"),
    "balance": ("mode", "sampling_strategy", "val_fraction", "min_class_count", "augmentations"),
    "clean": ("min_std", "skip", "near_dup_radius", "label_conflicts"),
    "format": ("dtype", "shard_size", "normalize"),
}
TOML_VALUES = ('5', '-1', '0', '1e400', 'nan', 'inf', '"x"', '"../.."', '[1, 2]', '{a = 1}', 'true', '"auto"',
               '100000000', '[]', '"synth:shapes?count=5"', '3.5')


def fuzz_config(seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    lines: list[str] = []
    for section, keys in CONFIG_KEYS.items():
        if rng.random() < 0.5:
            continue
        chosen = rng.sample(keys, rng.randint(1, len(keys)))
        if section:
            lines.append(f"[{section}]" if rng.random() < 0.9 else f"{section} = {rng.choice(TOML_VALUES)}")
        lines += [f"{k} = {rng.choice(TOML_VALUES)}" for k in chosen]
    if rng.random() < 0.3:
        lines += ["[[sources]]", f"uri = {rng.choice(TOML_VALUES)}", f"params = {rng.choice(TOML_VALUES)}"]
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.15:
        text = mutate(rng, text.encode()).decode("utf-8", "replace")
    path = tmp / "c.toml"
    path.write_text(text)
    out = tmp / "out"
    _invoke(["build", "--config", str(path), "-o", str(out), "--dry-run"], tmp, out)


@pytest.mark.parametrize("seed", FAST + SLOW)
def test_fuzzed_folders(tmp_path: Path, seed: int) -> None:
    fuzz_folder(seed, tmp_path)


@pytest.mark.parametrize("seed", FAST + SLOW)
def test_fuzzed_archives(tmp_path: Path, seed: int) -> None:
    fuzz_archive(seed, tmp_path)


@pytest.mark.parametrize("seed", FAST + SLOW)
def test_fuzzed_npz(tmp_path: Path, seed: int) -> None:
    fuzz_npz(seed, tmp_path)


@pytest.mark.parametrize("seed", list(range(30)) + [pytest.param(s, marks=pytest.mark.slow) for s in range(30, 300)])
def test_fuzzed_manifests(tmp_path: Path, seed: int, built: Path) -> None:
    fuzz_manifest(seed, tmp_path, built)


@pytest.mark.parametrize("seed", list(range(60)) + [pytest.param(s, marks=pytest.mark.slow) for s in range(60, 600)])
def test_fuzzed_configs(tmp_path: Path, seed: int) -> None:
    fuzz_config(seed, tmp_path)


def test_peak_memory_of_fuzzed_builds_stays_under_budget(tmp_path: Path) -> None:
    # One fresh process runs fuzzed builds one after another, so its peak
    # resident memory is theirs alone.
    code = (
        "import resource, sys\nfrom pathlib import Path\n"
        "from tests.gandata.test_fuzz import fuzz_archive, fuzz_folder, fuzz_npz\n"
        "root = Path(sys.argv[1])\n"
        "for seed in range(4):\n"
        "    for i, fn in enumerate((fuzz_folder, fuzz_archive, fuzz_npz)):\n"
        "        d = root / f'{seed}-{i}'\n        d.mkdir()\n        fn(seed, d)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak_mb = int(proc.stdout.strip().splitlines()[-1])
    assert peak_mb < MEMORY_BUDGET_MB, f"peak {peak_mb} MB"
