"""Build configuration: the dataclasses (``model``), the option table every flag
and config key is made from (``options``) and the loader of config files and
flag mappings (``loader``)."""

from gandata.config.loader import build_config_from_mapping, convert, load_config_file
from gandata.config.model import (
    AUGMENTATIONS,
    BALANCE_MODES,
    DEFAULT_OUTPUT,
    DEFAULT_SOURCE,
    DTYPES,
    EXECUTORS,
    LABEL_CONFLICT_MODES,
    NORMALIZATIONS,
    QUALITY_CHECKS,
    RESIZE_MODES,
    SAMPLING_KEYWORDS,
    SOURCE_OPTIONS,
    SYNTH_RESERVED_OPTIONS,
    BalanceConfig,
    BuildConfig,
    CleanConfig,
    ImageConfig,
    LicenseConfig,
    OutputConfig,
    SourceSpec,
    parse_color,
    parse_sampling_strategy,
)
from gandata.config.options import OPTIONS, Option

__all__ = [
    "AUGMENTATIONS", "BALANCE_MODES", "DEFAULT_OUTPUT", "DEFAULT_SOURCE", "DTYPES", "EXECUTORS", "LABEL_CONFLICT_MODES",
    "NORMALIZATIONS", "OPTIONS", "Option", "QUALITY_CHECKS", "RESIZE_MODES", "SAMPLING_KEYWORDS", "SOURCE_OPTIONS",
    "SYNTH_RESERVED_OPTIONS", "BalanceConfig", "BuildConfig", "CleanConfig", "ImageConfig", "LicenseConfig", "OutputConfig", "SourceSpec",
    "build_config_from_mapping", "convert", "load_config_file", "parse_color", "parse_sampling_strategy",
]
