"""Commands on a built dataset: ``verify``, ``preview`` and ``export``."""

from __future__ import annotations

import sys
from typing import Any

import click

from gandata.cli.app import EXIT_FAILED, guarded
from gandata.cli.progress import PhaseBars


@click.command()
@click.argument("path", type=click.Path())
@click.option("-q", "--quiet", is_flag=True, help="No progress; print only problems.")
def verify(path: str, quiet: bool) -> None:
    """Re-hash every shard of the dataset at PATH and check it against the manifest.

    Exit 0 when intact; exit 1 naming the first bad shard otherwise; exit 2
    when PATH is not a dataset.
    """
    from gandata.dataset.verify import verify_dataset

    bars = PhaseBars(quiet)
    try:
        report = guarded(lambda: verify_dataset(path, progress=lambda done, total: bars("verify", done, total)))
    finally:
        bars.close()
    if report.ok:
        if not quiet:
            click.echo(f"{path}: OK ({report.shards_checked} shards, {report.samples_checked} samples)")
        return
    click.echo(f"error: {path} failed verification:", err=True)
    for problem in report.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(EXIT_FAILED)


@click.command()
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

    n = guarded(run)
    click.echo(f"wrote {output}: {n} samples")


@click.command(epilog="Examples:\n\n  gandata export data/faces --to stylegan faces.zip\n\n"
               "  gandata export data/faces --to stylegan faces/ --split val\n\n"
               "  gandata export data/animals --to cyclegan horse2zebra --domains horse,zebra\n\n"
               "  gandata export data/summer --to cyclegan summer2winter --domain-b data/winter\n\n"
               "  gandata export data/faces --to hf faces-hf   (carries the dataset card, README.md)")
@click.argument("path", type=click.Path())
@click.option("--to", "target", nargs=2, required=True,
              type=(click.Choice(["hf", "folder", "stylegan", "cyclegan"]), click.Path()), metavar="FORMAT DEST",
              help="hf DIR: a datasets dataset (save_to_disk; Image + ClassLabel features) with the dataset card; "
                   "folder DIR: an ImageFolder tree of PNGs (DIR/SPLIT/CLASS/ with several splits; "
                   "`gandata build DIR` reads them back as splits); stylegan OUT.zip|DIR: PNGs + dataset.json as "
                   "StyleGAN2-ADA / StyleGAN3 / EDM read them; cyclegan DIR: trainA/ trainB/ testA/ testB/.")
@click.option("--split", help="stylegan: the split to export. [default: train]")
@click.option("--domains", metavar="A_CLASS,B_CLASS",
              help="cyclegan: the two classes that become domains A and B (with --domain-b: one class of each dataset).")
@click.option("--domain-b", type=click.Path(), metavar="PATH",
              help="cyclegan: a second dataset that is domain B (PATH is domain A).")
@click.option("--overwrite", is_flag=True, help="Replace DEST when it exists and is not empty.")
@click.option("-q", "--quiet", is_flag=True, help="No progress or summary.")
def export(path: str, target: tuple[str, str], split: str | None, domains: str | None, domain_b: str | None,
           overwrite: bool, quiet: bool) -> None:
    """Export the dataset at PATH for other tools (docs/EXPORT.md).

    `--to stylegan OUT.zip` (or a folder) trains StyleGAN2-ADA / StyleGAN3 /
    EDM (`train.py --data OUT.zip [--cond 1]`); `--to cyclegan DIR` trains
    CycleGAN / pix2pix (`--dataroot DIR`); `--to hf DIR` reloads with
    datasets.load_from_disk, publishes with push_to_hub, or builds again from
    hf-disk:DIR; `--to folder DIR` is an ImageFolder tree of PNGs, one per
    split (DIR/train/CLASS/, DIR/val/CLASS/), that `gandata build DIR` builds
    back as one dataset with the same classes and splits."""
    from gandata.dataset.export import export as run_export
    from gandata.errors import ConfigError

    fmt, dest = target

    def run() -> Any:
        pair: tuple[str, str] | None = None
        if domains is not None:
            parts = [p.strip() for p in domains.split(",")]
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"--domains: {domains!r} must be two class names, A_CLASS,B_CLASS")
            pair = (parts[0], parts[1])
        if fmt != "cyclegan" and (pair is not None or domain_b is not None):
            raise ConfigError("--domains/--domain-b: only used with --to cyclegan")
        if fmt != "stylegan" and split is not None:
            raise ConfigError("--split: only used with --to stylegan")
        return run_export(path, fmt, dest, overwrite=overwrite, split=split, domains=pair, other=domain_b,
                          progress=lambda done, total: bars("export", done, total))

    bars = PhaseBars(quiet)
    try:
        summary = guarded(run)
    finally:
        bars.close()
    if not quiet:
        splits = ", ".join(f"{k} {v}" for k, v in summary.splits.items())
        click.echo(f"exported {path} to {summary.path} ({fmt}): {summary.num_samples} samples ({splits})")
        if fmt == "folder" and len(summary.splits) > 1:
            names = ", ".join(summary.splits)
            click.echo(f"  one ImageFolder tree per split ({names}): gandata build {summary.path} builds it back "
                       "as one dataset with these splits")
        elif fmt == "hf" and len(summary.splits) > 1:
            click.echo(f"  build it again with hf-disk:{summary.path} (train) and hf-disk:{summary.path}@validation")
