"""``gandata build``: resolve the options, run the pipeline, print the summary."""

from __future__ import annotations

import json
from typing import Any

import click

from gandata.cli.app import guarded
from gandata.cli.options import GroupedCommand, merge_flags, table_options
from gandata.cli.progress import PhaseBars
from gandata.config import build_config_from_mapping, load_config_file
from gandata.sources import schemes


@click.command(
    cls=GroupedCommand,
    epilog="Sources (URI forms):\n\n" + "\n\n".join(f"  {h}" for _, h in schemes().values()) + "\n\n"
    "Several sources merge into one dataset; per-source options (label_map, label, max_samples, weight, "
    "license, image_column, label_column) go in the config file's [[sources]] tables (docs/SOURCES.md).\n\n"
    "Examples:\n\n  gandata build\n\n  gandata build ./photos -o data/photos --size 64 --workers 8\n\n"
    "  gandata build hf:mnist idx:data/emnist-letters-train-images-idx3-ubyte.gz --size 28 --channels 1\n\n"
    "  gandata build --config examples/photos.toml --seed 1",
)
@click.argument("sources", nargs=-1)
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), help="TOML (or YAML) build config; flags override it.")
@table_options("build")
@click.option("--dry-run", is_flag=True, help="Print the resolved config and the sources' partitions, then stop.")
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
    # Imported here so that `gandata --help` and the other commands start
    # without loading the pipeline's dependencies.
    from gandata.pipeline import build as run_build
    from gandata.pipeline import generator_size, open_inputs

    def resolve() -> Any:
        data: dict[str, Any] = load_config_file(config_file) if config_file else {}
        if sources:
            data["sources"] = list(sources)
        data = merge_flags(flags, data, "build")
        config = build_config_from_mapping(data)
        if "size" not in (data.get("image") or {}):
            # No size asked for: samples of a generator keep its own size.
            size = generator_size(config)
            if size is not None and size != config.image.size_px:
                data["image"] = {**(data.get("image") or {}), "size": size}
                config = build_config_from_mapping(data)
        return config

    config = guarded(resolve)
    if dry_run:
        def show() -> None:
            inputs = open_inputs(config)
            click.echo(json.dumps(config.to_json(), indent=2))
            for source in inputs.sources:
                click.echo(f"source {source.uri}: {len(source.partitions())} partition(s)")
            click.echo(f"build fingerprint: {inputs.fingerprint}")
        guarded(show)
        return
    bars = PhaseBars(quiet)
    try:
        summary = guarded(lambda: run_build(config, progress=bars))
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
    # A class every input of which was rejected (a gan: source asked for
    # counts=star:300 whose samples all failed the filter) must not pass
    # unnoticed in a summary of totals.
    for name in summary.classes:
        if summary.class_counts.get(name, 0) == 0:
            click.echo(f"warning: class {name!r} has no samples: every input of it was rejected or none was given "
                       "(reasons in rejected.jsonl; `gandata stats` shows the table)", err=True)
    fraction = config.balance.val_fraction
    if fraction > 0 and summary.preassigned_splits and summary.splits.get("val", 0) == summary.preassigned_splits.get("val", 0):
        # The sources brought their own splits (a folder's train/ and val/):
        # a fraction that moved nothing would otherwise pass unnoticed.
        click.echo(f"warning: --val-fraction {fraction:g} cut no sample: the validation split is the one the source "
                   "brought (splits per source: docs/SOURCES.md, \"Splits a source brings\")", err=True)
    for line in summary.web_hosts:
        click.echo(f"  {line}")
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
