"""Licence names as the project compares them: SPDX ids or names, normalized, and
the restrictions (non-commercial, no-derivatives, unknown) a dataset card reports.

Sources record licences as they find them ("CC BY-NC 4.0", "cc-by-nc-4.0",
"MIT License", "unknown"), so the policy and the card compare normalized
forms: lower case, runs of spaces, underscores and dashes as one dash, and a
trailing "license" dropped. That is not a full SPDX parser: compound
expressions ("MIT OR Apache-2.0") are compared as written.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable

UNKNOWN = "unknown"
# Names that say nothing about the rights to the data.
UNKNOWN_NAMES = frozenset({"", "unknown", "none", "unspecified", "noassertion", "n/a"})

# Common long names of licences and their SPDX ids (normalized); others are
# compared as written.
_ALIASES = {
    "public-domain": "public-domain",
    "cc0": "cc0-1.0",
    "apache-2": "apache-2.0",
    "apache": "apache-2.0",
    "mit": "mit",
    "bsd": "bsd-3-clause",
    "gpl-3": "gpl-3.0",
    "creative-commons-zero": "cc0-1.0",
}


def normalize_license(name: str | None) -> str:
    """The comparable form of a licence id or name; ``unknown`` for none."""
    text = (name or "").strip().lower()
    text = re.sub(r"[\s_\-]+", "-", text)
    text = re.sub(r"-?licen[cs]e$", "", text).strip("-")
    if text.startswith("creative-commons-"):
        text = "cc-" + text[len("creative-commons-"):]
    # "cc-by-4.0-international" and similar tails say nothing more.
    text = re.sub(r"-(international|generic|unported)$", "", text)
    if text in UNKNOWN_NAMES:
        return UNKNOWN
    return _ALIASES.get(text, text)


def is_unknown(name: str | None) -> bool:
    """True when the licence says nothing (none, unknown, other, ...)."""
    return normalize_license(name) == UNKNOWN


def license_matches(name: str | None, patterns: Iterable[str]) -> str | None:
    """The first of ``patterns`` (ids, names or ``*`` wildcards) that
    ``name`` matches, or None."""
    norm = normalize_license(name)
    for pattern in patterns:
        wanted = pattern.strip().lower()
        if "*" in wanted or "?" in wanted:
            if fnmatch.fnmatchcase(norm, re.sub(r"[\s_]+", "-", wanted)):
                return pattern
        elif normalize_license(wanted) == norm:
            return pattern
    return None


def restrictions(name: str | None) -> list[str]:
    """What a licence forbids or leaves open, as the card states it:
    ``NC`` (non-commercial), ``ND`` (no derivatives), ``unknown``."""
    norm = normalize_license(name)
    if norm == UNKNOWN:
        return ["unknown"]
    parts = set(norm.split("-"))
    out = []
    if "nc" in parts or "noncommercial" in parts or "non-commercial" in norm:
        out.append("NC")
    if "nd" in parts or "noderivatives" in parts or "noderivs" in parts or "no-derivatives" in norm:
        out.append("ND")
    return out
