"""Build configuration: frozen dataclasses, validated once, saved in the manifest.

The CLI and config files (TOML, or YAML when PyYAML is installed) both end up
here: ``load_config_file`` reads a file into a plain mapping, CLI flags are
merged over it, and ``build_config_from_mapping`` validates the result into a
``BuildConfig``. Errors name the option (``--size``/``image.size``) at fault.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gandata.errors import ConfigError

RESIZE_MODES = ("crop", "pad", "stretch")
NORMALIZATIONS = ("minus1-1", "zero-1", "center", "standardize")
DTYPES = ("uint8", "float16", "float32")
DEFAULT_OUTPUT = "gandata-out"
DEFAULT_SOURCE = "synth:shapes"


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
                out[name] = value
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
    max_pixels: int = 90_000_000
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

    def validate(self) -> None:
        self.balance.validate()
        if not self.sources:
            raise ConfigError("sources: at least one source is needed")
        self.image.validate()
        self.clean.validate()
        self.out.validate()
        if self.workers < 0:
            raise ConfigError(f"--workers: {self.workers} must be 0 (all cores) or more")
        if self.executor not in ("serial", "process", "ray"):
            raise ConfigError(f"--executor: {self.executor!r} must be 'serial', 'process' or 'ray'")
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError("--ray-address: only meaningful with --executor ray")

    @property
    def resolved_workers(self) -> int:
        return self.workers or (os.cpu_count() or 1)

    def to_json(self) -> dict[str, Any]:
        """The resolved config as JSON-ready data (saved in the manifest)."""
        data = dataclasses.asdict(self)
        data["sources"] = [s.to_json() for s in self.sources]
        if self.balance.mode != "synthesize":
            # The synthetic-fill keys only appear when used, so configs (and
            # build fingerprints) of other builds read as they always did.
            default = BalanceConfig()
            for key in ("synth_from", "synth_filter", "synth_truncation", "synth_options", "max_synthetic_share"):
                if getattr(self.balance, key) == getattr(default, key):
                    data["balance"].pop(key)
        return json.loads(json.dumps(data))


# Keys of the config file and where they go. Section names mirror the CLI.
_IMAGE_KEYS = {
    "size": "size_px",
    "channels": "channels",
    "resize": "resize",
    "fill": "fill",
    "background": "background",
    "min_size": "min_size_px",
    "max_upscale": "max_upscale",
    "max_pixels": "max_pixels",
    "draft": "draft",
    "draft_gap": "draft_gap",
}
_OUT_KEYS = {"normalize": "normalize", "dtype": "dtype", "shard_size": "shard_size"}
_TOP_KEYS = {
    "output", "seed", "dedup", "workers", "executor", "keep_staging", "overwrite",
    "allow_private_network", "sources", "image", "format", "balance", "ray_address", "staging_dir", "retry_failed", "clean",
}
_BALANCE_KEYS = {
    "mode": "mode", "sampling_strategy": "sampling_strategy", "augment": "augment",
    "augmentations": "augmentations", "min_class_count": "min_class_count",
    "drop_small_classes": "drop_small_classes", "undersample_by_cluster": "undersample_by_cluster",
    "val_fraction": "val_fraction", "synth_from": "synth_from", "synth_filter": "synth_filter",
    "synth_truncation": "synth_truncation", "synth_options": "synth_options", "max_synthetic_share": "max_synthetic_share",
}
_CLEAN_KEYS = {f.name: f.name for f in dataclasses.fields(CleanConfig)}


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (or YAML, when PyYAML is installed) build config file."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {p}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ConfigError(f"--config: {p} is YAML but PyYAML is not installed (pip install pyyaml), or use TOML") from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"--config: {p} is not valid YAML: {exc}") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data = tomllib.loads(text.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--config: {p} is not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {p} must hold a table of options")
    return data


# Per-source options of a ``[[sources]]`` table besides uri/labels/params.
SOURCE_OPTIONS = ("label", "max_samples", "weight", "license", "image_column", "label_column")


def _source_options(value: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The multi-source options of one ``[[sources]]`` table, type-checked."""
    where = f"sources[{index}]"
    out: dict[str, Any] = {}
    raw_map = value.get("label_map")
    if raw_map is not None:
        if not isinstance(raw_map, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw_map.items()):
            raise ConfigError(f"{where}.label_map: must be a table of source class name = unified class name")
        if any(not v.strip() for v in raw_map.values()):
            raise ConfigError(f"{where}.label_map: class names must not be empty")
        out["label_map"] = dict(raw_map)
    for name in ("label", "license", "image_column", "label_column"):
        if value.get(name) is not None:
            if not isinstance(value[name], str) or not value[name].strip():
                raise ConfigError(f"{where}.{name}: {value[name]!r} must be a non-empty string")
            out[name] = value[name]
    if value.get("max_samples") is not None:
        cap = value["max_samples"]
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise ConfigError(f"{where}.max_samples: {cap!r} must be a positive integer")
        out["max_samples"] = cap
    if value.get("weight") is not None:
        weight = value["weight"]
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight > 0 or weight == float("inf"):
            raise ConfigError(f"{where}.weight: {weight!r} must be a positive number")
        out["weight"] = float(weight)
    return out


