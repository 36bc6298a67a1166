"""The ``gantrain`` command line: train, sample, eval.

Printing and progress bars live here and nowhere else; every command resolves
its options up front and turns library errors into one-line ``error: ...``
messages naming the option at fault, with gandata's exit statuses (0 done,
1 the operation failed, 2 a bad option or input, 130 interrupted).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click
from click.core import ParameterSource

from gandata.cli.app import EXIT_FAILED, EXIT_USAGE, ErrorStyleGroup
from gantrain.config import (
    ARCHS,
    AUGMENTS,
    CPU_DEFAULTS,
    GPU_DEFAULTS,
    LOSSES,
    LR_DECAYS,
    PLACEMENTS,
    PRECISIONS,
    TrainConfig,
)
from gantrain.errors import EvalError, GantrainError, NonFiniteError

# Shown when PyTorch is missing: the CPU build from PyTorch's own index (a
# plain `pip install torch` on Linux pulls the multi-GB CUDA build).
TORCH_HINT = (
    "gantrain needs PyTorch, which is not installed: pip install torch==2.13.0 --extra-index-url "
    "https://download.pytorch.org/whl/cpu (CPU), or pip install torch (the CUDA build, on a GPU machine)"
)


def _is_main_process() -> bool:
    # Under torchrun only rank 0 talks to the terminal.
    return int(os.environ.get("RANK", "0")) == 0


class TqdmReporter:
    """Progress bar with ETA, losses in the postfix, messages above the bar.

    When stderr is not a terminal (a log file, CI), a plain line per metric
    row (every --log-every steps) instead: carriage-return redraws make a log
    unreadable."""

    def __init__(self, stream: Any = None) -> None:
        self.bar = None
        self.stream = stream if stream is not None else sys.stderr
        self.plain = not bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = 0

    def start(self, total_steps: int, start_step: int) -> None:
        self.total = total_steps
        if self.plain:
            print(f"train: step {start_step} of {total_steps}", file=self.stream, flush=True)
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, desc="train")

    def advance(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def log(self, step: int, row: dict[str, Any]) -> None:
        if self.plain:
            print(f"train: step {step}/{self.total} loss_d {row['loss_d']:.3f} loss_g {row['loss_g']:.3f} "
                  f"d_x {row['d_real']:.2f} d_gz {row['d_fake']:.2f} {row['images_per_s']:.0f} images/s",
                  file=self.stream, flush=True)
            return
        if self.bar is not None:
            self.bar.set_postfix(
                loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}", d_x=f"{row['d_real']:.2f}",
                d_gz=f"{row['d_fake']:.2f}", img_s=f"{row['images_per_s']:.0f}", refresh=False,
            )

    def message(self, text: str) -> None:
        if self.plain:
            print(text, file=self.stream, flush=True)
            return
        from tqdm.auto import tqdm

        tqdm.write(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fail(exc: Exception) -> None:
    """Raise ``exc`` as a ClickException: printed as ``error: ...`` by the
    group, exit 1 when the operation failed (training diverged, evaluation
    could not run), 2 when an option, the data or the run is at fault."""
    if isinstance(exc, click.ClickException):
        raise exc
    error = click.ClickException(str(exc))
    error.exit_code = EXIT_FAILED if isinstance(exc, (NonFiniteError, EvalError)) else EXIT_USAGE
    raise error


class _Group(ErrorStyleGroup):
    """gandata's error style, plus one line instead of a traceback when
    PyTorch is missing (every command but --help needs it)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] != "torch":
                raise
            error = click.ClickException(TORCH_HINT)
            error.exit_code = EXIT_FAILED
            raise error from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="gandata", prog_name="gantrain")
def main() -> None:
    """gantrain: the reference DCGAN, trained on gandata datasets.

    Start with `gandata build`, then `gantrain train gandata-out -o runs/first
    --steps 500 --batch-size 64 --sample-every 100` (a few minutes on a CPU)
    and look at runs/first/samples/. Errors print as `error: ...` on stderr.
    Exit status: 0 done; 1 the operation failed (training diverged,
    evaluation could not run, PyTorch missing); 2 a bad option, dataset or
    run; 130 interrupted.
    """


def _hw(key: str) -> str:
    # Help text of an option whose default depends on the hardware.
    return f"[default: {GPU_DEFAULTS[key]} on a GPU, {CPU_DEFAULTS[key]} on CPU]"


