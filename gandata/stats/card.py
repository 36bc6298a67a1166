"""The dataset card for ``gandata stats --card``."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gandata.dataset.card import read_card
from gandata.dataset.manifest import MANIFEST_FILE
from gandata.errors import GandataError


def dataset_card(targets: Sequence[str]) -> str:
    """The card of the one built dataset in ``targets`` (its README.md, or one
    rendered from its manifest for datasets built before cards existed)."""
    if len(targets) != 1 or not (Path(targets[0]) / MANIFEST_FILE).is_file():
        raise GandataError(f"--card: {' '.join(targets)} is not one built dataset (a folder with manifest.json)")
    return read_card(targets[0])
