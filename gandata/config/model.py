"""The build configuration as frozen dataclasses, one per stage, validated once and
saved in the manifest (``BuildConfig.to_json``)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from gandata.errors import ConfigError

RESIZE_MODES = ("crop", "pad", "stretch")
NORMALIZATIONS = ("minus1-1", "zero-1", "center", "standardize")
DTYPES = ("uint8", "float16", "float32")
DEFAULT_OUTPUT = "gandata-out"
DEFAULT_SOURCE = "synth:shapes"
EXECUTORS = ("process", "serial", "ray")


def parse_color(value: Any, option: str) -> tuple[int, int, int]:
    """Parse a colour given as 'black', 'white', '#rrggbb', 'r,g,b' or a list."""
    named = {"black": (0, 0, 0), "white": (255, 255, 255), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in named:
            return named[text]
        if text.startswith("#") and len(text) == 7:
            try:
                return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
            except ValueError:
                raise ConfigError(f"{option}: {value!r} is not a colour") from None
        parts = text.split(",")
    else:
        raise ConfigError(f"{option}: {value!r} is not a colour")
    try:
        rgb = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}: {value!r} is not a colour (use black, white, #rrggbb or r,g,b)") from None
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ConfigError(f"{option}: {value!r} is not a colour (three values 0-255)")
    return rgb  # type: ignore[return-value]


# Per-source options of a ``[[sources]]`` table besides uri/labels/params.
SOURCE_OPTIONS = ("label", "max_samples", "weight", "license", "image_column", "label_column", "license_allow", "license_deny")


@dataclass(frozen=True)
class SourceSpec:
    """One source of the build: its URI and the per-source options."""

    uri: str
    # Folder/archive labels from a CSV (path,label) instead of subfolders.
    labels: str | None = None
    # Scheme-specific options (``key=value``), also accepted in the URI query.
    params: Mapping[str, str] = field(default_factory=dict)
    # Multi-source options (docs/SOURCES.md): rename/merge classes, a fixed
    # label for an unlabeled source, a cap, a sampling weight, a licence, and
    # the columns of a HuggingFace dataset.
    label_map: Mapping[str, str] = field(default_factory=dict)
    label: str | None = None
    max_samples: int | None = None
    weight: float = 1.0
    license: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    # This source's licence policy (SPDX ids or names, * wildcards); None
    # means the build's --license-allow / --license-deny.
    license_allow: tuple[str, ...] | None = None
    license_deny: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri}
        if self.labels is not None:
            out["labels"] = self.labels
        if self.params:
            out["params"] = dict(self.params)
        if self.label_map:
            out["label_map"] = dict(self.label_map)
        for name in SOURCE_OPTIONS:
            value = getattr(self, name)
            if value is not None and not (name == "weight" and value == 1.0):
                out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class ImageConfig:
    """How every image is decoded and fitted to the target size."""

    size_px: int = 64
    channels: int = 3
    resize: str = "crop"
    # Pad colour for --resize pad, and background for alpha compositing.
    fill: tuple[int, int, int] = (0, 0, 0)
    background: tuple[int, int, int] = (0, 0, 0)
    # Images whose shorter side is below this are rejected as too_small.
    min_size_px: int = 16
    # Upscaling beyond this factor is rejected as too_small; below it, counted.
    max_upscale: float = 4.0
    # Decompression-bomb limit: images with more pixels are rejected unopened.
    # 40 M keeps a worker's peak decode memory near 0.5 GB: a PNG or TIFF is
    # decoded at full size (up to 4 bytes a pixel, then converted), and a
    # 363 KB PNG of 90 M pixels cost 1.1 GB. JPEGs decode at reduced scale.
    max_pixels: int = 40_000_000
    # Allow JPEG DCT-domain reduced decoding when the target is much smaller.
    draft: bool = True
    # The reduced decode keeps at least this many times the target size; the
    # final Lanczos does the rest. 1 is fastest (decoding at 1/s scale is an
    # s x s area average); 2 is closest to a full decode + Lanczos.
    draft_gap: float = 1.0

    def validate(self) -> None:
        if self.size_px < 4 or self.size_px > 4096:
            raise ConfigError(f"--size: {self.size_px} is out of range (4..4096)")
        if self.channels not in (1, 3):
            raise ConfigError(f"--channels: {self.channels} must be 1 or 3")
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize: {self.resize!r} must be one of {', '.join(RESIZE_MODES)}")
        if self.min_size_px < 1:
            raise ConfigError(f"--min-size: {self.min_size_px} must be at least 1")
        if self.max_upscale < 1.0:
            raise ConfigError(f"--max-upscale: {self.max_upscale} must be at least 1.0")
        if self.max_pixels < 1:
            raise ConfigError(f"--max-pixels: {self.max_pixels} must be positive")
        if not 1.0 <= self.draft_gap <= 8.0:
            raise ConfigError(f"--draft-gap: {self.draft_gap} must be between 1 and 8")


@dataclass(frozen=True)
class OutputConfig:
    """How the planned dataset is stored."""

    normalize: str = "minus1-1"
    dtype: str = "uint8"
    shard_size: int = 4096

    def validate(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"--normalize: {self.normalize!r} must be one of {', '.join(NORMALIZATIONS)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"--dtype: {self.dtype!r} must be one of {', '.join(DTYPES)}")
        if self.shard_size < 1:
            raise ConfigError(f"--shard-size: {self.shard_size} must be at least 1")


BALANCE_MODES = ("none", "undersample", "oversample", "weights", "synthesize")
# gan: source options the synthetic fill sets itself (so --synth-option may not).
SYNTH_RESERVED_OPTIONS = ("count", "counts", "classes", "seed", "filter", "truncation")
SAMPLING_KEYWORDS = ("auto", "all", "minority", "majority", "not minority", "not majority")
AUGMENTATIONS = ("hflip", "affine", "color")
# Sampling-strategy targets may reach this many times the staged dataset
# (summed over classes) before --allow-huge-oversample is needed.
MAX_OVERSAMPLE_FACTOR = 100


def parse_sampling_strategy(value: Any, option: str = "--sampling-strategy") -> Any:
    """imbalanced-learn's ``sampling_strategy`` vocabulary: a keyword, one
    target count for every class, or a {class: count} table (JSON on the CLI)."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower().replace("_", " ") in SAMPLING_KEYWORDS:
            return text.lower().replace("_", " ")
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{option}: {value!r} is not valid JSON: {exc}") from None
        else:
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(
                    f"{option}: {value!r} must be one of {', '.join(SAMPLING_KEYWORDS)}, a count, or JSON {{\"class\": count}}"
                ) from None
    if isinstance(value, bool):
        raise ConfigError(f"{option}: {value!r} has the wrong type")
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"{option}: {value} must be a positive count")
        return value
    if isinstance(value, Mapping):
        out = {}
        for name, count in value.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigError(f"{option}: count for class {name!r} must be a non-negative integer, not {count!r}")
            out[str(name)] = count
        return dict(sorted(out.items()))
    raise ConfigError(f"{option}: {value!r} must be a keyword, a count or a {{class: count}} table")


