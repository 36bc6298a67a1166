"""The download cache: OUTPUT/.cache/web, kept across runs so that a re-run
never re-downloads what succeeded and retries only what failed.

One entry per URL (named by the SHA-256 of the URL): ``<h>.json`` with the
outcome and provenance, plus ``<h>.bin`` (the body) for successes. Definitive
answers (404, robots_disallowed, noai, too_large, not_image) are remembered;
retryable failures (network errors, timeouts, 5xx, 429) are recorded under
``failed/`` and fetched again on the next run. Writes are atomic (temporary
name, then rename), so concurrent workers and killed builds leave no torn entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class DownloadCache:
    """A directory of per-URL outcomes; ``None`` root disables caching."""

    def __init__(self, root: str | None) -> None:
        self.root = Path(root) if root else None

    def _paths(self, url: str) -> tuple[Path, Path, Path]:
        assert self.root is not None
        h = url_key(url)
        base = self.root / "objects" / h[:2]
        return base / f"{h}.json", base / f"{h}.bin", self.root / "failed" / f"{h}.json"

    def get(self, url: str) -> tuple[dict[str, Any], bytes | None] | None:
        """The remembered outcome of ``url`` (meta, body) or None to fetch it."""
        if self.root is None:
            return None
        meta_path, body_path, _ = self._paths(url)
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            body = body_path.read_bytes() if meta.get("outcome") == "ok" else None
        except (OSError, ValueError):
            return None
        if meta.get("url") != url:
            return None
        return meta, body

    def put_ok(self, url: str, meta: dict[str, Any], body: bytes) -> None:
        if self.root is None:
            return
        meta_path, body_path, failed_path = self._paths(url)
        _write_atomic(body_path, body)
        _write_atomic(meta_path, json.dumps({**meta, "url": url, "outcome": "ok"}).encode())
        failed_path.unlink(missing_ok=True)

    def put_rejected(self, url: str, reason: str, detail: str, retryable: bool) -> None:
        if self.root is None:
            return
        meta_path, _, failed_path = self._paths(url)
        record = json.dumps({"url": url, "outcome": "rejected", "reason": reason, "detail": detail}).encode()
        if retryable:
            _write_atomic(failed_path, record)
            meta_path.unlink(missing_ok=True)
        else:
            _write_atomic(meta_path, record)
            failed_path.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
