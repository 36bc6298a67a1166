"""Path checks for names that come from data (manifests, labels, archives)
and become paths: a name must stay one component, a relative path must stay
inside its root, and a file read on a dataset's behalf must be a regular file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath


def is_safe_component(name: object) -> bool:
    """True when ``name`` is usable as one path component: a non-empty
    string without separators, NUL, or the special names ``.`` and ``..``."""
    return (
        isinstance(name, str) and name not in ("", ".", "..")
        and not any(ch in name for ch in ("/", "\\", "\0"))
    )


def is_safe_relative(path: object) -> bool:
    """True when ``path`` is a relative POSIX path that cannot leave its
    root: no leading ``/``, no drive or backslash, no ``..`` or ``.``
    component, no empty component, no NUL."""
    if not isinstance(path, str) or not path or "\\" in path or "\0" in path or ":" in path.split("/")[0]:
        return False
    parts = path.split("/")
    return all(is_safe_component(p) for p in parts) and not PurePosixPath(path).is_absolute()


def regular_file_inside(root: str | os.PathLike[str], rel: str) -> Path | None:
    """``root/rel`` when, after resolving every symlink, it is a regular
    file inside ``root``; None otherwise (so a caller names the problem).
    A FIFO or device is never returned: opening one could hang or never end."""
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, rel))
    if os.path.commonpath([base, target]) != base:
        return None
    try:
        st = os.stat(target)
    except OSError:
        return None
    return Path(target) if stat.S_ISREG(st.st_mode) else None


def printable_name(text: str | None) -> str | None:
    """``text`` unchanged when it is valid Unicode; a file name that was not
    UTF-8 on disk (Python keeps its bytes as lone surrogates) with each such
    byte written ``\\xNN``, so that it can be stored as UTF-8 text and the
    original bytes read back from it."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