# Options of `train` and the TrainConfig field each one sets.
_TRAIN_FIELDS = {
    "steps": "steps", "batch_size": "batch_size", "conditional": "conditional", "arch": "arch", "loss": "loss",
    "spectral_norm": "spectral_norm", "skip_z": "skip_z", "ema": "ema", "ema_decay": "ema_decay", "lr_decay": "lr_decay", "aux_weight": "aux_weight", "mismatch": "mismatch", "diversity": "diversity", "diffaugment": "diffaugment",
    "flip": "flip", "nz": "nz", "ngf": "ngf", "ndf": "ndf", "lr_g": "lr_g", "lr_d": "lr_d", "beta1": "beta1",
    "beta2": "beta2", "precision": "precision", "channels_last": "channels_last", "compile": "compile",
    "deterministic": "deterministic", "seed": "seed", "device": "device", "placement": "placement",
    "weights": "weights", "split": "split", "log_every": "log_every", "sample_every": "sample_every",
    "checkpoint_every": "checkpoint_every", "eval_every": "eval_every", "eval_samples": "eval_samples",
    "classifier_steps": "classifier_steps", "cache_dir": "cache_dir",
}


def _parse_augment(value: str | None) -> tuple[str, ...]:
    if not value or value.strip() == "none":
        return ()
    policies = tuple(p.strip() for p in value.split(",") if p.strip())
    for p in policies:
        if p not in AUGMENTS:
            raise click.BadParameter(f"{p!r} is not one of {', '.join(AUGMENTS)}", param_hint="--diffaugment")
    return policies


@main.command()
@click.argument("data", type=click.Path(file_okay=False))
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--steps", type=int, default=None, help=f"Total optimisation steps (a resumed run continues up to it) {_hw('steps')}.")
@click.option("--batch-size", type=int, default=None, help=f"Global batch size (split across processes) {_hw('batch_size')}.")
@click.option("--conditional", is_flag=True, help="Class-conditional DCGAN (conditional BatchNorm in G, projection D).")
@click.option("--arch", type=click.Choice(ARCHS), default=TrainConfig.default_of("arch"), show_default=True, help="Discriminator body: pool (3x3 convs + max-pool, sees outlines), dcgan (the paper's), resnet (SNGAN-style; use with --spectral-norm --loss hinge).")
@click.option("--loss", type=click.Choice(LOSSES), default=TrainConfig.default_of("loss"), show_default=True, help="Hinge or non-saturating BCE-with-logits (the paper's).")
@click.option("--spectral-norm/--no-spectral-norm", default=TrainConfig.default_of("spectral_norm"), show_default=True, help="Spectral normalisation in D (replaces its BatchNorm).")
@click.option("--skip-z/--no-skip-z", default=TrainConfig.default_of("skip_z"), show_default=True, help="BigGAN's skip-z: every BatchNorm of G takes its scale and shift from z and the class.")
@click.option("--ema/--no-ema", default=TrainConfig.default_of("ema"), show_default=True, help="Keep an exponential moving average of G.")
@click.option("--ema-decay", type=float, default=TrainConfig.default_of("ema_decay"), show_default=True,
              help="Largest EMA decay: the decay at step k is min(this, (1 + k) / (10 + k)), below 0.999 for the "
                   "first 8,990 steps, so values of 0.999 and above differ only in longer runs.")
