"""The ``gandata`` command line: printing, progress bars and error messages.

Every command turns library errors (``GandataError``) into a one-line message
on stderr and a non-zero exit; the library itself never prints.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from gandata import __version__
from gandata.config import DEFAULT_OUTPUT, build_config_from_mapping, load_config_file
from gandata.errors import GandataError
from gandata.sources import schemes


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class PhaseBars:
    """One tqdm bar per pipeline phase, on stderr; silent when quiet or when
    stderr is not a terminal (logs, CI)."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self._bars: dict[str, Any] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=total, desc=f"{phase:>7}", unit="part" if phase.startswith(("ingest", "synth")) else "shard", leave=True, file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except GandataError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; re-run the same command to resume", code=130)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="gandata")
def main() -> None:
    """gandata: prepare clean, balanced, sharded image datasets for GAN training.

    Start with `gandata build` (no arguments: a procedural shapes dataset in
    ./gandata-out), then `gandata verify` and `gandata stats` on the result.
    """


def _source_help() -> str:
    return "\n".join(f"  {help_text}" for _, help_text in schemes().values())



def _web_params(pairs: tuple[str, ...], max_depth: int | None, max_pages: int | None) -> dict[str, str]:
    """--web KEY=VALUE flags (and --max-depth/--max-pages) as source params."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--web")
        out[key.strip()] = value.strip()
    if max_depth is not None:
        out["max_depth"] = str(max_depth)
    if max_pages is not None:
        out["max_pages"] = str(max_pages)
    return out


def _with_web_params(source: Any, web: dict[str, str]) -> Any:
    """Attach web params to urls:/crawl: sources (the URI query still wins)."""
    uri = source if isinstance(source, str) else source.get("uri", "")
    if not str(uri).startswith(("urls:", "crawl:")):
        return source
    if isinstance(source, str):
        return {"uri": source, "params": dict(web)}
    return {**source, "params": {**web, **dict(source.get("params", {}) or {})}}


# Cleaning flags shared by `build` and `clean` (docs/CLEANING.md); they map
# onto the [clean] section of the config file.
_CLEAN_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--no-clean",), dict(is_flag=True, default=None, help="Switch off every cleaning check (exact dedup stays, see --no-dedup).")),
    (("--near-dup-radius",), dict(type=int, help="Hamming radius of the 64-bit pHash near-duplicate search. [default: 4]")),
    (("--near-dup-similarity",), dict(type=float, help="Thumbnail correlation a hash candidate needs to count as a near duplicate. [default: 0.99]")),
    (("--no-near-dups",), dict(is_flag=True, default=None, help="Keep near duplicates (exact duplicates are still removed).")),
    (("--min-aspect",), dict(type=float, help="bad_aspect: reject when min(w/h, h/w) is below this. [default: 0.25]")),
    (("--min-std",), dict(type=float, help="low_information: reject when the luma standard deviation (0-255) is below this. [default: 3]")),
    (("--dark-p99",), dict(type=float, help="too_dark: reject when the 99th luma percentile is below this. [default: 12]")),
    (("--light-p01",), dict(type=float, help="too_light: reject when the 1st luma percentile is above this. [default: 245]")),
    (("--min-blur-ratio",), dict(type=float, help="blurry: reject when the fine/coarse Laplacian energy ratio is below this. [default: 1.1]")),
    (("--gray-color",), dict(type=float, help="grayscale: flag RGB images whose mean channel spread is below this. [default: 2]")),
    (("--drop-grayscale",), dict(is_flag=True, default=None, help="Drop images flagged grayscale (default: kept and reported).")),
    (("--skip-check",), dict(multiple=True, type=click.Choice(["bad_aspect", "low_information", "too_dark", "too_light", "blurry", "grayscale"]), help="Switch one quality check off (repeatable).")),
    (("--label-conflicts",), dict(type=click.Choice(["drop", "majority"]), help="Duplicates across classes: drop all, or keep the strict majority label. [default: drop]")),
    (("--max-removed-share",), dict(type=float, help="Stop when one check would remove more than this share of a class. [default: 0.5]")),
]


def _clean_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for decls, kwargs in reversed(_CLEAN_FLAGS):
        fn = click.option(*decls, **kwargs)(fn)
    return fn


def _pop_clean_flags(flags: dict[str, Any], data: dict[str, Any]) -> None:
    """Move the cleaning flags out of ``flags`` into ``data["clean"]``."""
    clean = dict(data.get("clean", {}) or {})
    if flags.pop("no_clean"):
        clean["enabled"] = False
    if flags.pop("no_near_dups"):
        clean["near_dups"] = False
    if flags.pop("drop_grayscale"):
        clean["drop_grayscale"] = True
    skip = flags.pop("skip_check")
    if skip:
        clean["skip"] = list(skip)
    for key in ("near_dup_radius", "near_dup_similarity", "min_aspect", "min_std", "dark_p99", "light_p01",
                "min_blur_ratio", "gray_color", "label_conflicts", "max_removed_share"):
        value = flags.pop(key)
        if value is not None:
            clean[key] = value
    if clean:
        data["clean"] = clean


@main.command(
    epilog="Sources (URI forms):\n\n" + "\n\n".join(f"  {h}" for _, h in schemes().values()) + "\n\n"
    "Several sources merge into one dataset; per-source options (label_map, label, max_samples, weight, "
    "license, image_column, label_column) go in the config file's [[sources]] tables (docs/SOURCES.md).\n\n"
    "Examples:\n\n  gandata build\n\n  gandata build ./photos -o data/photos --size 64 --workers 8\n\n"
    "  gandata build hf:mnist idx:data/emnist-letters-train-images-idx3-ubyte.gz --size 28 --channels 1\n\n"
    "  gandata build --config examples/photos.toml --seed 1",
)
@click.argument("sources", nargs=-1)
@click.option("-o", "--output", help=f"Output directory, or an object-store URL (s3://bucket/prefix, gs://..., any fsspec URL). [default: {DEFAULT_OUTPUT}]")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@click.option("--labels", help="CSV file (path,label) labelling the files of a folder/archive source (applies to every such source).")
@click.option("--image-column", help="HuggingFace sources: the image column (default: the column with an Image feature).")
@click.option("--label-column", help="HuggingFace sources: the label column (default: the ClassLabel column; none = unlabeled).")
@click.option("--license", "license_name", help="Licence recorded for every source's samples (default: the Hub card's, else 'unknown').")
@click.option("--size", type=int, help="Output images are SIZE x SIZE pixels. [default: 64]")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 (grayscale) or 3 (RGB). [default: 3]")
@click.option("--resize", type=click.Choice(["crop", "pad", "stretch"]), help="Center-crop, letterbox-pad or stretch to square. [default: crop]")
@click.option("--fill", help="Pad colour for --resize pad: black, white, #rrggbb or r,g,b. [default: black]")
@click.option("--background", help="Colour transparent pixels are composited on. [default: black]")
@click.option("--min-size", type=int, help="Reject images whose shorter side is below this many pixels (too_small). [default: 16]")
@click.option("--max-upscale", type=float, help="Reject images needing more upscaling than this factor (too_small); smaller upscales are counted. [default: 4.0]")
@click.option("--max-pixels", type=int, help="Decompression-bomb limit in pixels. [default: 90000000]")
@click.option("--draft-gap", type=float, help="JPEGs are decoded at reduced DCT scale (an area average) down to at least this many times SIZE; Lanczos does the rest. 1 is fastest; 2 is closer to a full decode + Lanczos on fine patterns, ~1.3x slower (README: Decoding and resizing). [default: 1]")
@click.option("--normalize", type=click.Choice(["minus1-1", "zero-1", "center", "standardize"]), help="Normalization recorded (uint8) or applied (float dtypes). [default: minus1-1]")
@click.option("--dtype", type=click.Choice(["uint8", "float16", "float32"]), help="Stored dtype; uint8 stores raw pixels. [default: uint8]")
@click.option("--shard-size", type=int, help="Samples per shard. [default: 4096]")
@click.option("--seed", type=int, help="Seed for every random choice (shuffle, synthesis); recorded in the manifest. [default: 0]")
@click.option("--workers", type=int, help="Worker processes, this one included; 0 = one per core. [default: 0]")
@click.option("--executor", type=click.Choice(["process", "serial", "ray"]), help="Where the parallel stages run; ray runs them as Ray tasks (pip install 'gandata[ray]'). [default: process]")
@click.option("--ray-address", help="With --executor ray: the cluster to join ('auto', 'ray://HOST:10001'); default starts a local Ray.")
@click.option("--staging-dir", help="With an object-store --output: local folder the build is staged in before upload (kept for resuming). [default: a temporary folder]")
@click.option("--no-dedup", is_flag=True, default=None, help="Keep exact duplicates.")
@click.option("--balance", type=click.Choice(["none", "undersample", "oversample", "weights", "synthesize"]), help="Class balancing of the train split: resample (indices only, output shuffled), write per-sample `weights`, or synthesize: fill classes with samples of a conditional gantrain generator (--synth-from). [default: none]")
@click.option("--synth-from", metavar="RUN_DIR", help="--balance synthesize: the gantrain run (trained with --conditional) whose generator fills each class up to its --sampling-strategy target; needs gantrain installed.")
@click.option("--synth-filter", type=float, metavar="CONF", help="--balance synthesize: keep only synthetic samples the run's evaluation classifier assigns to their class with probability >= CONF (others are rejected as off_class). [default: no filter]")
@click.option("--synth-truncation", type=float, metavar="T", help="--balance synthesize: truncation trick, noise values with |z| > T redrawn. [default: none]")
@click.option("--synth-option", "synth_option_pairs", multiple=True, metavar="KEY=VALUE", help="--balance synthesize: further gan: source option (ema=0, checkpoint=last, classifier_steps=N, classifier_width=W, cache_dir=DIR, data=PATH, max_rounds=R, batch_size=B). Repeatable.")
@click.option("--max-synthetic-share", type=float, help="--balance synthesize: refuse to make more than this share of a class's training samples synthetic. [default: 0.5]")
@click.option("--sampling-strategy", help="imbalanced-learn vocabulary: auto, all, minority, majority, 'not minority', 'not majority', one count, or JSON {\"cat\": 5000}. [default: auto]")
@click.option("--no-augment", is_flag=True, default=None, help="Oversampled copies are exact copies (for digits, text: flips change meaning).")
@click.option("--min-class-count", type=int, help="Balancing refuses classes with fewer originals than this. [default: 1]")
@click.option("--drop-small-classes", is_flag=True, default=None, help="Drop classes below --min-class-count (rejected as small_class) instead of failing.")
@click.option("--val-fraction", type=float, help="Stratified validation split, duplicates kept on one side (split 'val'). [default: 0]")
@click.option("--keep-staging", is_flag=True, default=None, help="Keep the staging area (OUTPUT/.staging) after a successful build.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace an existing dataset in OUTPUT (kept intact until the new one is complete).")
@click.option("--allow-private-network", is_flag=True, default=None, help="Web sources: allow private, loopback and link-local addresses (intranets, tests); refused by default (SSRF guard).")
@click.option("--retry-failed", is_flag=True, default=None, help="Web sources: fetch again the URLs that failed in an earlier build of OUTPUT (from OUTPUT/.cache/web) and rebuild the dataset (the rest comes from the cache).")
@click.option("--web", "web_options", multiple=True, metavar="KEY=VALUE", help="Web source option for every urls:/crawl: source (user_agent, concurrency, host_concurrency, host_rate, read_timeout_s, retries, max_bytes, noai, include, exclude, label, ...; see docs/WEB.md). Repeatable.")
@click.option("--max-depth", type=int, help="crawl: sources: link depth to follow from the start page. [default: no limit]")
@click.option("--max-pages", type=int, help="crawl: sources: pages to fetch at most. [default: 1000]")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and the sources' partitions, then stop.")
@_clean_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def build(sources: tuple[str, ...], config_file: str | None, dry_run: bool, quiet: bool, **flags: Any) -> None:
    """Build a dataset from SOURCES (default: synth:shapes) into OUTPUT.

    Images are decoded, oriented, converted and fitted to SIZE, cleaned
    (exact and near duplicates, label conflicts, blank, dark, light, blurry
    and out-of-aspect images; see `gandata clean`), classes optionally
    balanced (--balance; `--balance synthesize --synth-from RUN_DIR` fills
    rare classes with samples of a conditional gantrain generator, marked
    synthetic) and a validation split cut (--val-fraction; see
    docs/BALANCE.md), then written as safetensors shards with a manifest,
    samples.parquet (every sample's origin) and rejected.jsonl (every input
    left out, with its reason). An interrupted build resumes when re-run with
    the same command.
    """
    from gandata.pipeline.inputs import (
        build_fingerprint,
        open_sources,
        open_synth_probe,
    )
    from gandata.pipeline.run import build as run_build

    def resolve() -> Any:
        data: dict[str, Any] = load_config_file(config_file) if config_file else {}
        image = dict(data.get("image", {}) or {})
        fmt = dict(data.get("format", {}) or {})
        if sources:
            data["sources"] = list(sources)
        labels = flags.pop("labels")
        per_source = {k: v for k, v in (
            ("image_column", flags.pop("image_column")), ("label_column", flags.pop("label_column")),
            ("license", flags.pop("license_name")),
        ) if v is not None}
        for key, section in (
            ("size", image), ("channels", image), ("resize", image), ("fill", image), ("background", image),
            ("min_size", image), ("max_upscale", image), ("max_pixels", image), ("draft_gap", image),
            ("normalize", fmt), ("dtype", fmt), ("shard_size", fmt),
        ):
            value = flags.pop(key)
            if value is not None:
                section[key] = int(value) if key == "channels" else value
        balance = dict(data.get("balance", {}) or {})
        synth_pairs = flags.pop("synth_option_pairs")
        if synth_pairs:
            options = dict(balance.get("synth_options", {}) or {})
            for pair in synth_pairs:
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--synth-option")
                options[key.strip()] = value.strip()
            balance["synth_options"] = options
        for key in ("balance", "sampling_strategy", "min_class_count", "drop_small_classes", "val_fraction",
                    "synth_from", "synth_filter", "synth_truncation", "max_synthetic_share"):
            value = flags.pop(key)
            if value is not None:
                balance["mode" if key == "balance" else key] = value
        if flags.pop("no_augment"):
            balance["augment"] = False
        if balance:
            data["balance"] = balance
        web = _web_params(flags.pop("web_options"), flags.pop("max_depth"), flags.pop("max_pages"))
        _pop_clean_flags(flags, data)
        no_dedup = flags.pop("no_dedup")
        if no_dedup:
            data["dedup"] = False
        for key, value in flags.items():
            if value is not None:
                data[key] = value
        if image:
            data["image"] = image
        if fmt:
            data["format"] = fmt
        if per_source:
            raw = data.get("sources") or ["synth:shapes"]
            data["sources"] = [
                {"uri": s, **per_source} if isinstance(s, str) else {**per_source, **s}
                for s in (raw if isinstance(raw, list) else [raw])
            ]
        if web:
            raw = data.get("sources") or ["synth:shapes"]
            data["sources"] = [
                _with_web_params(s, web) for s in (raw if isinstance(raw, list) else [raw])
            ]
        if labels:
            raw = data.get("sources") or ["synth:shapes"]
            data["sources"] = [
                {"uri": s, "labels": labels} if isinstance(s, str) else {**s, "labels": s.get("labels", labels)}
                for s in (raw if isinstance(raw, list) else [raw])
            ]
        return build_config_from_mapping(data)

    config = _run(resolve)
    if dry_run:
        def show() -> None:
            opened = open_sources(config)
            click.echo(json.dumps(config.to_json(), indent=2))
            for source in opened:
                click.echo(f"source {source.uri}: {len(source.partitions())} partition(s)")
            click.echo(f"build fingerprint: {build_fingerprint(config, opened, open_synth_probe(config))}")
        _run(show)
        return
    bars = PhaseBars(quiet)
    try:
        summary = _run(lambda: run_build(config, progress=bars))
    finally:
        bars.close()
    if quiet:
        return
    if summary.up_to_date:
        click.echo(f"{summary.output}: already built with this config and these inputs; nothing to do")
        return
    rejected = sum(summary.rejections.values())
    click.echo(f"built {summary.output}: {summary.num_samples} samples, {len(summary.classes)} classes, {rejected} rejected")
    for reason, count in summary.rejections.items():
        click.echo(f"  rejected {reason}: {count}")
    if summary.synthetic:
        _echo_synthetic(summary.synthetic)
    if summary.reused_partitions or summary.reused_shards:
        click.echo(f"  resumed: reused {summary.reused_partitions} ingest partition(s), {summary.reused_shards} shard(s)")
    click.echo("  " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))


def _echo_synthetic(record: dict[str, Any]) -> None:
    """The synthetic fill's summary after `gandata build --balance synthesize`."""
    click.echo(f"  synthetic fill from {record.get('run')} (checkpoint sha256 {str(record.get('checkpoint_sha256'))[:12]}, "
               f"{record.get('rounds')} round(s), filter {record.get('filter')}):")
    for name, target in record.get("targets", {}).items():
        count = record["counts"].get(name, 0)
        if not record["requested"].get(name):
            continue
        rejected = record.get("rejected_off_class", {}).get(name, 0)
        extra = f", {rejected} rejected off_class" if record.get("filter") is not None else ""
        click.echo(f"    {name}: {record['real_counts'][name]} real + {count} synthetic = {record['real_counts'][name] + count}"
                   f" (target {target}, {100 * record['shares'][name]:.0f}% synthetic{extra})")
    for name, short in record.get("shortfall", {}).items():
        click.echo(f"  warning: class {name!r} is {short} sample(s) short of its target: the generator's samples were "
                   "rejected by the filter or by cleaning (see rejected.jsonl)", err=True)


