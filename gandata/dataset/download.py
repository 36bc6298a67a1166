"""Copy a dataset on object storage into a local folder (for ``verify``).
"""

from __future__ import annotations

from pathlib import Path

from gandata.errors import FormatError
from gandata.util.paths import is_safe_relative
from gandata.util.remote import filesystem


def download_dataset(url: str, local: Path) -> None:
    """Copy the dataset at ``url`` (manifest, shards, sample index,
    rejections) into the local folder ``local``, for checks that read
    every byte anyway (``gandata verify``)."""
    fs, root = filesystem(url, option="dataset")
    local.mkdir(parents=True, exist_ok=True)
    try:
        for key in fs.find(root):
            rel = key[len(root) + 1:]
            if not rel or rel.startswith(".tmp-"):
                continue
            if not is_safe_relative(rel):
                # An object key may hold "..": it must not become a path
                # outside the local copy.
                raise FormatError(f"{url}: key {rel!r} is not a path inside the dataset")
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(target))
    except OSError as exc:
        raise FormatError(f"{url}: cannot download it: {exc}") from None