@click.option("--diversity", type=float, default=TrainConfig.default_of("diversity"), show_default=True, help="Weight of the mode-seeking term in G's loss: different noise, different images (0 = off).")
@click.option("--mismatch", type=float, default=TrainConfig.default_of("mismatch"), show_default=True, help="Conditional: weight of real images shown to D with a wrong class, as fakes (matching-aware D; 0 = off).")
@click.option("--diffaugment", default=",".join(TrainConfig.default_of("diffaugment")) or "none", show_default=True, metavar="POLICIES", help="DiffAugment policies applied to everything D sees, any of color,translation,cutout; none = off.")
@click.option("--flip", is_flag=True, help="Random horizontal flips of real images.")
@click.option("--nz", type=int, default=TrainConfig.default_of("nz"), show_default=True, help="Noise dimension.")
@click.option("--ngf", type=int, default=None, help=f"Generator width {_hw('ngf')}.")
@click.option("--ndf", type=int, default=None, help=f"Discriminator width {_hw('ndf')}.")
@click.option("--lr-g", type=float, default=TrainConfig.default_of("lr_g"), show_default=True)
@click.option("--lr-d", type=float, default=TrainConfig.default_of("lr_d"), show_default=True)
@click.option("--lr-decay", type=click.Choice(LR_DECAYS), default=TrainConfig.default_of("lr_decay"), show_default=True, help="Learning-rate schedule: none (constant) or linear (both rates fall linearly to 0 at --steps).")
@click.option("--aux-weight", type=float, default=TrainConfig.default_of("aux_weight"), show_default=True, help="Conditional: weight of an auxiliary classifier on D's features (AC-GAN, trained with D on real images; G makes fakes it classifies as asked; 0 = off).")
@click.option("--beta1", type=float, default=TrainConfig.default_of("beta1"), show_default=True)
@click.option("--beta2", type=float, default=TrainConfig.default_of("beta2"), show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=TrainConfig.default_of("precision"), show_default=True, help="auto: bf16 on GPUs that support it, fp32 elsewhere.")
@click.option("--channels-last/--no-channels-last", default=None, help="NHWC memory format [default: on for CUDA and CPU, off for MPS].")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the networks.")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels: bit-exact runs and resumes (slower on GPU).")
@click.option("--seed", type=int, default=TrainConfig.default_of("seed"), show_default=True)
@click.option("--device", default=TrainConfig.default_of("device"), show_default=True, help="auto, cpu, cuda, cuda:N, mps.")
@click.option("--placement", type=click.Choice(PLACEMENTS), default=TrainConfig.default_of("placement"), show_default=True, help="Dataset on the device, or streamed from pinned host memory.")
@click.option("--weights", type=click.Choice(["sample", "none"]), default=TrainConfig.default_of("weights"), show_default=True, help="Honour per-sample weights in the shards by weighted sampling.")
@click.option("--split", default=TrainConfig.default_of("split"), show_default=True, help="Dataset split to train on.")
@click.option("--log-every", type=int, default=TrainConfig.default_of("log_every"), show_default=True, help="Steps between metric rows (the only host syncs).")
@click.option("--sample-every", type=int, default=TrainConfig.default_of("sample_every"), show_default=True, help="Steps between fixed-noise sample grids.")
@click.option("--checkpoint-every", type=int, default=TrainConfig.default_of("checkpoint_every"), show_default=True)
@click.option("--eval-every", type=int, default=None, help="Steps between evaluations (best checkpoint) [default: --checkpoint-every; 0: off].")
@click.option("--eval-samples", type=int, default=None, help=f"Samples per evaluation during training {_hw('eval_samples')}.")
@click.option("--classifier-steps", type=int, default=TrainConfig.default_of("classifier_steps"), show_default=True, help="Most training steps of the evaluation classifier (it stops early at 99% held-out accuracy).")
@click.option("--cache-dir", default=None, help="Where evaluation classifiers are cached [default: $GANTRAIN_CACHE or ~/.cache/gantrain].")
@click.option("--resume", is_flag=True, help="Continue the run in -o up to --steps, exactly where it stopped.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.pass_context
def train(ctx: click.Context, data: str, run_dir: str, resume: bool, dry_run: bool, compile_: bool, **options: Any) -> None:
    """Train a DCGAN on the gandata dataset DATA into the run directory -o."""
    from gantrain import train as train_mod

    options["compile"] = compile_
    options["diffaugment"] = _parse_augment(options["diffaugment"])
    try:
        if resume:
            # Only the options given on this command line change a resumed run.
            given = {
                field: options[name] for name, field in _TRAIN_FIELDS.items()
                if ctx.get_parameter_source(name if name != "compile" else "compile_") == ParameterSource.COMMANDLINE
            }
            config = train_mod.resume_config(run_dir, {**given, "data": data})
        else:
            config = TrainConfig(data=data, run_dir=run_dir, **{field: options[name] for name, field in _TRAIN_FIELDS.items()})
        if dry_run:
            resolved = train_mod.resolve(config)
            click.echo(json.dumps(resolved.to_json(), indent=2, sort_keys=True))
            return
        reporter = TqdmReporter() if _is_main_process() else None
        result = train_mod.train(config, resume=resume, reporter=reporter)
    except NonFiniteError as exc:
        _fail(NonFiniteError(f"training stopped: {exc}"))
    except GantrainError as exc:
        _fail(exc)
        return
    if _is_main_process():
        best = f"; best FD {result.best_fd:.4f} in {result.best_checkpoint}" if result.best_checkpoint else ""
        click.echo(f"done: step {result.step}, {result.images_per_s:.0f} images/s, checkpoint {result.last_checkpoint}{best}")


@main.command()
@click.argument("run", type=click.Path(exists=True))
@click.option("-n", "--num", "n", type=int, default=None, help="Number of samples [default: 8 per class shown, or 64].")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file: a grid (.png, .jpg, .webp) or raw arrays (.npz).")
@click.option("--class", "class_name", default=None, help="Class name to sample (conditional models).")
@click.option("--ema/--no-ema", default=None, help="Use the EMA generator [default: when the run has one].")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def sample(run: str, n: int | None, output: str, class_name: str | None, ema: bool | None, checkpoint: str, seed: int, device: str) -> None:
    """Sample images from the generator of RUN (in eval mode). The format is
    the one -o's suffix names; a conditional grid has one row per class,
    labelled with the class name."""
    from gantrain.images import MIN_CELL_PX, grid_format, save_grid, save_npz
    from gantrain.sample import MAX_GRID_CLASSES, load_generator

    if n is not None and n < 1:
        _fail(click.BadParameter(f"{n} must be at least 1", param_hint="-n"))
    try:
        as_npz = output.lower().endswith(".npz")
        if not as_npz:
            grid_format(output)  # refuse an unknown suffix before loading anything
        g = load_generator(run, checkpoint=checkpoint, ema=ema, device=device)
        ncols, row_labels = 8, None
        if class_name is not None:
            labels: Any = g.class_index(class_name)
            n = n or 64
        elif g.conditional:
            # One row per class (the first MAX_GRID_CLASSES in a grid).
            k = len(g.classes) if as_npz else min(len(g.classes), MAX_GRID_CLASSES)
            n = n or 8 * k
            ncols = -(-n // k)
            labels = [min(i // ncols, k - 1) for i in range(n)]
            row_labels = [g.classes[c] for c in sorted(set(labels))]
        else:
            n = n or 64
            labels = None
        images, label_ids = g.generate_uint8(n, labels, seed=seed)
        if as_npz:
            path = save_npz(output, images, label_ids)
        else:
            path = save_grid(images, output, ncols, row_labels=row_labels, min_cell_px=MIN_CELL_PX)
    except GantrainError as exc:
        _fail(exc)
        return
    what = f"class {class_name!r}" if class_name else ("all classes" if g.conditional else "unconditional")
    click.echo(f"wrote {n} samples ({what}, {'EMA' if g.ema else 'raw'} generator, step {g.step}) to {path}")


@main.command(name="eval")
@click.argument("run", type=click.Path(exists=True))
@click.option("--samples", type=int, default=5000, show_default=True, help="Generated images (and real images per reference set).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--ema/--no-ema", default=None, help="Evaluate the EMA generator [default: when the run has one].")
@click.option("--data", default=None, type=click.Path(file_okay=False), help="Dataset [default: the one the run was trained on].")
@click.option("--split", default="train", show_default=True, help="Split of the real reference images.")
@click.option("--classifier-steps", type=int, default=600, show_default=True, help="Most training steps of the evaluation classifier (it stops early at 99% held-out accuracy).")
@click.option("--cache-dir", default=None, help="Classifier cache [default: $GANTRAIN_CACHE or ~/.cache/gantrain].")
@click.option("--inception-weights", default=None, type=click.Path(dir_okay=False), help="pt_inception-2015-12-05 weights: adds standard FID/KID (needs torch-fidelity).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def eval_(run: str, samples: int, checkpoint: str, ema: bool | None, data: str | None, split: str, classifier_steps: int,
          cache_dir: str | None, inception_weights: str | None, seed: int, device: str, as_json: bool) -> None:
    """Evaluate the generator of RUN offline: Frechet distance, KID, precision/recall
    in a classifier trained on the dataset, class histogram and (conditional)
    share classified as asked, each beside its real-vs-real floor."""
    from gantrain.classifier import ClassifierConfig
    from gantrain.evaluate import EvalConfig, evaluate_run
    from gantrain.runtime import resolve_device

    try:
        config = EvalConfig(
            num_samples=samples, split=split, seed=seed, classifier=ClassifierConfig(steps=classifier_steps),
            cache_dir=cache_dir, inception_weights=inception_weights,
        )
        if not as_json:
            click.echo("evaluating (the classifier is trained on first use and cached)...", err=True)

        def progress(step: int, total: int, accuracy: float | None) -> None:
            click.echo(f"  evaluation classifier: step {step}/{total} (at most), held-out accuracy {accuracy:.1%}", err=True)

        report = evaluate_run(
            run, checkpoint=checkpoint, ema=ema, data=data, config=config, device=resolve_device(device), progress=progress
        )
    except GantrainError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