@dataclass(frozen=True)
class BalanceConfig:
    """Class balancing and the validation split (see docs/BALANCE.md)."""

    # none | undersample | oversample | weights
    mode: str = "none"
    # imbalanced-learn vocabulary: keyword, one count, or {class: count}.
    sampling_strategy: Any = "auto"
    # Augment oversampled copies (off for digits, text: flips change meaning).
    augment: bool = True
    augmentations: tuple[str, ...] = AUGMENTATIONS
    # Balancing refuses classes with fewer originals than this ...
    min_class_count: int = 1
    # ... unless they are dropped (rejected as small_class).
    drop_small_classes: bool = False
    # Undersampling keeps one member per duplicate cluster before any second.
    undersample_by_cluster: bool = True
    # Stratified validation split; 0 = none.
    val_fraction: float = 0.0
    # --balance synthesize: the gantrain run whose conditional generator fills
    # the classes, the classifier-filter threshold (None = no filter), the
    # truncation of its noise, further gan: source options, and the largest
    # share of a class's training samples that may be synthetic.
    synth_from: str | None = None
    synth_filter: float | None = None
    synth_truncation: float | None = None
    synth_options: Mapping[str, str] = field(default_factory=dict)
    max_synthetic_share: float = 0.5
    # Targets above MAX_OVERSAMPLE_FACTOR times the dataset are refused
    # unless this is set: a typo like 100000000 would otherwise exhaust memory.
    allow_huge_oversample: bool = False

    def validate(self) -> None:
        if self.mode not in BALANCE_MODES:
            raise ConfigError(f"--balance: {self.mode!r} must be one of {', '.join(BALANCE_MODES)}")
        if self.mode == "synthesize" and not self.synth_from:
            raise ConfigError("--synth-from: --balance synthesize needs the run directory of a conditional gantrain generator")
        if self.mode != "synthesize" and self.synth_from:
            raise ConfigError(f"--synth-from: only used with --balance synthesize (not {self.mode!r})")
        if self.synth_filter is not None and not 0.0 <= self.synth_filter <= 1.0:
            raise ConfigError(f"--synth-filter: {self.synth_filter} must be a confidence in [0, 1]")
        if self.synth_truncation is not None and not self.synth_truncation > 0:
            raise ConfigError(f"--synth-truncation: {self.synth_truncation} must be positive")
        if not 0.0 < self.max_synthetic_share <= 1.0:
            raise ConfigError(f"--max-synthetic-share: {self.max_synthetic_share} must be in (0, 1]")
        reserved = sorted(set(self.synth_options) & set(SYNTH_RESERVED_OPTIONS))
        if reserved:
            raise ConfigError(
                f"--synth-option: {', '.join(reserved)} are set by the synthetic fill itself "
                "(targets: --sampling-strategy; seed: --seed; filter: --synth-filter; truncation: --synth-truncation)"
            )
        parse_sampling_strategy(self.sampling_strategy)
        for name in self.augmentations:
            if name not in AUGMENTATIONS:
                raise ConfigError(f"balance.augmentations: {name!r} must be one of {', '.join(AUGMENTATIONS)}")
        if self.min_class_count < 1:
            raise ConfigError(f"--min-class-count: {self.min_class_count} must be at least 1")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"--val-fraction: {self.val_fraction} must be in [0, 1)")


