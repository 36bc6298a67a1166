"""Small records passed between pipeline stages.

Stages hand each other these dataclasses rather than tuples or dicts, so every
field has a name and a type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# (phase, done, total): called by the library as work completes; the CLI
# draws progress bars from it. Counts are images for "ingest", "synth ..." and
# "write" (files for "upload"); total is None when not known up front (a
# source that cannot say how many images its partitions hold).
ProgressFn = Callable[[str, int, "int | None"], None]


def no_progress(phase: str, done: int, total: int | None) -> None:
    """A ProgressFn that reports nothing."""

# Every rejection carries one of these codes. New stages add theirs here so the
# set stays documented in one place (docs/FORMAT.md lists them too).
REASONS: dict[str, str] = {
    "corrupt": "the file could not be decoded (truncated, garbage or empty)",
    "decompression_bomb": "the image has more pixels than the decompression-bomb limit",
    "unsupported": "the file is not an image in a supported format",
    "hidden": "a hidden file or folder (name starts with '.')",
    "too_small": "smaller than --min-size, or would need more upscaling than --max-upscale",
    "bad_aspect": "aspect ratio outside the allowed range",
    "low_information": "blank or near-uniform image",
    "too_dark": "image is almost entirely dark",
    "too_light": "image is almost entirely light",
    "blurry": "image is blurry",
    "grayscale": "grayscale image in a colour dataset",
    "duplicate": "exact duplicate (same decoded pixels) of a kept sample",
    "near_duplicate": "near duplicate (perceptual hash within the radius) of a kept sample",
    "label_conflict": "duplicate of a sample with another label",
    "download_failed": "the download failed (HTTP status or network error in the detail)",
    "robots_disallowed": "robots.txt disallows fetching this URL",
    "noai": "the server forbids AI use (X-Robots-Tag or meta robots noai/noimageai)",
    "tdm_reserved": "the TDM Reservation Protocol reserves mining rights (tdm-reservation header or /.well-known/tdmrep.json)",
    "ai_txt": "the site's ai.txt disallows this URL for AI training",
    "too_large": "the file or download exceeded the size limit",
    "not_image": "the server returned something that is not an image",
    "unsafe_path": "an absolute path, '..' or a link leaving the source root (path traversal)",
    "bad_url": "not a valid http(s) URL (other schemes are never fetched)",
    "private_address": "the host resolves to a private, loopback or link-local address (SSRF guard; see --allow-private-network)",
    "undersampled": "dropped by class balancing (undersampling)",
    "small_class": "its class has fewer originals than --min-class-count (--drop-small-classes)",
    "capped": "dropped by a source's max_samples cap",
    "off_class": "a synthetic sample the classifier filter does not see as the class it was generated for",
    "license": "its licence is outside the licence policy (--license-allow, --license-deny, --require-license)",
}


@dataclass
class Sample:
    """One input image as a source yields it, before decoding.

    Exactly one of ``data`` (encoded bytes) and ``array`` (decoded HxWxC or HxW
    uint8 pixels) is set. ``key`` identifies the sample within its source (the
    path relative to the source root, an archive member, a URL, a row index);
    ``locator`` is what a person would open to find it (the full path, URL).
    """

    key: str
    locator: str
    label: str | None = None
    data: bytes | None = None
    array: np.ndarray | None = None
    # Extra provenance columns for samples.parquet (origin, license, url, ...).
    provenance: dict[str, Any] = field(default_factory=dict)
    # The split the source puts the sample in ("train", "val", "test"), or
    # None to let the build's --val-fraction decide (docs/SOURCES.md, "Splits").
    split: str | None = None


@dataclass
class Rejection:
    """An input that will not be in the dataset, and why."""

    key: str
    locator: str
    reason: str
    detail: str
    source: str = ""  # the source URI it came from
    score: float | None = None
    kept_key: str | None = None

    def __post_init__(self) -> None:
        assert self.reason in REASONS, f"unknown rejection reason {self.reason!r}"

    def to_json(self) -> dict[str, Any]:
        """The line written to rejected.jsonl."""
        out: dict[str, Any] = {
            "source": self.locator,
            "reason": self.reason,
            "detail": self.detail,
            "key": self.key,
            "uri": self.source,
        }
        if self.score is not None:
            out["score"] = self.score
        if self.kept_key is not None:
            out["kept_key"] = self.kept_key
        return out