@main.command(epilog="Example:\n\n  gandata clean ./photos --report audit/ --size 64\n\n  gandata clean ./photos --report audit/ --near-dup-radius 8 --min-std 5")
@click.argument("sources", nargs=-1)
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False), help="Directory for report.md, summary.json, issues.parquet and grid-<reason>.png.")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@click.option("--labels", help="CSV file (path,label) labelling the files of a folder/archive source.")
@click.option("--size", type=int, help="Images are fitted to SIZE x SIZE before scoring, as in a build. [default: 64]")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 (grayscale) or 3 (RGB). [default: 3]")
@click.option("--resize", type=click.Choice(["crop", "pad", "stretch"]), help="Center-crop, letterbox-pad or stretch to square. [default: crop]")
@click.option("--workers", type=int, help="Worker processes, this one included; 0 = one per core. [default: 0]")
@click.option("--no-dedup", is_flag=True, default=None, help="Keep exact duplicates.")
@click.option("--keep-staging", is_flag=True, default=False, help="Keep REPORT/.staging (the decoded images) after the report.")
@_clean_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def clean(sources: tuple[str, ...], report_dir: str, config_file: str | None, keep_staging: bool, quiet: bool, **flags: Any) -> None:
    """Audit SOURCES without building: run ingest and the cleaning checks and
    write a report into REPORT (counts per reason and class, score
    percentiles, example grids with each duplicate beside the copy kept, and
    issues.parquet with every image's scores). Run it before choosing
    thresholds; the same flags then tune `gandata build`.
    """
    from gandata.pipeline.audit import clean_report

    def resolve() -> Any:
        data: dict[str, Any] = load_config_file(config_file) if config_file else {}
        data.pop("output", None)
        image = dict(data.get("image", {}) or {})
        if sources:
            data["sources"] = list(sources)
        for key in ("size", "channels", "resize"):
            value = flags.pop(key)
            if value is not None:
                image[key] = int(value) if key == "channels" else value
        if image:
            data["image"] = image
        _pop_clean_flags(flags, data)
        if flags.pop("no_dedup"):
            data["dedup"] = False
        if flags.get("workers") is not None:
            data["workers"] = flags.pop("workers")
        labels = flags.pop("labels", None)
        if labels:
            raw = data.get("sources") or ["synth:shapes"]
            data["sources"] = [{"uri": s, "labels": labels} if isinstance(s, str) else s for s in (raw if isinstance(raw, list) else [raw])]
        return build_config_from_mapping(data)

    config = _run(resolve)
    bars = PhaseBars(quiet)
    try:
        summary = _run(lambda: clean_report(config, report_dir, progress=bars, keep_staging=keep_staging))
    finally:
        bars.close()
    if quiet:
        return
    click.echo(f"{summary.report_dir}: {summary.num_inputs} inputs, {summary.num_kept} would be kept")
    for reason, count in summary.reasons.items():
        click.echo(f"  {reason}: {count}")
    for line in summary.would_stop:
        click.echo(f"  would stop a build: {line}")
    click.echo(f"  report: {summary.report_dir}/report.md, issues.parquet, {len(summary.grids)} grid(s)")