def _source_from(value: Any, index: int) -> SourceSpec:
    if isinstance(value, str):
        return SourceSpec(uri=value)
    if isinstance(value, Mapping):
        if "uri" not in value:
            raise ConfigError(f"sources[{index}]: needs a 'uri'")
        known = ("uri", "labels", "params", "label_map") + SOURCE_OPTIONS
        extra = {k: str(v) for k, v in value.items() if k not in known}
        params = {str(k): str(v) for k, v in dict(value.get("params", {})).items()}
        params.update(extra)
        options = _source_options(value, index)
        return SourceSpec(uri=str(value["uri"]), labels=value.get("labels"), params=params, **options)
    raise ConfigError(f"sources[{index}]: must be a URI string or a table with 'uri'")


def _section(data: Mapping[str, Any], name: str, keys: Mapping[str, str]) -> dict[str, Any]:
    section = data.get(name, {}) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{name}: must be a table")
    out = {}
    for key, value in section.items():
        norm = key.replace("-", "_")
        if norm not in keys:
            raise ConfigError(f"{name}.{key}: unknown option (known: {', '.join(sorted(keys))})")
        out[keys[norm]] = value
    return out


def build_config_from_mapping(data: Mapping[str, Any]) -> BuildConfig:
    """Validate a mapping (config file merged with CLI flags) into a BuildConfig."""
    for key in data:
        if key.replace("-", "_") not in _TOP_KEYS:
            raise ConfigError(f"{key}: unknown option (known: {', '.join(sorted(_TOP_KEYS))})")
    image_kwargs = _section(data, "image", _IMAGE_KEYS)
    for colour in ("fill", "background"):
        if colour in image_kwargs:
            image_kwargs[colour] = parse_color(image_kwargs[colour], f"image.{colour}")
    out_kwargs = _section(data, "format", _OUT_KEYS)
    clean_kwargs = _section(data, "clean", _CLEAN_KEYS)
    if "skip" in clean_kwargs:
        skip = clean_kwargs["skip"]
        clean_kwargs["skip"] = tuple([skip] if isinstance(skip, str) else skip)
    for key, value in clean_kwargs.items():
        default = getattr(CleanConfig(), key)
        if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, (int, float)) and not isinstance(value, (int, float))
        ) or (isinstance(default, str) and not isinstance(value, str)):
            raise ConfigError(f"clean.{key}: {value!r} has the wrong type")
    try:
        image = ImageConfig(**image_kwargs)
        out = OutputConfig(**out_kwargs)
        clean = CleanConfig(**clean_kwargs)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    balance = _balance_from(_section(data, "balance", _BALANCE_KEYS))
    raw_sources = data.get("sources") or [DEFAULT_SOURCE]
    if isinstance(raw_sources, (str, Mapping)):
        raw_sources = [raw_sources]
    sources = tuple(_source_from(v, i) for i, v in enumerate(raw_sources))
    top = {k.replace("-", "_"): v for k, v in data.items() if k not in ("sources", "image", "format", "balance", "clean")}
    _check_types(top)
    config = BuildConfig(sources=sources, image=image, out=out, balance=balance, clean=clean, **top)
    _check_types(dataclasses.asdict(image), prefix="image.")
    config.validate()
    return config


def _balance_from(kwargs: dict[str, Any]) -> BalanceConfig:
    if "sampling_strategy" in kwargs:
        kwargs["sampling_strategy"] = parse_sampling_strategy(kwargs["sampling_strategy"], "balance.sampling_strategy")
    if "augmentations" in kwargs:
        value = kwargs["augmentations"]
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        kwargs["augmentations"] = tuple(str(v).strip() for v in value)
    if "synth_options" in kwargs:
        value = kwargs["synth_options"]
        if not isinstance(value, Mapping):
            raise ConfigError(f"balance.synth_options: {value!r} must be a table of gan: source options")
        kwargs["synth_options"] = {str(k): str(v) for k, v in sorted(value.items())}
    for key, want in (("augment", bool), ("drop_small_classes", bool), ("undersample_by_cluster", bool),
                      ("min_class_count", int), ("val_fraction", (int, float)), ("mode", str),
                      ("synth_from", str), ("synth_filter", (int, float)), ("synth_truncation", (int, float)),
                      ("max_synthetic_share", (int, float))):
        optional = key in ("synth_from", "synth_filter", "synth_truncation")  # None = unset (a saved config)
        if key in kwargs and not (optional and kwargs[key] is None) and (
                not isinstance(kwargs[key], want) or (want is not bool and isinstance(kwargs[key], bool))):
            raise ConfigError(f"balance.{key}: {kwargs[key]!r} has the wrong type")
    for key in ("val_fraction", "synth_filter", "synth_truncation", "max_synthetic_share"):
        if kwargs.get(key) is not None:
            kwargs[key] = float(kwargs[key])
    return BalanceConfig(**kwargs)


def _check_types(values: Mapping[str, Any], prefix: str = "") -> None:
    """Catch wrong types from config files early with the option's name."""
    expected = {
        "seed": int, "workers": int, "size_px": int, "channels": int, "min_size_px": int,
        "max_pixels": int, "max_upscale": (int, float), "draft_gap": (int, float), "output": str, "ray_address": str, "staging_dir": str,
        "dedup": bool, "keep_staging": bool, "overwrite": bool, "draft": bool,
    }
    for key, value in values.items():
        want = expected.get(key)
        if want is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            raise ConfigError(f"{prefix}{key}: {value!r} has the wrong type")
