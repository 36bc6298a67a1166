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
@click.option("--allow-private-network", is_flag=True, default=None, help="Web sources: allow private, loopback and link-local addresses (intranets, tests); refused by default (SSRF guard).")
@click.option("--retry-failed", is_flag=True, default=None, help="Web sources: fetch again the URLs that failed in an earlier build of OUTPUT (from OUTPUT/.cache/web) and rebuild the dataset (the rest comes from the cache).")
@click.option("--web", "web_options", multiple=True, metavar="KEY=VALUE", help="Web source option for every urls:/crawl: source (user_agent, concurrency, host_concurrency, host_rate, read_timeout_s, retries, max_bytes, noai, include, exclude, label, ...; see docs/WEB.md). Repeatable.")
@click.option("--max-depth", type=int, help="crawl: sources: link depth to follow from the start page. [default: no limit]")
@click.option("--max-pages", type=int, help="crawl: sources: pages to fetch at most. [default: 1000]")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and the sources' partitions, then stop.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary.")
def build(sources: tuple[str, ...], config_file: str | None, dry_run: bool, quiet: bool, **flags: Any) -> None:
    """Build a dataset from SOURCES (default: synth:shapes) into OUTPUT.

    Images are decoded, oriented, converted and fitted to SIZE, exact
    duplicates removed, then written as safetensors shards with a manifest,
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
        web = _web_params(flags.pop("web_options"), flags.pop("max_depth"), flags.pop("max_pages"))
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


if __name__ == "__main__":  # pragma: no cover
    main()
