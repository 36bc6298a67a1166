"""The build's inputs: its sources opened through the registry, the synthetic-fill
generator probe, and the fingerprint that identifies the dataset they produce.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from gandata.config import BuildConfig, SourceSpec
from gandata.dataset.manifest import CACHE_DIR, FORMAT_VERSION
from gandata.errors import ConfigError, SourceError
from gandata.plan.synthetic_fill import gan_uri
from gandata.plan.table import SHARD_LAYOUT
from gandata.sources import open_source, scheme_of
from gandata.sources.base import Source, SourceContext


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:20]


def source_context(config: BuildConfig) -> SourceContext:
    return SourceContext(
        size_px=config.image.size_px,
        channels=config.image.channels,
        seed=config.seed,
        allow_private_network=config.allow_private_network,
        max_pixels=config.image.max_pixels,
        cache_dir=str(Path(config.output) / CACHE_DIR / "web"),
    )


def open_sources(config: BuildConfig) -> list[Source]:
    """Open every source of the config (fails fast on a bad URI)."""
    ctx = source_context(config)
    return [open_source(spec, ctx) for spec in config.sources]


def open_synth_probe(config: BuildConfig) -> Source | None:
    """With ``--balance synthesize``: the generator of ``--synth-from`` opened
    as a one-sample ``gan:`` source, through the source registry. It checks
    the run up front (exists, conditional, classifier ready when filtering)
    and its fingerprint (checkpoint SHA-256, options) enters the build's.
    None for other modes."""
    bc = config.balance
    if bc.mode != "synthesize":
        return None
    try:
        probe = open_source(SourceSpec(gan_uri(bc)), source_context(config))
    except SourceError as exc:
        raise ConfigError(f"--synth-from: {exc}") from None
    if generator_summary(probe).get("conditional") is False or probe.class_names() is None:
        raise ConfigError(
            f"--synth-from: the generator in {bc.synth_from} is unconditional; synthetic fill needs a "
            "class-conditional one (gantrain train --conditional)"
        )
    return probe


def generator_summary(source: Source) -> dict[str, Any]:
    """What a generating source says about its generator (``summary()`` of a
    ``gan:`` source: run, checkpoint and its SHA-256, classes, ...); {} when
    it says nothing."""
    summary = getattr(getattr(source, "inner", source), "summary", None)
    return dict(summary()) if callable(summary) else {}


def build_fingerprint(config: BuildConfig, sources: Sequence[Source], synth: Source | None = None) -> str:
    """Identifies the dataset a config produces: same fingerprint, same bytes.

    ``synth`` (``open_synth_probe``) adds the fill's generator: another
    checkpoint or classifier is another dataset, so a resume never mixes
    generators."""
    data = config.to_json()
    for key in ("output", "workers", "executor", "keep_staging", "overwrite", "ray_address", "staging_dir", "retry_failed",
                "allow_empty"):
        data.pop(key, None)
    data.get("balance", {}).pop("allow_huge_oversample", None)
    extra = {"synth": synth.fingerprint()} if synth is not None else {}
    return digest({"config": data, "sources": [s.fingerprint() for s in sources], "version": FORMAT_VERSION,
                   "shard_layout": SHARD_LAYOUT, **extra})


@dataclass(frozen=True)
class BuildInputs:
    """A build's opened sources, its synthetic-fill probe and its fingerprint."""

    sources: tuple[Source, ...]
    probe: Source | None
    fingerprint: str


def open_inputs(config: BuildConfig) -> BuildInputs:
    """Open the sources and the fill generator of ``config`` (fails fast on a
    bad URI or run) and compute the fingerprint of the dataset they make."""
    sources = open_sources(config)
    probe = open_synth_probe(config)
    return BuildInputs(tuple(sources), probe, build_fingerprint(config, sources, probe))


def generator_size(config: BuildConfig) -> int | None:
    """The image size of the generators a build samples, when every source is
    a generating one (``gan:``) and they agree; None otherwise. A build that
    sets no size uses it, so samples are not resampled to the default size."""
    if not config.sources or any(scheme_of(spec.uri) != "gan" for spec in config.sources):
        return None
    # Size 0 in the context: no size is chosen yet, so a generator smaller
    # than the default does not refuse to be upscaled to it.
    ctx = replace(source_context(config), size_px=0)
    sizes = {int(generator_summary(open_source(spec, ctx)).get("image_size_px") or 0) for spec in config.sources}
    return sizes.pop() if len(sizes) == 1 and 0 not in sizes else None