@main.command()
@click.argument("path", type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
def verify(path: str, quiet: bool) -> None:
    """Re-hash every shard of the dataset at PATH and check it against the manifest.

    Exit 0 when intact; exit 1 naming the first bad shard otherwise.
    """
    from gandata.dataset.verify import verify_dataset

    report = _run(lambda: verify_dataset(path))
    if report.ok:
        if not quiet:
            click.echo(f"{path}: OK ({report.shards_checked} shards, {report.samples_checked} samples)")
        return
    click.echo(f"{path}: FAILED", err=True)
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


@main.command(epilog="Examples:\n\n  gandata stats gandata-out\n\n  gandata stats ./photos --json\n\n  gandata stats data/cats --plot balance.png")
@click.argument("targets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (keys documented in docs/BALANCE.md).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG: class-count bars (before/after balancing when known) and a sample grid per class.")
@click.option("--floor", type=int, default=1000, show_default=True, help="Flag classes with fewer samples than this (GANs degrade sharply below ~1,000 images).")
@click.option("--beta", type=float, default=0.999, show_default=True, help="beta of the effective number of samples (Cui et al. 2019).")
@click.option("--split", help="Audit one split of a built dataset (train, val). [default: all]")
@click.option("--size", type=int, help="Raw sources: decode at this size. [default: 64]")
@click.option("--labels", help="Raw sources: CSV (path,label) labelling a folder/archive.")
@click.option("--workers", type=int, help="Raw sources: worker processes, this one included; 0 = one per core. [default: 0]")
def stats(targets: tuple[str, ...], as_json: bool, plot: str | None, floor: int, beta: float, split: str | None,
          size: int | None, labels: str | None, workers: int | None) -> None:
    """Audit the class balance of a built dataset, or of raw SOURCES before any build.

    TARGETS is a dataset directory (one holding manifest.json) or source URIs
    (./folder, archive.zip, synth:shapes?imbalance=25, ...); sources are
    ingested exactly as `gandata build` would, into a temporary directory.
    Reports per class count, share and a bar; min/median/max; imbalance ratio,
    normalized entropy, effective number of classes exp(H), Gini, effective
    number of samples; classes below --floor; counts after de-duplication;
    thumbnail diversity and duplicate share; mean/std; rejections; sources.
    """
    from pathlib import Path as _Path

    from gandata.pipeline.audit import audit_sources
    from gandata.stats.audit import audit_dataset

    def run() -> Any:
        if floor < 0:
            raise GandataError(f"--floor: {floor} must be 0 or more")
        if not 0.0 <= beta < 1.0:
            raise GandataError(f"--beta: {beta} must be in [0, 1)")
        if len(targets) == 1 and (_Path(targets[0]) / "manifest.json").is_file():
            return audit_dataset(targets[0], beta=beta, floor=floor, split=split)
        if split is not None:
            raise GandataError(f"--split: {targets[0]} is not a built dataset (no manifest.json); --split needs one")
        data: dict[str, Any] = {"sources": [{"uri": t, "labels": labels} if labels else t for t in targets]}
        if size is not None:
            data["image"] = {"size": size}
        if workers is not None:
            data["workers"] = workers
        return audit_sources(build_config_from_mapping(data), beta=beta, floor=floor)

    audit = _run(run)
    data = audit.to_json()
    if audit.kind == "dataset":
        # Licences are summarised in the manifest only (not in the audit).
        from gandata.dataset.manifest import read_manifest
        from gandata.stats.balance import provenance_tables

        manifest = _run(lambda: read_manifest(targets[0]))
        _, data["licenses"] = provenance_tables(manifest)
        if manifest.get("clean"):
            data["clean"] = manifest["clean"]
    if plot:
        from gandata.stats.preview import (
            bar_chart,
            grid_image,
            save_png,
            stack_vertically,
        )

        def draw() -> None:
            series = {"after": audit.balance.counts}
            if audit.counts_before_balancing is not None:
                series = {"before": audit.counts_before_balancing, "after": audit.balance.counts}
            parts = [bar_chart(series)]
            if any(audit.samples.values()):
                parts.append(grid_image(audit.samples, max(len(v) for v in audit.samples.values())))
            save_png(stack_vertically(parts), plot, "--plot")
        _run(draw)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _print_audit(data)
    if plot:
        click.echo(f"plot written to {plot}")


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_audit(data: dict[str, Any]) -> None:
    shape = f", image shape {data['image_shape']}" if data.get("image_shape") else ""
    click.echo(f"{data['target']} ({data['kind']}): {data['num_samples']} samples, {len(data['classes'])} classes{shape}")
    if data.get("num_unlabeled"):
        click.echo(f"unlabeled samples: {data['num_unlabeled']}")
    if data["classes"]:
        width = max(max(len(c["name"]) for c in data["classes"]), 5)
        top = max(c["count"] for c in data["classes"]) or 1
        dedup = data.get("counts_deduplicated") is not None
        click.echo(f"  {'class':<{width}}  {'count':>8}  {'share':>6}  {'dedup':>8}  {'eff.n':>8}  {'divers':>6}  {'dup%':>5}")
        for c in data["classes"]:
            bar = "#" * round(24 * c["count"] / top)
            flag = "  < floor" if c["below_floor"] else ""
            dup = "n/a" if c.get("duplicate_share") is None else f"{100 * c['duplicate_share']:.0f}"
            click.echo(
                f"  {c['name']:<{width}}  {c['count']:>8}  {100 * c['share']:5.1f}%  "
                f"{(c.get('count_deduplicated', '') if dedup else ''):>8}  {c['effective_samples']:8.1f}  "
                f"{_fmt(c.get('diversity'), '.3f'):>6}  {dup:>5}  {bar}{flag}"
            )
        click.echo(f"class size min/median/max: {data['min_count']} / {data['median_count']:g} / {data['max_count']}")
        ratio = data["imbalance_ratio"]
        click.echo(f"imbalance ratio (max/min): {'inf (a class is empty)' if ratio is None else f'{ratio:.2f}'}")
        click.echo(f"normalized entropy: {_fmt(data['normalized_entropy'])}   effective classes exp(H): {_fmt(data['effective_classes'], '.2f')}   Gini: {_fmt(data['gini'])}")
        if data.get("synthetic_share") is not None:
            click.echo(f"synthetic samples: {data['num_synthetic']} of {data['num_samples']} (generator output, "
                       "samples.parquet 'synthetic'); share per class:")
            for c in data["classes"]:
                click.echo(f"  {c['name']:<{width}}  {c['synthetic']:>8}  {100 * c['synthetic_share']:5.1f}%")
        if data.get("counts_before_balancing"):
            click.echo("before balancing: " + ", ".join(f"{k} {v}" for k, v in data["counts_before_balancing"].items()))
        if data["below_floor"]:
            click.echo(
                f"warning: {len(data['below_floor'])} class(es) below {data['floor']} images ({', '.join(data['below_floor'])}): "
                "GANs degrade sharply there; collect more, or build with --balance oversample (augmented copies)"
            )
    if data.get("mean"):
        click.echo("mean: " + " ".join(f"{m:.4f}" for m in data["mean"]) + "   std: " + " ".join(f"{s:.4f}" for s in data["std"]))
    if data.get("splits"):
        click.echo("splits: " + ", ".join(f"{k} {v}" for k, v in data["splits"].items()))
    _echo_rejections(data)
    _echo_provenance(data)


def _echo_rejections(manifest: dict[str, Any]) -> None:
    """The rejection table of `gandata stats` (counts by reason, from the manifest)."""
    from gandata.records import REASONS

    rejections = manifest.get("rejections") or {}
    if not rejections:
        click.echo("rejected: none")
        return
    total = sum(rejections.values())
    click.echo(f"rejected: {total} (details in rejected.jsonl)")
    width = max(len(r) for r in rejections)
    for reason, count in sorted(rejections.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {reason:<{width}}  {count:>8}  {REASONS.get(reason, '')}")
    kept_gray = (manifest.get("clean") or {}).get("grayscale_kept")
    if kept_gray:
        click.echo(f"  (kept but flagged grayscale: {kept_gray}; --drop-grayscale drops them)")


def _echo_provenance(data: dict[str, Any]) -> None:
    """The per-source and per-licence tables of ``gandata stats``."""
    from gandata.stats.balance import provenance_tables

    by_source, _ = provenance_tables({"sources": data.get("sources", [])})
    by_license = data.get("licenses") or []
    if by_source:
        width = max(len(r["source"]) for r in by_source)
        click.echo("per source:")
        for r in by_source:
            click.echo(f"  {r['source']:<{width}}  {r['num_samples']:>8}  {100 * r['share']:5.1f}%  rejected {r['num_rejected']:>6}  license {r['license']}")
    if by_license:
        width = max(len(r["license"]) for r in by_license)
        click.echo("per license:")
        for r in by_license:
            click.echo(f"  {r['license']:<{width}}  {r['num_samples']:>8}  {100 * r['share']:5.1f}%")


@main.command()
@click.argument("path", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--per-class", type=int, default=8, show_default=True, help="Samples per class (one row per class).")
@click.option("--split", help="Split to show (train, val). [default: train]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample choice.")
def preview(path: str, output: str, per_class: int, split: str | None, seed: int) -> None:
    """Write a grid of samples of the dataset at PATH: one row per class.

    Float datasets are denormalized with the manifest's normalization."""
    from gandata.stats.preview import grid_image, preview_samples, save_png

    def run() -> int:
        samples = preview_samples(path, per_class, split=split, seed=seed)
        save_png(grid_image(samples, per_class), output, "--output")
        return sum(len(v) for v in samples.values())

    n = _run(run)
    click.echo(f"wrote {output}: {n} samples")


@main.command()
@click.argument("path", type=click.Path())
@click.option("--to", "target", nargs=2, required=True, type=(click.Choice(["hf", "folder"]), click.Path()),
              metavar="FORMAT DIR", help="hf DIR: a datasets dataset (save_to_disk; Image + ClassLabel features); folder DIR: an ImageFolder tree of PNGs.")
@click.option("--overwrite", is_flag=True, help="Replace DIR when it exists and is not empty.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def export(path: str, target: tuple[str, str], overwrite: bool, quiet: bool) -> None:
    """Export the dataset at PATH for other tools: `--to hf DIR` (reload with
    datasets.load_from_disk, publish with push_to_hub, or build again from
    hf-disk:DIR) or `--to folder DIR` (an ImageFolder tree of PNGs)."""
    from gandata.dataset.export import export as run_export

    fmt, dest = target
    summary = _run(lambda: run_export(path, fmt, dest, overwrite=overwrite))
    if not quiet:
        splits = ", ".join(f"{k} {v}" for k, v in summary.splits.items())
        click.echo(f"exported {path} to {summary.path} ({fmt}): {summary.num_samples} samples ({splits})")


if __name__ == "__main__":  # pragma: no cover
    main()
