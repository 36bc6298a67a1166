"""The dataset card: README.md in HuggingFace dataset-card form, made from a manifest.

YAML front matter (``pretty_name``, ``license``, ``size_categories``,
``task_categories``, ``source_datasets``, ``tags``), then what a person
receiving the dataset needs to know: the licence facts first when some
samples are non-commercial, no-derivatives or of unknown licence; sources
with counts and licences; the cleaning summary per rejection reason; class
balance before and after balancing; normalization and seed; what is
synthetic; and the command that rebuilds it. Every build writes it
(``gandata.write.card``); ``gandata export --to hf`` carries it;
``gandata stats --card`` prints it.

The card is rendered from the manifest alone (plus two figures only the
build knows), so the same dataset always gets the same card.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from gandata.config.options import OPTIONS
from gandata.dataset.licenses import UNKNOWN, normalize_license, restrictions
from gandata.dataset.manifest import CARD_FILE, read_manifest
from gandata.records import REASONS

# HuggingFace's size_categories buckets: (upper bound, label).
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                 (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
# Config sections of the option table and the to_json() key each lives under.
_SECTION_KEYS = {"": None, "image": "image", "format": "out", "balance": "balance", "clean": "clean", "licenses": "licenses"}
# Options that change where or how fast a build runs, never what it makes.
_RUN_ONLY = {"output", "workers", "executor", "ray_address", "staging_dir", "keep_staging", "overwrite", "retry_failed"}
_RESTRICTION_WORDS = {"NC": "non-commercial (NC)", "ND": "no-derivatives (ND)", "unknown": "unknown"}


def dataset_name(sources: list[Mapping[str, Any]]) -> str:
    """The card's title: the short names of the sources (a folder's or file's
    name, a Hub dataset's, a generator's), never the output path, so the same
    inputs give the same card wherever they are built."""
    names: list[str] = []
    for source in sources:
        uri = str(source.get("uri", ""))
        scheme, sep, rest = uri.partition(":")
        target = rest if sep and len(scheme) > 1 and not rest.startswith("//") else uri
        target = target.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        name = PurePosixPath(target).name or target
        name = re.sub(r"\.(zip|tar|tgz|gz|txt|csv|tsv|jsonl|parquet|npz)$", "", name, flags=re.I)
        if name and name not in names:
            names.append(name)
    if not names:
        return "gandata dataset"
    return " + ".join(names[:3]) + (f" + {len(names) - 3} more" if len(names) > 3 else "")


def size_category(n: int) -> str:
    """The HuggingFace ``size_categories`` bucket of ``n`` samples."""
    for bound, label in _SIZE_BUCKETS:
        if n < bound:
            return label
    return "n>1B"


def hub_license_id(name: str) -> str:
    """The Hub's ``license`` metadata value for a recorded licence: its SPDX
    id in lower case, ``unknown``, or ``other`` when it is not an id."""
    norm = normalize_license(name)
    if norm == UNKNOWN:
        return "unknown"
    return norm if re.fullmatch(r"[a-z0-9][a-z0-9.+\-]*", norm) else "other"


def _yaml_scalar(value: str) -> str:
    # JSON strings are valid YAML double-quoted scalars.
    return json.dumps(value, ensure_ascii=False)


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:"] + [f"- {_yaml_scalar(v)}" for v in values]


def _source_dataset(uri: str) -> str:
    if uri.startswith("hf:"):
        name = uri[3:].split("?", 1)[0].split("#", 1)[0]
        return f"extended|{name}"
    return "original"


def front_matter(manifest: Mapping[str, Any], pretty_name: str) -> str:
    """The YAML front matter (between ``---`` lines) of the card."""
    licenses = sorted({hub_license_id(name) for name in (manifest.get("licenses") or {})}) or ["unknown"]
    tasks = ["unconditional-image-generation"] + (["image-classification"] if manifest.get("classes") else [])
    sources = [_source_dataset(s["uri"]) for s in manifest.get("sources", [])]
    source_datasets = sorted(set(sources), key=lambda s: (s != "original", s)) or ["original"]
    tags = ["gandata", "gan"] + (["synthetic"] if manifest.get("synthetic") else [])
    lines = ["---", f"pretty_name: {_yaml_scalar(pretty_name)}"]
    lines += [f"license: {_yaml_scalar(licenses[0])}"] if len(licenses) == 1 else _yaml_list("license", licenses)
    lines += _yaml_list("size_categories", [size_category(int(manifest.get("num_samples", 0)))])
    lines += _yaml_list("task_categories", tasks)
    lines += _yaml_list("source_datasets", source_datasets)
    lines += _yaml_list("tags", tags)
    lines.append("---")
    return "\n".join(lines) + "\n"


def license_facts(licenses: Mapping[str, int]) -> list[str]:
    """One sentence per restriction found (NC, ND, unknown): how many samples,
    under which licences. Empty when every licence is known and unrestricted."""
    total = sum(licenses.values())
    by_kind: dict[str, Counter[str]] = {}
    for name, count in licenses.items():
        for kind in restrictions(name):
            by_kind.setdefault(kind, Counter())[name] += count
    out = []
    for kind in ("NC", "ND", "unknown"):
        if kind not in by_kind:
            continue
        n = sum(by_kind[kind].values())
        names = ", ".join(f"{name} ({count})" for name, count in sorted(by_kind[kind].items()))
        what = "an unknown licence" if kind == "unknown" else f"{_RESTRICTION_WORDS[kind]} licences"
        out.append(f"{n} of {total} samples ({100 * n / total:.1f}%) are under {what}: {names}.")
    return out


def _config_value(config: Mapping[str, Any], section: str, name: str) -> Any:
    key = _SECTION_KEYS.get(section)
    data = config if key is None else (config.get(key) or {})
    return data.get(name, None) if isinstance(data, Mapping) else None


def _flag_args(option: Any, value: Any) -> list[str]:
    flag = option.flag
    if option.kind == "flag":
        return [flag] if value else []
    if option.kind == "off":
        return [flag] if value is False else []
    if option.kind == "multiple":
        return [arg for v in value for arg in (flag, str(v))]
    if option.kind == "pairs":
        return [arg for k, v in sorted(dict(value).items()) for arg in (flag, f"{k}={v}")]
    if option.type == "colour":
        return [flag, ",".join(str(int(c)) for c in value)]
    if isinstance(value, (dict, list)):
        return [flag, json.dumps(value, sort_keys=True)]
    if isinstance(value, bool):
        return [flag] if value else []
    return [flag, str(value)]


def _same(value: Any, default: Any) -> bool:
    if isinstance(default, tuple):
        default = list(default)
    return json.loads(json.dumps(value)) == json.loads(json.dumps(default))


def rebuild_command(config: Mapping[str, Any]) -> tuple[str, str | None]:
    """(the ``gandata build`` command that rebuilds a dataset from its saved
    config, the TOML config file it needs or None).

    Plain sources become arguments and options that differ from their
    defaults become flags; sources with options of their own (label maps,
    caps, licences, ...) need a config file, returned as TOML."""
    sources = list(config.get("sources") or [])
    plain = all(set(s) <= {"uri"} for s in sources)
    args = ["gandata", "build"]
    toml = None
    if plain:
        args += [s["uri"] for s in sources]
    else:
        args += ["--config", "build.toml"]
        toml = sources_toml(sources)
    # The output is left to the reader (OUT): the card, like every file but
    # the manifest, is the same wherever the dataset was built.
    args += ["-o", "OUT"]
    for option in OPTIONS:
        if not option.flag or "build" not in option.commands or option.name in _RUN_ONLY:
            continue
        if option.section in ("sources", "web"):
            continue  # per-source options: in the sources themselves
        value = _config_value(config, option.section, option.field_name)
        if value is None or _same(value, option.default):
            continue
        args += _flag_args(option, value)
    return " ".join(shlex.quote(a) for a in args), toml


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value), ensure_ascii=False)


def sources_toml(sources: list[Mapping[str, Any]]) -> str:
    """The ``[[sources]]`` tables of a config file for ``sources`` (the
    manifest's config form)."""
    blocks = []
    for source in sources:
        lines = ["[[sources]]"] + [f"{key} = {_toml_value(value)}" for key, value in source.items() if value is not None]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return out


def render_card(manifest: Mapping[str, Any], *, pretty_name: str | None = None,
                counts_before: Mapping[str, int] | None = None, num_synthetic: int | None = None) -> str:
    """The dataset card (README.md text) of the dataset ``manifest`` describes.

    ``counts_before``: samples per class before class balancing (None when
    not balanced or not known); ``num_synthetic``: output samples made by a
    generator (None when not known: samples.parquet's ``synthetic`` says)."""
    config = manifest.get("config") or {}
    name = pretty_name or dataset_name(list(config.get("sources") or []))
    n = int(manifest.get("num_samples", 0))
    c, h, w = manifest.get("image_shape", [0, 0, 0])
    classes = list(manifest.get("classes") or [])
    licenses = dict(manifest.get("licenses") or {})
    lines = [front_matter(manifest, name), f"# {name}", ""]
    facts = license_facts(licenses)
    if facts:
        lines += ["**Licences:** " + " ".join(facts) + " Check each licence's terms before use.", ""]
    kind = "grayscale" if c == 1 else "RGB"
    labelled = f"{len(classes)} classes" if classes else "unlabeled"
    lines += [f"{n} {kind} images of {w}x{h} pixels, {labelled}, built by {manifest.get('created_by', 'gandata')} "
              f"for GAN training (format `{manifest.get('format')}` version {manifest.get('version')}: docs/FORMAT.md).", ""]
    splits = manifest.get("splits") or {}
    if splits:
        lines += ["Splits: " + ", ".join(f"{k} {v}" for k, v in splits.items()) + ".", ""]

    lines += ["## Sources", ""]
    rows = []
    for s in manifest.get("sources", []):
        per = s.get("licenses") or {}
        lic = ", ".join(f"{k} ({v})" for k, v in per.items()) if per else s.get("license", UNKNOWN)
        rows.append([f"`{s['uri']}`", s.get("num_samples", 0), s.get("num_rejected", 0), lic])
    lines += _table(["source", "samples", "rejected", "licences"], rows) + [""]

    lines += ["## Licences", "", "The licences of the samples in the dataset, as their sources recorded them "
              "(samples.parquet has each sample's licence, origin and URL):", ""]
    lines += _table(["licence", "samples", "share", "restrictions"],
                    [[k, v, f"{100 * v / max(n, 1):.1f}%", ", ".join(restrictions(k)) or "none recorded"]
                     for k, v in sorted(licenses.items())]) + [""]
    policy = config.get("licenses")
    if policy:
        lines += [f"Licence policy: allow {', '.join(policy.get('allow') or []) or 'any'}; "
                  f"deny {', '.join(policy.get('deny') or []) or 'none'}; "
                  f"unknown licences {'rejected' if policy.get('require') else 'kept'}.", ""]

    rejections = dict(manifest.get("rejections") or {})
    lines += ["## Cleaning", ""]
    if not rejections:
        lines += ["No input was left out.", ""]
    else:
        lines += [f"{sum(rejections.values())} inputs were left out (rejected.jsonl lists each one with its source "
                  "and the reason):", ""]
        lines += _table(["reason", "count", "meaning"],
                        [[f"`{k}`", v, REASONS.get(k, "")] for k, v in sorted(rejections.items())]) + [""]
    if manifest.get("num_upscaled"):
        lines += [f"{manifest['num_upscaled']} kept images were upscaled to reach {w}x{h}.", ""]

    lines += ["## Class balance", ""]
    counts = dict(manifest.get("class_counts") or {})
    if classes:
        balance = (config.get("balance") or {}).get("mode", "none")
        if counts_before is not None:
            lines += [f"Balancing: `{balance}`.", ""]
            lines += _table(["class", "before balancing", "after"],
                            [[k, counts_before.get(k, 0), counts.get(k, 0)] for k in classes]) + [""]
        else:
            lines += [f"Balancing: `{balance}`.", ""]
            lines += _table(["class", "samples"], [[k, counts.get(k, 0)] for k in classes]) + [""]
    if manifest.get("num_unlabeled"):
        lines += [f"{manifest['num_unlabeled']} samples are unlabeled.", ""]
    if not classes and not manifest.get("num_unlabeled"):
        lines += ["No classes.", ""]

    lines += ["## Synthetic samples", ""]
    synth = manifest.get("synthetic")
    if synth:
        total = sum((synth.get("counts") or {}).values())
        lines += [f"{total} samples were generated by the gantrain run `{synth.get('run')}` (checkpoint sha256 "
                  f"{synth.get('checkpoint_sha256')}) to fill classes: "
                  + ", ".join(f"{k} {v}" for k, v in sorted((synth.get("counts") or {}).items())) + ". "
                  "samples.parquet marks each one (`synthetic`).", ""]
    elif num_synthetic:
        lines += [f"{num_synthetic} samples come from a generator (samples.parquet column `synthetic`).", ""]
    elif num_synthetic == 0:
        lines += ["None: every sample is an image from the sources above.", ""]
    else:
        lines += ["samples.parquet's `synthetic` column marks any sample made by a generator.", ""]

    norm = manifest.get("normalization") or {}
    lines += ["## Format", "",
              f"- shards: {len(manifest.get('shards', []))} safetensors files (`images` {manifest.get('dtype')} "
              f"[N, {c}, {h}, {w}], `labels` int64)",
              f"- normalization: `{norm.get('mode')}` (offset {norm.get('offset')}, scale {norm.get('scale')}), "
              + ("applied by the reader" if manifest.get("dtype") == "uint8" else "applied in storage"),
              f"- mean {_floats(manifest.get('mean'))}, std {_floats(manifest.get('std'))} (on the [0, 1] scale)",
              f"- seed: {manifest.get('seed')}", ""]

    command, toml = rebuild_command(config)
    lines += ["## Rebuild", ""]
    if toml is not None:
        lines += ["Save this as `build.toml`:", "", "```toml", toml.rstrip("\n"), "```", "", "then run:", ""]
    lines += ["```sh", command, "```", "",
              "with OUT a new folder or object-store URL. The same sources give the same bytes; manifest.json holds the full resolved config and "
              f"`build_fingerprint` {manifest.get('build_fingerprint')}.", ""]
    lines += ["## Use", "", "```python", "from gandata import open_dataset", "ds = open_dataset(\".\")  # this folder",
              "```", "", "Export for StyleGAN2-ADA / StyleGAN3 / EDM or CycleGAN: `gandata export . --to stylegan "
              "data.zip`, `gandata export . --to cyclegan DIR --domains A,B` (docs/EXPORT.md).", ""]
    return "\n".join(lines)


def _floats(values: Any) -> str:
    return "[" + ", ".join(f"{float(v):.4f}" for v in values or []) + "]"


def read_card(root: str | os.PathLike[str]) -> str:
    """The card of the local dataset at ``root``: its README.md, or, for a
    dataset built before cards existed, one rendered from its manifest."""
    path = Path(root) / CARD_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8")
    return render_card(read_manifest(root))