QUALITY_CHECKS = ("bad_aspect", "low_information", "too_dark", "too_light", "blurry", "grayscale")
LABEL_CONFLICT_MODES = ("drop", "majority")


@dataclass(frozen=True)
class CleanConfig:
    """Cleaning checks applied by the plan step (docs/CLEANING.md).

    Scores are computed at ingest whatever these values are, so changing a
    threshold reuses the staged partitions. Defaults are conservative: they
    remove (almost) nothing from ordinary photographs or digits.
    """

    enabled: bool = True
    # bad_aspect: min(w/h, h/w) of the original below this.
    min_aspect: float = 0.25
    # low_information: luma standard deviation (0-255) below this.
    min_std: float = 3.0
    # too_dark: 99th luma percentile below this; too_light: 1st above this.
    dark_p99: float = 12.0
    light_p01: float = 245.0
    # blurry: fine/coarse Laplacian energy ratio below this (sharp ~1.5+).
    min_blur_ratio: float = 1.1
    # grayscale (RGB builds): mean max-min channel spread below this.
    gray_color: float = 2.0
    drop_grayscale: bool = False
    # Checks switched off by name (any of QUALITY_CHECKS).
    skip: tuple[str, ...] = ()
    near_dups: bool = True
    # Hamming radius of the 64-bit pHash search, and the thumbnail
    # correlation a candidate pair needs to count as a near duplicate.
    near_dup_radius: int = 4
    near_dup_similarity: float = 0.99
    label_conflicts: str = "drop"
    # A check removing more than this share of a class stops the build.
    max_removed_share: float = 0.5

    def validate(self) -> None:
        if not 0.0 <= self.min_aspect <= 1.0:
            raise ConfigError(f"--min-aspect/clean.min_aspect: {self.min_aspect} must be within 0..1")
        if not 0 <= self.near_dup_radius <= 16:
            raise ConfigError(f"--near-dup-radius/clean.near_dup_radius: {self.near_dup_radius} must be within 0..16")
        if not -1.0 <= self.near_dup_similarity <= 1.0:
            raise ConfigError(f"--near-dup-similarity/clean.near_dup_similarity: {self.near_dup_similarity} must be within -1..1")
        if self.label_conflicts not in LABEL_CONFLICT_MODES:
            raise ConfigError(f"--label-conflicts/clean.label_conflicts: {self.label_conflicts!r} must be one of {', '.join(LABEL_CONFLICT_MODES)}")
        if not 0.0 < self.max_removed_share <= 1.0:
            raise ConfigError(f"--max-removed-share/clean.max_removed_share: {self.max_removed_share} must be within (0, 1]")
        unknown = [c for c in self.skip if c not in QUALITY_CHECKS]
        if unknown:
            raise ConfigError(f"--skip-check/clean.skip: unknown check {', '.join(map(repr, unknown))} (known: {', '.join(QUALITY_CHECKS)})")


