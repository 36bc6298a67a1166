"""Publishing a finished build: the data first, the manifest last, locally by renames and
on object storage by uploads. A reader never sees a manifest that points at missing or
foreign shards.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from gandata.dataset.manifest import (
    CARD_FILE,
    MANIFEST_FILE,
    REJECTED_FILE,
    SAMPLES_FILE,
    SHARDS_DIR,
    write_json_atomic,
)
from gandata.errors import BuildError
from gandata.records import ProgressFn
from gandata.util.remote import filesystem


def publish_remote(local_out: Path, url: str, manifest: dict[str, Any], progress: ProgressFn | None = None) -> None:
    """Upload a dataset built in ``local_out`` to ``url``, the manifest last.

    Order: (1) delete the old manifest, so no manifest ever points at shards
    being replaced; (2) delete old shards; (3) upload shards, samples.parquet,
    rejected.jsonl, README.md (the dataset card); (4) upload the manifest to a temporary key and copy it
    to manifest.json (one PUT/copy: readers never see a partial manifest);
    (5) delete the temporary key. Interrupted anywhere before (4), the URL
    holds no manifest, and re-running the build uploads again.
    """
    report = progress or (lambda phase, done, total: None)
    fs, root = filesystem(url)
    try:
        manifest_key = f"{root}/{MANIFEST_FILE}"
        if fs.exists(manifest_key):
            fs.rm_file(manifest_key)
        shards_key = f"{root}/{SHARDS_DIR}"
        if fs.exists(shards_key):
            fs.rm(shards_key, recursive=True)
        files = sorted((local_out / SHARDS_DIR).iterdir()) + [local_out / SAMPLES_FILE, local_out / REJECTED_FILE]
        if (local_out / CARD_FILE).is_file():
            files.append(local_out / CARD_FILE)
        report("upload", 0, len(files) + 1)
        for done, file in enumerate(files, start=1):
            rel = file.relative_to(local_out).as_posix()
            fs.put_file(str(file), f"{root}/{rel}")
            report("upload", done, len(files) + 1)
        tmp_key = f"{root}/.tmp-{MANIFEST_FILE}-{uuid.uuid4().hex}"
        fs.pipe_file(tmp_key, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
        fs.copy(tmp_key, manifest_key)
        fs.rm_file(tmp_key)
        report("upload", len(files) + 1, len(files) + 1)
    except OSError as exc:
        raise BuildError(f"--output: could not publish the dataset to {url}: {exc}") from None


PUBLISHING_MARKER = "publishing"


def _only_listed_shards(shard_dir: Path, manifest: dict[str, Any]) -> None:
    """Remove the temporaries a killed shard write left behind, then check
    that the folder about to be published holds exactly the listed shards.
    The caller holds the output lock, so no live writer owns a temporary."""
    listed = {Path(s["path"]).name for s in manifest["shards"]}
    for entry in shard_dir.iterdir():
        if entry.name.startswith(".tmp-") and entry.is_file():
            entry.unlink()
    present = {p.name for p in shard_dir.iterdir()}
    if present != listed:
        extra, missing = sorted(present - listed), sorted(listed - present)
        raise BuildError(
            f"--output: the shards about to be published in {shard_dir} do not match the manifest "
            f"(unlisted: {', '.join(extra[:3]) or 'none'}; missing: {', '.join(missing[:3]) or 'none'})"
        )


def recover_interrupted_publish(write_dir: Path, out: Path) -> None:
    """A build killed while publishing has moved its shards into place but
    not written the manifest: move them back so the write stage reuses them."""
    if (write_dir / PUBLISHING_MARKER).exists() and not (write_dir / SHARDS_DIR).exists() and (out / SHARDS_DIR).is_dir():
        os.rename(out / SHARDS_DIR, write_dir / SHARDS_DIR)
    (write_dir / PUBLISHING_MARKER).unlink(missing_ok=True)


def publish_local(out: Path, write_dir: Path, manifest: dict[str, Any]) -> None:
    """Move the finished build into place, the manifest last.

    The old manifest goes first, so that at no moment does a manifest point at
    shards of another build."""
    try:
        _only_listed_shards(write_dir / SHARDS_DIR, manifest)
        (write_dir / PUBLISHING_MARKER).touch()
        (out / MANIFEST_FILE).unlink(missing_ok=True)
        old_shards = out / SHARDS_DIR
        if old_shards.exists():
            trash = write_dir.parent / f"trash-{os.getpid()}-{time.time_ns()}"
            os.rename(old_shards, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.rename(write_dir / SHARDS_DIR, old_shards)
        os.replace(write_dir / SAMPLES_FILE, out / SAMPLES_FILE)
        os.replace(write_dir / REJECTED_FILE, out / REJECTED_FILE)
        os.replace(write_dir / CARD_FILE, out / CARD_FILE)
        write_json_atomic(out / MANIFEST_FILE, manifest)
    except OSError as exc:
        raise BuildError(f"--output: could not publish the dataset in {out}: {exc}") from None
