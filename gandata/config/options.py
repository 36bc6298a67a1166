"""The option table: every build option declared once.

Each ``Option`` names its config-file key (``image.size``), its CLI flag
(``--size``) if it has one, its type, choices, help text and help group; its
default is read from the dataclass field it fills, so no default is ever
written twice. The config loader (``gandata.config.loader``) checks and
converts file values with it, and the CLI (``gandata.cli.options``) makes its
click options from it. Adding an option touches three places: a row here, the
dataclass field it fills, and the code that uses it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gandata.config.model import (
    AUGMENTATIONS,
    BALANCE_MODES,
    DTYPES,
    EXECUTORS,
    LABEL_CONFLICT_MODES,
    NORMALIZATIONS,
    QUALITY_CHECKS,
    RESIZE_MODES,
    BalanceConfig,
    BuildConfig,
    CleanConfig,
    ImageConfig,
    LicenseConfig,
    OutputConfig,
)

# Config-file sections and the dataclass each fills ("" is the top level).
SECTIONS: dict[str, type] = {
    "": BuildConfig, "image": ImageConfig, "format": OutputConfig, "balance": BalanceConfig, "clean": CleanConfig,
    "licenses": LicenseConfig,
}
# Help groups, in the order `--help` shows them.
GROUPS = ("sources", "image", "cleaning", "balance", "output", "performance", "web")
# The section title `--help` gives each group.
GROUP_TITLES = {
    "sources": "Sources (per-source options apply to every source; docs/SOURCES.md)",
    "image": "Image (decoding and fitting to size)",
    "cleaning": "Cleaning (docs/CLEANING.md)",
    "balance": "Balance and split (docs/BALANCE.md)",
    "output": "Output",
    "performance": "Performance",
    "web": "Web sources (urls:, crawl:; docs/WEB.md)",
}


@dataclass(frozen=True)
class Option:
    """One option: config key, flag, type, choices, help and where it applies.

    ``kind`` says what the flag does: ``value`` takes a value; ``flag`` sets
    True; ``off`` (``--no-x``) sets False; ``multiple`` is repeatable;
    ``pairs`` is a repeatable KEY=VALUE merged into a table. ``type`` is int,
    float, str or bool, or one of ``colour``, ``strategy`` (a sampling
    strategy), ``names`` (a list of names) and ``table`` (a string table).
    Keys under ``sources.`` apply to every source of the build and ``web.``
    to every urls:/crawl: source; they are merged by the CLI, not by the
    loader.
    """

    key: str
    help: str
    flag: str | None = None
    short: str | None = None
    kind: str = "value"
    type: Any = str
    choices: tuple[str, ...] | None = None
    group: str = "output"
    # The dataclass field, when it differs from the key's last part.
    field: str | None = None
    commands: tuple[str, ...] = ("build",)
    # Shown as the default when the field's own default is not telling.
    default_text: str | None = None
    metavar: str | None = None

    @property
    def section(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        """The key's last part: the config-file name of the option."""
        return self.key.rpartition(".")[2]

    @property
    def field_name(self) -> str:
        return self.field or self.name

    @property
    def dest(self) -> str:
        """The click parameter name of the flag."""
        assert self.flag is not None
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def default(self) -> Any:
        """The default of the dataclass field this option fills."""
        cls = SECTIONS.get(self.section)
        if cls is None:
            return None
        for f in dataclasses.fields(cls):
            if f.name == self.field_name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                return f.default_factory()  # type: ignore[misc]
        raise KeyError(self.key)

    def default_help(self) -> str | None:
        """The default as `--help` shows it, or None when there is nothing to show."""
        if self.default_text is not None:
            return self.default_text
        if self.kind in ("flag", "off", "multiple", "pairs"):
            return None
        value = self.default
        if value is None:
            return None
        if self.type == "colour":
            return {(0, 0, 0): "black", (255, 255, 255): "white"}.get(tuple(value), ",".join(map(str, value)))
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


def _o(key: str, help: str, **kw: Any) -> Option:
    return Option(key=key, help=help, **kw)


IMAGE = ("build", "clean", "stats")
CLEAN = ("build", "clean")

