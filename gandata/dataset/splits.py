"""Split names: the ones a dataset holds, and the folder names that mean them;
and the file naming a folder tree's class order.

A built dataset's splits are ``train``, ``val`` (``--val-fraction``, or a
source's validation split) and ``test`` (a source's test split). The folder
export writes one tree per split under these names, and the folder source
reads such a tree back with its splits (docs/SOURCES.md, "Splits"); both sides
use this one table so the round trip cannot drift.
"""

from __future__ import annotations

# The order splits are written in (shards, exports); other names sort after.
SPLIT_ORDER = ("train", "val", "test")

# Folder name (lower case) -> split. ``validation`` is the HuggingFace name of val.
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def split_of_folder(name: str) -> str | None:
    """The split a folder name means (case-insensitive), or None."""
    return SPLIT_FOLDERS.get(name.lower())


def ordered_splits(names: set[str] | list[str]) -> list[str]:
    """Split names in SPLIT_ORDER, then any others sorted."""
    present = set(names)
    known = [s for s in SPLIT_ORDER if s in present]
    return known + sorted(present - set(known))


# A file at the root of a folder tree listing its class names, one per line, in
# label-id order: the folder export writes it and the folder source reads it,
# so a round trip keeps the label ids (without it, classes sort by name).
CLASSES_FILE = "classes.txt"
# Largest classes file read (a few thousand class names fit many times over).
MAX_CLASSES_FILE_BYTES = 1 << 20


def is_folder_name(name: str) -> bool:
    """Whether a class name can be one folder's name in a tree (the folder
    export, ``classes.txt``): not empty, not hidden, no path separator and no
    control character (a NUL cannot even be passed to the OS)."""
    return (bool(name) and not name.startswith(".") and "/" not in name and "\\" not in name
            and not any(ord(c) < 32 or ord(c) == 127 for c in name))
