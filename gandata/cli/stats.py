"""``gandata stats``: the class-balance audit of a dataset or of raw sources, as
a table, JSON or a plot."""

from __future__ import annotations

import json
from typing import Any

import click

from gandata.cli.app import guarded
from gandata.cli.options import GroupedCommand, merge_flags, table_options
from gandata.cli.progress import PhaseBars
from gandata.config import build_config_from_mapping
from gandata.errors import GandataError


@click.command(cls=GroupedCommand, epilog="Examples:\n\n  gandata stats gandata-out\n\n  gandata stats ./photos --json\n\n  gandata stats data/cats --plot balance.png")
@click.argument("targets", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (keys documented in docs/BALANCE.md).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a PNG: class-count bars (before/after balancing when known) and a sample grid per class.")
@click.option("--floor", type=int, default=1000, show_default=True, help="Flag classes with fewer samples than this (GANs degrade sharply below ~1,000 images).")
@click.option("--beta", type=float, default=0.999, show_default=True, help="beta of the effective number of samples (Cui et al. 2019).")
@click.option("--split", help="Audit one split of a built dataset (train, val). [default: all]")
@click.option("--card", is_flag=True, help="Print the dataset card (README.md: sources, licences, cleaning, balance, rebuild command) instead.")
@table_options("stats")
def stats(targets: tuple[str, ...], as_json: bool, plot: str | None, floor: int, beta: float, split: str | None,
          card: bool, **flags: Any) -> None:
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

    if card:
        from gandata.stats.card import dataset_card

        click.echo(guarded(lambda: dataset_card(targets)), nl=False)
        return

    def run() -> Any:
        if floor < 0:
            raise GandataError(f"--floor: {floor} must be 0 or more")
        if not 0.0 <= beta < 1.0:
            raise GandataError(f"--beta: {beta} must be in [0, 1)")
        if len(targets) == 1 and (_Path(targets[0]) / "manifest.json").is_file():
            return audit_dataset(targets[0], beta=beta, floor=floor, split=split)
        if split is not None:
            raise GandataError(f"--split: {targets[0]} is not a built dataset (no manifest.json); --split needs one")
        data = merge_flags(flags, {"sources": list(targets)}, "stats")
        return audit_sources(build_config_from_mapping(data), beta=beta, floor=floor, progress=bars)

    # --json is for programs: no progress around it.
    bars = PhaseBars(quiet=as_json)
    try:
        audit = guarded(run)
    finally:
        bars.close()
    data = audit.to_json()
    if audit.kind == "dataset":
        # Licences are summarised in the manifest only (not in the audit).
        from gandata.dataset.manifest import read_manifest
        from gandata.stats.balance import provenance_tables

        manifest = guarded(lambda: read_manifest(targets[0]))
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
        guarded(draw)
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
    # The header counts every sample, as `gandata build` does; the class
    # table below counts the labelled ones.
    unlabeled = int(data.get("num_unlabeled") or 0)
    count = f"{data['num_samples'] + unlabeled} samples ({data['num_samples']} labelled, {unlabeled} unlabeled)" \
        if unlabeled else f"{data['num_samples']} samples"
    click.echo(f"{data['target']} ({data['kind']}): {count}, {len(data['classes'])} classes{shape}")
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
    # Raw sources are ingested into a temporary folder that is gone by now:
    # point to the command that keeps the details instead.
    where = "in rejected.jsonl" if manifest.get("kind") == "dataset" else "per file: gandata clean SOURCES --report DIR"
    click.echo(f"rejected: {total} (details {where})")
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