OPTIONS: tuple[Option, ...] = (
    # -- sources: applied to every source of the build
    _o("sources.labels", "CSV file (path,label) labelling the files of a folder/archive source (applies to every such source).",
       flag="--labels", group="sources", commands=IMAGE),
    _o("sources.image_column", "HuggingFace sources: the image column (default: the column with an Image feature).",
       flag="--image-column", group="sources"),
    _o("sources.label_column", "HuggingFace sources: the label column (default: the ClassLabel column; none = unlabeled).",
       flag="--label-column", group="sources"),
    _o("sources.license", "Licence recorded for every source's samples (default: the Hub card's, else 'unknown').",
       flag="--license", group="sources"),
    _o("licenses.allow", "Keep only samples under these licences (SPDX ids or names, * wildcards; repeatable); others are "
       "rejected as license. A source's license_allow replaces it.", flag="--license-allow", kind="multiple", type="names",
       group="sources", metavar="LICENSE"),
    _o("licenses.deny", "Reject samples under these licences (e.g. 'cc-by-nc*'; repeatable; wins over --license-allow). "
       "A source's license_deny replaces it.", flag="--license-deny", kind="multiple", type="names", group="sources",
       metavar="LICENSE"),
    _o("licenses.require", "Reject samples whose licence is unknown (reason license).", flag="--require-license", kind="flag",
       type=bool, group="sources"),
    # -- image: decoding and fitting
    _o("image.size", "Output images are SIZE x SIZE pixels.", flag="--size", type=int, field="size_px", group="image", commands=IMAGE),
    _o("image.channels", "1 (grayscale) or 3 (RGB).", flag="--channels", type=int, choices=("1", "3"), group="image", commands=CLEAN),
    _o("image.resize", "Center-crop, letterbox-pad or stretch to square.", flag="--resize", choices=RESIZE_MODES, group="image", commands=CLEAN),
    _o("image.fill", "Pad colour for --resize pad: black, white, #rrggbb or r,g,b.", flag="--fill", type="colour", group="image", commands=CLEAN),
    _o("image.background", "Colour transparent pixels are composited on.", flag="--background", type="colour", group="image", commands=CLEAN),
    _o("image.min_size", "Reject images whose shorter side is below this many pixels (too_small).", flag="--min-size", type=int,
       field="min_size_px", group="image", commands=CLEAN),
    _o("image.max_upscale", "Reject images needing more upscaling than this factor (too_small); smaller upscales are counted.",
       flag="--max-upscale", type=float, group="image", commands=CLEAN),
    _o("image.max_pixels", "Decompression-bomb limit in pixels; larger images are rejected unopened (a worker decodes one image "
       "at up to ~12 bytes a pixel at peak).", flag="--max-pixels", type=int, group="image", commands=CLEAN),
    _o("image.draft", "Allow JPEG DCT-domain reduced decoding when the target is much smaller.", type=bool, group="image"),
    _o("image.draft_gap", "JPEGs are decoded at reduced DCT scale (an area average) down to at least this many times SIZE; "
       "Lanczos does the rest. 1 is fastest; 2 is closer to a full decode + Lanczos on fine patterns, ~1.3x slower "
       "(README: Decoding and resizing).", flag="--draft-gap", type=float, group="image", commands=CLEAN),
    # -- output format
    _o("format.normalize", "Normalization recorded (uint8) or applied (float dtypes).", flag="--normalize", choices=NORMALIZATIONS),
    _o("format.dtype", "Stored dtype; uint8 stores raw pixels.", flag="--dtype", choices=DTYPES),
    _o("format.shard_size", "Most samples per shard; a split is spread evenly over the fewest shards that hold it.", flag="--shard-size", type=int),
    # -- output and run
    _o("output", "Output directory, or an object-store URL (s3://bucket/prefix, gs://..., any fsspec URL).",
       flag="--output", short="-o"),
    _o("seed", "Seed for every random choice (shuffle, synthesis); recorded in the manifest.", flag="--seed", type=int, commands=CLEAN),
    _o("dedup", "Keep exact duplicates.", flag="--no-dedup", kind="off", type=bool, group="cleaning", commands=CLEAN),
    _o("keep_staging", "Keep the staging area (OUTPUT/.staging) after a successful build.", flag="--keep-staging", kind="flag", type=bool),
    _o("overwrite", "Replace an existing dataset in OUTPUT (kept intact until the new one is complete).", flag="--overwrite",
       kind="flag", type=bool),
    _o("allow_empty", "Publish a dataset even when every input was rejected (by default a build that keeps no sample "
       "fails with the rejection summary).", flag="--allow-empty", kind="flag", type=bool),
    _o("workers", "Worker processes, this one included; 0 = one per core.", flag="--workers", type=int, group="performance",
       commands=IMAGE),
    _o("executor", "Where the parallel stages run; ray runs them as Ray tasks (pip install 'gandata[ray]').", flag="--executor",
       choices=EXECUTORS, group="performance", commands=CLEAN),
    _o("ray_address", "With --executor ray: the cluster to join ('auto', 'ray://HOST:10001'); default starts a local Ray.",
       flag="--ray-address", group="performance", commands=CLEAN),
    _o("memory_budget_gb", "GiB of staged metadata the plan step holds in memory; above it the metadata spills to a "
       "memory-mapped file in OUTPUT/.staging (same output, less RAM).", flag="--memory-budget", type=float,
       group="performance", commands=CLEAN, default_text="half of RAM"),
    _o("staging_dir", "With an object-store --output: local folder the build is staged in before upload (kept for resuming).",
       flag="--staging-dir", group="performance", default_text="a temporary folder"),
    # -- cleaning (docs/CLEANING.md)
    _o("clean.enabled", "Switch off every cleaning check (exact dedup stays, see --no-dedup).", flag="--no-clean", kind="off",
       type=bool, group="cleaning", commands=CLEAN),
    _o("clean.near_dup_radius", "Hamming radius of the 64-bit pHash near-duplicate search.", flag="--near-dup-radius", type=int,
       group="cleaning", commands=CLEAN),
    _o("clean.near_dup_similarity", "Thumbnail correlation a hash candidate needs to count as a near duplicate.",
       flag="--near-dup-similarity", type=float, group="cleaning", commands=CLEAN),
    _o("clean.near_dups", "Keep near duplicates (exact duplicates are still removed).", flag="--no-near-dups", kind="off", type=bool,
       group="cleaning", commands=CLEAN),
    _o("clean.min_aspect", "bad_aspect: reject when min(w/h, h/w) is below this.", flag="--min-aspect", type=float, group="cleaning",
       commands=CLEAN),
    _o("clean.min_std", "low_information: reject when the standard deviation (0-255) of luma and of every colour channel is below this.", flag="--min-std",
       type=float, group="cleaning", commands=CLEAN),
    _o("clean.dark_p99", "too_dark: reject when the 99th luma percentile is below this.", flag="--dark-p99", type=float,
       group="cleaning", commands=CLEAN),
    _o("clean.light_p01", "too_light: reject when the 1st luma percentile is above this.", flag="--light-p01", type=float,
       group="cleaning", commands=CLEAN),
    _o("clean.min_blur_ratio", "blurry: reject when the fine/coarse Laplacian energy ratio is below this.", flag="--min-blur-ratio",
       type=float, group="cleaning", commands=CLEAN),
    _o("clean.gray_color", "grayscale: flag RGB images whose mean channel spread is below this.", flag="--gray-color", type=float,
       group="cleaning", commands=CLEAN),
    _o("clean.drop_grayscale", "Drop images flagged grayscale (default: kept and reported).", flag="--drop-grayscale", kind="flag",
       type=bool, group="cleaning", commands=CLEAN),
    _o("clean.skip", "Switch one quality check off (repeatable).", flag="--skip-check", kind="multiple", type="names",
       choices=QUALITY_CHECKS, group="cleaning", commands=CLEAN),
    _o("clean.label_conflicts", "Duplicates across classes: drop all, or keep the strict majority label.", flag="--label-conflicts",
       choices=LABEL_CONFLICT_MODES, group="cleaning", commands=CLEAN),
    _o("clean.max_removed_share", "Stop when one check would remove more than this share of a class.", flag="--max-removed-share",
       type=float, group="cleaning", commands=CLEAN),
    # -- class balance and split (docs/BALANCE.md)
    _o("balance.mode", "Class balancing of the train split: resample (indices only, output shuffled), write per-sample `weights`, "
       "or synthesize: fill classes with samples of a conditional gantrain generator (--synth-from).", flag="--balance",
       choices=BALANCE_MODES, group="balance"),
    _o("balance.sampling_strategy", "imbalanced-learn vocabulary: auto, all, minority, majority, 'not minority', 'not majority', "
       "one count, or JSON {\"cat\": 5000}.", flag="--sampling-strategy", type="strategy", group="balance"),
    _o("balance.augment", "Oversampled copies are exact copies (for digits, text: flips change meaning).", flag="--no-augment",
       kind="off", type=bool, group="balance"),
    _o("balance.augmentations", "Augmentations of oversampled copies.", type="names", choices=AUGMENTATIONS, group="balance"),
    _o("balance.min_class_count", "Balancing refuses classes with fewer originals than this.", flag="--min-class-count", type=int,
       group="balance"),
    _o("balance.drop_small_classes", "Drop classes below --min-class-count (rejected as small_class) instead of failing.",
       flag="--drop-small-classes", kind="flag", type=bool, group="balance"),
    _o("balance.allow_huge_oversample", "Allow --sampling-strategy targets above 100 times the dataset (refused by default: "
       "every target sample is held in memory and written).", flag="--allow-huge-oversample", kind="flag", type=bool,
       group="balance"),
    _o("balance.undersample_by_cluster", "Undersampling keeps one member per duplicate cluster before any second.", type=bool,
       group="balance"),
    _o("balance.val_fraction", "Stratified validation split, duplicates kept on one side (split 'val'); cut only from samples "
       "without a split of their own (a folder's train/ val/ test/ folders keep theirs).", flag="--val-fraction",
       type=float, group="balance"),
    _o("balance.synth_from", "--balance synthesize: the gantrain run (trained with --conditional) whose generator fills each class "
       "up to its --sampling-strategy target; needs gantrain installed.", flag="--synth-from", metavar="RUN_DIR", group="balance"),
    _o("balance.synth_filter", "--balance synthesize: keep only synthetic samples the run's evaluation classifier assigns to their "
       "class with probability >= CONF (others are rejected as off_class).", flag="--synth-filter", type=float, metavar="CONF",
       group="balance", default_text="no filter"),
    _o("balance.synth_truncation", "--balance synthesize: truncation trick, noise values with |z| > T redrawn.",
       flag="--synth-truncation", type=float, metavar="T", group="balance", default_text="none"),
    _o("balance.synth_options", "--balance synthesize: further gan: source option (ema=0, checkpoint=last, classifier_steps=N, "
       "classifier_width=W, cache_dir=DIR, data=PATH, max_rounds=R, batch_size=B). Repeatable.", flag="--synth-option",
       kind="pairs", type="table", metavar="KEY=VALUE", group="balance"),
    _o("balance.max_synthetic_share", "--balance synthesize: refuse to make more than this share of a class's training samples "
       "synthetic.", flag="--max-synthetic-share", type=float, group="balance"),
    # -- web sources (docs/WEB.md): params of every urls:/crawl: source
    _o("allow_private_network", "Web sources: allow private, loopback and link-local addresses (intranets, tests); refused by default "
       "(SSRF guard).", flag="--allow-private-network", kind="flag", type=bool, group="web"),
    _o("retry_failed", "Web sources: fetch again the URLs that failed in an earlier build of OUTPUT (from OUTPUT/.cache/web) and "
       "rebuild the dataset (the rest comes from the cache).", flag="--retry-failed", kind="flag", type=bool, group="web"),
    _o("web.params", "Web source option for every urls:/crawl: source (user_agent, concurrency, host_concurrency, host_rate, "
       "read_timeout_s, retries, max_bytes, noai, include, exclude, label, ...; see docs/WEB.md). Repeatable.", flag="--web",
       kind="pairs", type="table", metavar="KEY=VALUE", group="web"),
    _o("web.max_depth", "crawl: sources: link depth to follow from the start page.", flag="--max-depth", type=int, group="web",
       default_text="no limit"),
    _o("web.max_pages", "crawl: sources: pages to fetch at most.", flag="--max-pages", type=int, group="web", default_text="1000"),
)

BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}


def options_of(section: str) -> dict[str, Option]:
    """The options of one config-file section ("" for the top level), by name."""
    return {o.name: o for o in OPTIONS if o.section == section}