@dataclass(frozen=True)
class LicenseConfig:
    """The licence policy applied by the plan step (gandata/plan/licenses.py).

    Licences are matched as SPDX ids or names, case-insensitively, with
    ``*`` wildcards (``cc-by-nc*``); a source's own ``license_allow`` /
    ``license_deny`` replace these lists for its samples. Samples outside the
    policy are rejected with reason ``license``.
    """

    # When set, only these licences are kept.
    allow: tuple[str, ...] = ()
    # These licences are rejected (deny wins over allow).
    deny: tuple[str, ...] = ()
    # Reject samples whose licence is unknown.
    require: bool = False

    @property
    def active(self) -> bool:
        return bool(self.allow or self.deny or self.require)

    def validate(self) -> None:
        for flag, names in (("--license-allow", self.allow), ("--license-deny", self.deny)):
            for name in names:
                if not name.strip():
                    raise ConfigError(f"{flag}: licence names must not be empty")


@dataclass(frozen=True)
class BuildConfig:
    """The whole resolved configuration of one build."""

    sources: tuple[SourceSpec, ...] = (SourceSpec(DEFAULT_SOURCE),)
    output: str = DEFAULT_OUTPUT
    image: ImageConfig = field(default_factory=ImageConfig)
    out: OutputConfig = field(default_factory=OutputConfig)
    seed: int = 0
    # Remove exact duplicates (same decoded pixels) in the plan step.
    dedup: bool = True
    # 0 means one worker per core.
    workers: int = 0
    executor: str = "process"
    keep_staging: bool = False
    overwrite: bool = False
    allow_private_network: bool = False
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    # --executor ray: the cluster to join (None starts a local Ray).
    ray_address: str | None = None
    # Local build area for an object-store --output (default: a temp dir).
    staging_dir: str | None = None
    # Web sources: fetch again the URLs whose download failed in an earlier build.
    retry_failed: bool = False
    clean: CleanConfig = field(default_factory=CleanConfig)
    licenses: LicenseConfig = field(default_factory=LicenseConfig)
    # A build that keeps no sample is an error unless this is set.
    allow_empty: bool = False
    # GiB the plan's staged metadata may hold in memory before it spills to a
    # memory-mapped file in staging; None: half of the machine's RAM.
    memory_budget_gb: float | None = None

    def validate(self) -> None:
        self.balance.validate()
        self.licenses.validate()
        if not self.sources:
            raise ConfigError("sources: at least one source is needed")
        self.image.validate()
        self.clean.validate()
        self.out.validate()
        if self.workers < 0:
            raise ConfigError(f"--workers: {self.workers} must be 0 (all cores) or more")
        if not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed: {self.seed} must be between 0 and 2**63 - 1")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor: {self.executor!r} must be one of {', '.join(EXECUTORS)}")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError("--ray-address: only meaningful with --executor ray")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise ConfigError(f"--memory-budget: {self.memory_budget_gb} must be a positive number of GiB")

    @property
    def memory_budget_bytes(self) -> int:
        """The plan's memory budget in bytes (default: half of RAM)."""
        if self.memory_budget_gb is not None:
            return int(self.memory_budget_gb * 2**30)
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
            ram = 8 * 2**30
        return ram // 2

    @property
    def resolved_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        """The resolved config as JSON-ready data (saved in the manifest)."""
        data = dataclasses.asdict(self)
        data["sources"] = [s.to_json() for s in self.sources]
        # Permissions that change no byte of the dataset appear only when
        # set, so saved configs and fingerprints of other builds stay as they were.
        if not self.allow_empty:
            data.pop("allow_empty")
        if not self.balance.allow_huge_oversample:
            data["balance"].pop("allow_huge_oversample")
        # A resource limit, not a property of the dataset: a build that
        # spills writes the same bytes, manifest included.
        data.pop("memory_budget_gb")
        if self.balance.mode != "synthesize":
            # The synthetic-fill keys only appear when used, so configs (and
            # build fingerprints) of other builds read as they always did.
            default = BalanceConfig()
            for key in ("synth_from", "synth_filter", "synth_truncation", "synth_options", "max_synthetic_share"):
                if getattr(self.balance, key) == getattr(default, key):
                    data["balance"].pop(key)
        if not self.licenses.active:
            # Likewise the licence policy: builds without one keep the
            # manifest and fingerprint they always had.
            data.pop("licenses")
        return json.loads(json.dumps(data))
