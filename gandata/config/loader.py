"""Config files and mappings to a validated ``BuildConfig``.

``load_config_file`` reads a TOML (or YAML, with PyYAML) file into a plain
mapping; the CLI merges its flags over it; ``build_config_from_mapping``
checks every key and value against the option table (gandata/config/options.py)
and validates the result. Errors name the key (``image.size``) at fault.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

from gandata.config.model import (
    DEFAULT_SOURCE,
    SOURCE_OPTIONS,
    BuildConfig,
    SourceSpec,
    parse_color,
    parse_sampling_strategy,
)
from gandata.config.options import SECTIONS, Option, options_of
from gandata.errors import ConfigError


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
    for name in ("license_allow", "license_deny"):
        names = value.get(name)
        if names is None:
            continue
        if isinstance(names, str):
            names = [n for n in names.split(",") if n.strip()]
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"{where}.{name}: {value[name]!r} must be a list of licence names")
        out[name] = tuple(n.strip() for n in names)
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
        if not isinstance(value["uri"], str) or not value["uri"].strip():
            raise ConfigError(f"sources[{index}].uri: {value['uri']!r} must be a non-empty string")
        if value.get("labels") is not None and not isinstance(value["labels"], str):
            raise ConfigError(f"sources[{index}].labels: {value['labels']!r} must be the path of a CSV file")
        raw_params = value.get("params") if value.get("params") is not None else {}
        if not isinstance(raw_params, Mapping):
            raise ConfigError(f"sources[{index}].params: {raw_params!r} must be a table of KEY = VALUE options")
        extra = {k: str(v) for k, v in value.items() if k not in known}
        params = {str(k): str(v) for k, v in raw_params.items()}
        params.update(extra)
        options = _source_options(value, index)
        return SourceSpec(uri=str(value["uri"]), labels=value.get("labels"), params=params, **options)
    raise ConfigError(f"sources[{index}]: must be a URI string or a table with 'uri'")


def _wrong(where: str, value: Any) -> ConfigError:
    return ConfigError(f"{where}: {value!r} has the wrong type")


def convert(option: Option, value: Any, where: str | None = None) -> Any:
    """Check one config value against its option and convert it (colours,
    strategies, lists, tables); ConfigError naming the key when it does not fit."""
    where = where or option.key
    if value is None:
        if option.default is None:
            return None  # an optional value left unset (a saved config says null)
        raise _wrong(where, value)
    kind = option.type
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(where, value)
    elif kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(where, value)
    elif kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _wrong(where, value)
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value!r} must be a finite number")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise _wrong(where, value)
    elif kind == "colour":
        value = parse_color(value, where)
    elif kind == "strategy":
        value = parse_sampling_strategy(value, where)
    elif kind == "names":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise _wrong(where, value)
        value = tuple(v.strip() for v in value)
    elif kind == "table":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {value!r} must be a table of KEY = VALUE options")
        value = {str(k): str(v) for k, v in sorted(value.items())}
    return value


def _fields(data: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The dataclass keyword arguments of one config-file section ("" = top level)."""
    raw = data if not section else (data.get(section) if data.get(section) is not None else {})
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}: must be a table of options, not {raw!r}")
    known = options_of(section)
    nested = () if section else (*(s for s in SECTIONS if s), "sources")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name in nested:
            continue
        option = known.get(name)
        if option is None:
            names = sorted(set(known) | set(nested))
            raise ConfigError(f"{f'{section}.' if section else ''}{key}: unknown option (known: {', '.join(names)})")
        out[option.field_name] = convert(option, value)
    return out


def build_config_from_mapping(data: Mapping[str, Any]) -> BuildConfig:
    """Validate a mapping (config file merged with CLI flags) into a BuildConfig."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: must be a table of options, not {data!r}")
    sections = {name: cls(**_fields(data, name)) for name, cls in SECTIONS.items() if name}
    raw_sources = data.get("sources") or [DEFAULT_SOURCE]
    if isinstance(raw_sources, (str, Mapping)):
        raw_sources = [raw_sources]
    if not isinstance(raw_sources, (list, tuple)):
        raise ConfigError(f"sources: must be a list of URIs or [[sources]] tables, not {raw_sources!r}")
    sources = tuple(_source_from(v, i) for i, v in enumerate(raw_sources))
    config = BuildConfig(
        sources=sources, image=sections["image"], out=sections["format"], balance=sections["balance"],
        clean=sections["clean"], licenses=sections["licenses"], **_fields(data, ""),
    )
    config.validate()
    return config
