"""An exclusive lock on a local output folder, so that two builds never
write into one output at the same time.

The lock is an ``fcntl.flock`` on ``OUT/.gandata-lock``, which holds the
owner's pid and host for the message a second build prints. The kernel drops
a flock when its process dies, even by kill -9, so a lock left behind by a
dead build is stale by construction and the next build simply takes it. The
file is removed on release; a build that opened the file just before it was
removed notices (the path no longer names the file it locked) and retries.
Object stores have no such lock (docs/FORMAT.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gandata.errors import BuildError

LOCK_FILE = ".gandata-lock"


def _owner(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {data['pid']} on {data['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of the local output ``out`` (created if
    missing) for the duration of the block; BuildError naming the owner when
    another build holds it."""
    path = out / LOCK_FILE
    # A refused build leaves no empty folder behind where there was none.
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"--output: cannot create {out}: {exc.strerror or exc}") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise BuildError(f"--output: cannot create the lock file {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BuildError(
                f"--output: {out} is being built by {_owner(path)} (lock {path}); wait for that build to finish "
                "or choose another output"
            ) from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # removed by its previous owner between our open and our lock
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        os.close(fd)
        if created:
            try:
                out.rmdir()
            except OSError:
                pass  # not empty: the build wrote its dataset
