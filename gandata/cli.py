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
from gandata.sources import SCHEMES


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
            bar = self._bars[phase] = tqdm(total=total, desc=f"{phase:>7}", unit="part" if phase == "ingest" else "shard", leave=True, file=sys.stderr)
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
    return "\n".join(f"  {help_text}" for _, help_text in SCHEMES.values())


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
    epilog="Sources (URI forms):\n\n" + "\n\n".join(f"  {h}" for _, h in SCHEMES.values()) + "\n\n"
    "Examples:\n\n  gandata build\n\n  gandata build ./photos -o data/photos --size 64 --workers 8\n\n"
    "  gandata build --config examples/photos.toml --seed 1",
)
@click.argument("sources", nargs=-1)
@click.option("-o", "--output", help=f"Output directory. [default: {DEFAULT_OUTPUT}]")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@click.option("--labels", help="CSV file (path,label) labelling the files of a folder/archive source (applies to every such source).")
@click.option("--size", type=int, help="Output images are SIZE x SIZE pixels. [default: 64]")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 (grayscale) or 3 (RGB). [default: 3]")
@click.option("--resize", type=click.Choice(["crop", "pad", "stretch"]), help="Center-crop, letterbox-pad or stretch to square. [default: crop]")
@click.option("--fill", help="Pad colour for --resize pad: black, white, #rrggbb or r,g,b. [default: black]")
@click.option("--background", help="Colour transparent pixels are composited on. [default: black]")
@click.option("--min-size", type=int, help="Reject images whose shorter side is below this many pixels (too_small). [default: 16]")
@click.option("--max-upscale", type=float, help="Reject images needing more upscaling than this factor (too_small); smaller upscales are counted. [default: 4.0]")
@click.option("--max-pixels", type=int, help="Decompression-bomb limit in pixels. [default: 90000000]")
@click.option("--normalize", type=click.Choice(["minus1-1", "zero-1", "center", "standardize"]), help="Normalization recorded (uint8) or applied (float dtypes). [default: minus1-1]")
@click.option("--dtype", type=click.Choice(["uint8", "float16", "float32"]), help="Stored dtype; uint8 stores raw pixels. [default: uint8]")
@click.option("--shard-size", type=int, help="Samples per shard. [default: 4096]")
@click.option("--seed", type=int, help="Seed for every random choice (shuffle, synthesis); recorded in the manifest. [default: 0]")
@click.option("--workers", type=int, help="Worker processes; 0 = one per core. [default: 0]")
@click.option("--executor", type=click.Choice(["process", "serial"]), help="Where the parallel stages run. [default: process]")
@click.option("--no-dedup", is_flag=True, default=None, help="Keep exact duplicates.")
@click.option("--keep-staging", is_flag=True, default=None, help="Keep the staging area (OUTPUT/.staging) after a successful build.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace an existing dataset in OUTPUT (kept intact until the new one is complete).")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and the sources' partitions, then stop.")
@_clean_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def build(sources: tuple[str, ...], config_file: str | None, dry_run: bool, quiet: bool, **flags: Any) -> None:
    """Build a dataset from SOURCES (default: synth:shapes) into OUTPUT.

    Images are decoded, oriented, converted and fitted to SIZE, cleaned
    (exact and near duplicates, label conflicts, blank, dark, light, blurry
    and out-of-aspect images; see `gandata clean`), then written as safetensors shards with a manifest,
    samples.parquet (every sample's origin) and rejected.jsonl (every input
    left out, with its reason). An interrupted build resumes when re-run with
    the same command.
    """
    from gandata.pipeline import build as run_build, build_fingerprint, open_sources

    def resolve() -> Any:
        data: dict[str, Any] = load_config_file(config_file) if config_file else {}
        image = dict(data.get("image", {}) or {})
        fmt = dict(data.get("format", {}) or {})
        if sources:
            data["sources"] = list(sources)
        labels = flags.pop("labels")
        for key, section in (
            ("size", image), ("channels", image), ("resize", image), ("fill", image), ("background", image),
            ("min_size", image), ("max_upscale", image), ("max_pixels", image),
            ("normalize", fmt), ("dtype", fmt), ("shard_size", fmt),
        ):
            value = flags.pop(key)
            if value is not None:
                section[key] = int(value) if key == "channels" else value
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
            click.echo(f"build fingerprint: {build_fingerprint(config, opened)}")
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
    if summary.reused_partitions or summary.reused_shards:
        click.echo(f"  resumed: reused {summary.reused_partitions} ingest partition(s), {summary.reused_shards} shard(s)")
    click.echo("  " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.seconds.items()))


@main.command(epilog="Example:\n\n  gandata clean ./photos --report audit/ --size 64\n\n  gandata clean ./photos --report audit/ --near-dup-radius 8 --min-std 5")
@click.argument("sources", nargs=-1)
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False), help="Directory for report.md, summary.json, issues.parquet and grid-<reason>.png.")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@click.option("--labels", help="CSV file (path,label) labelling the files of a folder/archive source.")
@click.option("--size", type=int, help="Images are fitted to SIZE x SIZE before scoring, as in a build. [default: 64]")
@click.option("--channels", type=click.Choice(["1", "3"]), help="1 (grayscale) or 3 (RGB). [default: 3]")
@click.option("--resize", type=click.Choice(["crop", "pad", "stretch"]), help="Center-crop, letterbox-pad or stretch to square. [default: crop]")
@click.option("--workers", type=int, help="Worker processes; 0 = one per core. [default: 0]")
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
    from gandata.clean.report import write_report

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
        summary = _run(lambda: write_report(config, report_dir, progress=bars, keep_staging=keep_staging))
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


@main.command()
@click.argument("path", type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
def verify(path: str, quiet: bool) -> None:
    """Re-hash every shard of the dataset at PATH and check it against the manifest.

    Exit 0 when intact; exit 1 naming the first bad shard otherwise.
    """
    from gandata.verify import verify_dataset

    report = _run(lambda: verify_dataset(path))
    if report.ok:
        if not quiet:
            click.echo(f"{path}: OK ({report.shards_checked} shards, {report.samples_checked} samples)")
        return
    click.echo(f"{path}: FAILED", err=True)
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(1)


@main.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (keys documented in docs/FORMAT.md).")
def stats(path: str, as_json: bool) -> None:
    """Audit the class balance of the dataset at PATH: count and share per class,
    imbalance ratio (max/min) and normalized Shannon entropy (1 = even)."""
    from gandata.stats import dataset_balance

    balance, manifest = _run(lambda: dataset_balance(path))
    data = balance.to_json()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{path}: {data['num_samples']} samples, {len(data['classes'])} classes, image shape {manifest['image_shape']}")
    if manifest.get("num_unlabeled"):
        click.echo(f"unlabeled samples: {manifest['num_unlabeled']}")
    if data["classes"]:
        width = max(len(c["name"]) for c in data["classes"])
        top = max(c["count"] for c in data["classes"]) or 1
        for c in data["classes"]:
            bar = "#" * round(30 * c["count"] / top)
            click.echo(f"  {c['name']:<{width}}  {c['count']:>8}  {100 * c['share']:5.1f}%  {bar}")
        ratio = balance.imbalance_ratio
        click.echo(f"imbalance ratio (max/min): {'inf (a class is empty)' if ratio == float('inf') else f'{ratio:.2f}'}")
        click.echo(f"normalized entropy: {data['normalized_entropy']:.4f}")
    _echo_rejections(manifest)


if __name__ == "__main__":  # pragma: no cover
    main()
