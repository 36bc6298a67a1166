"""The training loop: one function that reads top to bottom.

``resolve`` probes the dataset and turns a ``TrainConfig`` into everything the
run will use (model config, device, precision); ``--dry-run`` prints that and
stops. ``train`` then builds the networks, restores a checkpoint when resuming,
and runs the loop. Per step the loop never waits for the GPU: losses are
summed into a device tensor and read every ``log_every`` steps (one sync),
which is also where non-finite values are caught.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.nn import functional as F

from gantrain import distributed
from gantrain.augment import diff_augment
from gantrain.checkpoint import (
    BEST,
    LAST,
    copy_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from gantrain.classifier import ClassifierConfig
from gantrain.config import ModelConfig, TrainConfig
from gantrain.data import DatasetInfo, load_batches, read_dataset_info
from gantrain.distributed import DistContext
from gantrain.ema import EMA
from gantrain.errors import ConfigError, DataError, NonFiniteError, RunError
from gantrain.health import CollapseMonitor, all_finite, pairwise_diversity
from gantrain.images import save_grid, to_uint8
from gantrain.losses import (
    D_FAKE_TERMS,
    d_output_summary,
    get_losses,
    mode_seeking_loss,
)
from gantrain.models import build_models, count_parameters
from gantrain.rundir import RunDir
from gantrain.runtime import (
    Runtime,
    configure_determinism,
    global_rng_state,
    resolve_device,
    resolve_runtime,
    seed_everything,
    set_global_rng_state,
)
from gantrain.sample import grid_layout

# EMA BatchNorm statistics are re-estimated from this many batches of noise.
EMA_RECALIBRATION_BATCHES = 16
EMA_RECALIBRATION_BATCH_SIZE = 64


class Reporter(Protocol):
    """How the loop talks to a person. The library never prints: the CLI passes
    a tqdm-based reporter, the Python API a silent one by default."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def advance(self, step: int) -> None: ...
    def log(self, step: int, row: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    """A reporter that reports nothing."""

    def start(self, total_steps: int, start_step: int) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def log(self, step: int, row: dict[str, Any]) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class ResolvedRun:
    """A training config with everything it depends on resolved."""

    config: TrainConfig
    model: ModelConfig
    dataset: DatasetInfo
    runtime: Runtime
    dist: DistContext

    def to_json(self) -> dict[str, Any]:
        """What config.json holds (and --dry-run prints)."""
        return {
            "train": self.config.to_json(),
            "model": self.model.to_json(),
            "dataset": self.dataset.to_json(),
            "runtime": {**self.runtime.to_json(), "world_size": self.dist.world_size},
            "torch": torch.__version__,
        }


@dataclass(frozen=True)
class TrainResult:
    """Where a finished run left its outputs."""

    step: int
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path | None
    best_fd: float | None
    images_per_s: float


def resolve(config: TrainConfig) -> ResolvedRun:
    """Validate ``config``, probe the dataset, pick device and precision, and
    fill the options left at None with the hardware's defaults."""
    config.validate()
    ctx = distributed.context_from_env()
    device = resolve_device(config.device, ctx.local_rank)
    config = config.with_hardware_defaults(device.type)
    info = read_dataset_info(config.data, config.split)
    if info.num_samples == 0:
        raise DataError(f"DATA: split {config.split!r} of {config.data} holds no images")
    c, h, w = info.image_shape
    if h != w:
        raise DataError(f"DATA: images are {h}x{w}; the DCGAN needs square images (rebuild with --resize crop)")
    model = ModelConfig(
        image_size=h, channels=c, num_classes=len(info.classes), conditional=config.conditional, arch=config.arch,
        nz=config.nz, ngf=config.ngf, ndf=config.ndf, spectral_norm=config.spectral_norm, skip_z=config.skip_z,
        aux_classifier=config.conditional and config.aux_weight > 0, offset=info.offset,
        scale=info.scale, classes=info.classes,
    )
    model.validate()
    if config.batch_size % ctx.world_size:
        raise ConfigError(f"--batch-size: {config.batch_size} is not divisible by the {ctx.world_size} processes")
    runtime = resolve_runtime(device, config.precision, config.channels_last, config.compile, config.deterministic)
    return ResolvedRun(config, model, info, runtime, ctx)


def describe_config(config: TrainConfig, device: torch.device) -> str:
    """One line with the options that matter most, saying which were chosen
    for the hardware (the full config is in the run's config.json)."""
    hardware = "GPU" if device.type == "cuda" else "CPU"
    return (
        f"{config.steps} steps, batch {config.batch_size}, ngf {config.ngf}, ndf {config.ndf}, "
        f"D {config.arch}, loss {config.loss}, lr decay {config.lr_decay}"
        + (", G skip-z" if config.skip_z else "")
        + (f", aux classifier {config.aux_weight}" if config.aux_weight else "")
        + f", eval samples {config.eval_samples} "
        f"(unset sizes use the {hardware} defaults; see --dry-run for everything)"
    )


def resume_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config of the run in ``run_dir`` with the given options changed
    (only those a resumed run may change: steps, logging, device, ...)."""
    path = RunDir(run_dir).checkpoints_dir / LAST
    if not path.is_file():
        raise RunError(f"--resume: {run_dir} holds no checkpoint to resume ({path} is missing)")
    saved = TrainConfig.from_json(load_checkpoint(path)["config"])
    return saved.with_overrides({**(overrides or {}), "run_dir": str(run_dir)})


def train(config: TrainConfig, *, resume: bool = False, reporter: Reporter | None = None) -> TrainResult:
    """Train (or, with ``resume``, continue) the run ``config.run_dir`` up to
    ``config.steps`` steps. Raises ``NonFiniteError`` when the losses or weights
    stop being finite; the last good checkpoint is left in place."""
    run = resolve(config)
    distributed.init_distributed(run.dist, run.runtime.device)
    try:
        return _train(run, resume, reporter or SilentReporter())
    finally:
        distributed.shutdown(run.dist)


def _stream_seed(seed: int, rank: int, step: int) -> int:
    # Distinct, reproducible random streams per rank (and per restart point
    # when a run is resumed on a different number of processes).
    return (seed * 1_000_003 + rank * 7_919 + step * 104_729) % 2**62


@dataclass
class _Networks:
    """G and D, their optimisers and scalers, and the wrapped modules the loop calls."""

    G: torch.nn.Module
    D: torch.nn.Module
    ema: EMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    G_train: torch.nn.Module  # DDP-wrapped and/or compiled
    D_train: torch.nn.Module
    D_for_g: torch.nn.Module  # D as the generator step sees it


def _build_networks(run: ResolvedRun, ckpt: dict[str, Any] | None) -> _Networks:
    """Fresh (or restored) networks, optimisers and scalers, wrapped for DDP and compile."""
    cfg, rt, ctx = run.config, run.runtime, run.dist
    device = rt.device
    G, D = build_models(run.model)
    G, D = G.to(device), D.to(device)
    if rt.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # Only rank 0 writes checkpoints and samples, so only it keeps the average.
    ema = EMA(G, cfg.ema_decay, EMA_RECALIBRATION_BATCHES, EMA_RECALIBRATION_BATCH_SIZE) if cfg.ema and ctx.is_main else None
    adam = {"betas": (cfg.beta1, cfg.beta2), "fused": True if rt.fused_adam else None}
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, **adam)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, **adam)
    scaler_g = torch.amp.GradScaler(device.type, enabled=rt.needs_grad_scaler)
    scaler_d = torch.amp.GradScaler(device.type, enabled=rt.needs_grad_scaler)
    if ckpt:
        G.load_state_dict(ckpt["generator"])
        D.load_state_dict(ckpt["discriminator"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        for scaler, key in ((scaler_g, "scaler_g"), (scaler_d, "scaler_d")):
            if ckpt.get(key):
                scaler.load_state_dict(ckpt[key])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
    G_train = distributed.wrap(G, ctx, device)
    D_train = distributed.wrap(D, ctx, device)
    # The generator step goes through the bare D with its weights frozen: only
    # G's gradients are computed (pytorch/examples computes D's as well and
    # throws them away) and DDP has nothing to synchronise for D there.
    D_for_g: torch.nn.Module = D
    if rt.compile:
        G_train, D_train = torch.compile(G_train), torch.compile(D_train)
        D_for_g = torch.compile(D) if ctx.enabled else D_train
    return _Networks(G, D, ema, opt_g, opt_d, scaler_g, scaler_d, G_train, D_train, D_for_g)


def _open_batches(run: ResolvedRun, ckpt: dict[str, Any] | None, step: int) -> tuple[Any, torch.Generator]:
    """The batch stream and the noise generator of this rank, restored exactly
    when resuming on as many processes as the checkpoint was written with."""
    cfg, ctx, device = run.config, run.dist, run.runtime.device
    saved_ranks = ckpt["rng"]["ranks"] if ckpt else []
    same_world = len(saved_ranks) == ctx.world_size
    stream_seed = _stream_seed(cfg.seed, ctx.rank, 0 if (same_world or not ckpt) else step)
    batches = load_batches(
        run.dataset, device, cfg.batch_size // ctx.world_size, placement=cfg.placement, flip=cfg.flip,
        use_weights=cfg.weights == "sample", seed=stream_seed, channels_last=run.runtime.channels_last,
        labelled_only=run.model.conditional,
    )
    noise_gen = torch.Generator(device=device).manual_seed(stream_seed + 1)
    if ckpt:
        set_global_rng_state(ckpt["rng"]["global"])
        if same_world:
            batches.load_state_dict(saved_ranks[ctx.rank]["data"])
            noise_gen.set_state(saved_ranks[ctx.rank]["noise"])
    return batches, noise_gen


def _fixed_noise(mcfg: ModelConfig, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """The noise (and labels) of the sample grids: the same at every step."""
    grid_labels, grid_cols = grid_layout(mcfg.num_classes, mcfg.conditional)
    grid_n = len(grid_labels) if grid_labels is not None else 64
    gen = torch.Generator().manual_seed(seed)
    if mcfg.conditional:
        # The same noise in every row, so rows differ only by class.
        z = torch.randn(grid_cols, mcfg.nz, generator=gen).repeat(grid_n // grid_cols, 1).to(device)
        return z, grid_labels.to(device), grid_cols
    return torch.randn(grid_n, mcfg.nz, generator=gen).to(device), None, grid_cols


def _better(best: dict[str, Any], report: Any) -> tuple[bool, float]:
    """Whether ``report`` beats the best so far, and its score (lower is better).

    Unconditional: the Frechet distance. Conditional: the Frechet distance
    times (1 + 4 * share not classified as asked), so a checkpoint that draws
    the wrong class loses even with a slightly lower distance (the
    issue-20 runs had FD and accuracy peak at different steps).
    """
    score = report.samples.fd
    if report.class_accuracy is not None:
        score *= 1.0 + 4.0 * (1.0 - report.class_accuracy)
    return best["value"] is None or score < best["value"], score


def _resume_point(run: ResolvedRun, rundir: RunDir, resume: bool) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (checked against this
    config and dataset); None for a new run, which must not overwrite one."""
    if resume:
        ckpt = load_checkpoint(rundir.checkpoints_dir / LAST, map_location=run.runtime.device)
        _check_resumable(ckpt, run)
        return ckpt
    if rundir.has_checkpoint():
        raise RunError(
            f"-o/--output: {run.config.run_dir} already holds a run; pass --resume to continue it, or choose another directory"
        )
    return None


class _Session:
    """The state one training run carries between steps, and the work done at
    step boundaries: logging windows, grids, evaluation and checkpoints.
    ``_train`` below is the loop that uses it."""

    def __init__(self, run: ResolvedRun, rundir: RunDir, ckpt: dict[str, Any] | None, reporter: Reporter):
        self.run, self.rundir, self.reporter = run, rundir, reporter
        cfg, self.ctx = run.config, run.dist
        self.step = int(ckpt["step"]) if ckpt else 0
        self.start_step = self.step
        self.nets = _build_networks(run, ckpt)
        self.batches, self.noise_gen = _open_batches(run, ckpt, self.step)
        self.monitor = CollapseMonitor(cfg.collapse_d_loss, cfg.collapse_windows)
        self.best: dict[str, Any] = {"metric": "fd" if not run.model.conditional else "fd_x_accuracy", "value": None, "step": None}
        if ckpt:
            self.monitor.load_state_dict(ckpt.get("monitor") or {})
            self.best = dict(ckpt.get("best") or self.best)
        self.last_path = rundir.checkpoints_dir / LAST
        self.best_path = rundir.checkpoints_dir / BEST
        self.last_good = str(self.last_path) if ckpt else None
        self.logs = None
        self.evaluator = None

    def open_outputs(self, resumed: bool) -> None:
        """Rank 0: the run directory's logs and config, the start message, the evaluator."""
        cfg, mcfg, rt, nets = self.run.config, self.run.model, self.run.runtime, self.nets
        self.logs = self.rundir.open(resumed_from_step=self.step if resumed else None)
        self.rundir.write_config(self.run.to_json())
        self.logs.event("resume" if resumed else "start", self.step, steps=cfg.steps, world_size=self.ctx.world_size, device=str(rt.device))
        self.reporter.message(
            f"{'resuming at step ' + str(self.step) if resumed else 'training'}: G {count_parameters(nets.G):,} params, "
            f"D ({mcfg.arch}) {count_parameters(nets.D):,} params, {rt.device}, {rt.precision}, "
            f"data on {self.batches.placement}, {self.ctx.world_size} process(es)"
        )
        self.reporter.message(f"config: {describe_config(cfg, rt.device)}")
        skipped = getattr(self.batches, "skipped_unlabeled", 0)
        if skipped:
            self.reporter.message(f"conditional training: {skipped} unlabeled samples (no class) left out")
        if cfg.resolved_eval_every:
            self.reporter.message(
                f"evaluation every {cfg.resolved_eval_every} steps; its classifier is prepared at the first one"
            )

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resume needs, every rank's random streams included (so a
        resume on as many processes is exact)."""
        nets, cfg = self.nets, self.run.config
        ranks = distributed.all_gather_objects({"data": self.batches.state_dict(), "noise": self.noise_gen.get_state()}, self.ctx)
        return {
            "step": self.step, "config": cfg.to_json(), "model": self.run.model.to_json(), "dataset": self.run.dataset.to_json(),
            "generator": nets.G.state_dict(), "discriminator": nets.D.state_dict(),
            "ema": nets.ema.state_dict() if nets.ema is not None else None,  # statistics recalibrated
            "opt_g": nets.opt_g.state_dict(), "opt_d": nets.opt_d.state_dict(),
            "scaler_g": nets.scaler_g.state_dict(), "scaler_d": nets.scaler_d.state_dict(),
            "rng": {"global": global_rng_state(), "ranks": ranks},
            "best": dict(self.best), "monitor": self.monitor.state_dict(),
        }

    def check_weights_finite(self) -> None:
        """Every rank checks (the weights are the same on all), so all stop together."""
        nets = self.nets
        tensors = list(nets.G.parameters()) + list(nets.D.parameters()) + (list(nets.ema.model.parameters()) if nets.ema else [])
        if not all_finite(tensors):
            raise NonFiniteError(
                f"weights became NaN/Inf before step {self.step}; the last good checkpoint is "
                f"{self.last_good or 'none (none written yet)'}",
                self.last_good,
            )

    def alarm(self, alarm: Any) -> None:
        if alarm and self.logs:
            self.logs.event("alarm", self.step, kind=alarm.kind, message=alarm.message)
            self.reporter.message(f"step {self.step}: ALARM {alarm.message}")

    def log_window(self, stats: torch.Tensor, window_steps: int, window_time: float, run_start: float) -> None:
        """One sync: read the window's sums, stop on non-finite losses, log the means."""
        cfg, step = self.run.config, self.step
        means = (distributed.all_reduce_mean(stats, self.ctx) / window_steps).tolist()
        if not all(map(_finite, means)):
            if self.logs:
                self.logs.event("non_finite", step, values=means)
            raise NonFiniteError(
                f"loss became NaN/Inf between steps {step - window_steps + 1} and {step}; training stopped. "
                f"The last good checkpoint is {self.last_good or 'none (none written yet)'}; "
                "try a lower learning rate, --precision fp32 or --spectral-norm",
                self.last_good,
            )
        row = {
            "step": step, "loss_d": means[0], "loss_g": means[1], "d_real": means[2], "d_fake": means[3],
            "images_per_s": window_steps * cfg.batch_size / max(window_time, 1e-9),
            "elapsed_s": time.perf_counter() - run_start,
        }
        alarm = self.monitor.observe_d_loss(step, means[0], cfg.log_every)
        if self.logs:
            self.logs.log_metrics(row)
            self.reporter.log(step, row)
            self.alarm(alarm)

    def save_grids(self, fixed: tuple[torch.Tensor, torch.Tensor | None, int], real_diversity: float) -> None:
        """Rank 0: fixed-noise grids in eval mode, raw and EMA, and the collapse check."""
        z, y, cols = fixed
        diversity = _save_grids(self.rundir, self.step, self.nets.G, self.nets.ema, z, y, cols, self.run.model)
        self.alarm(self.monitor.observe_diversity(self.step, diversity, real_diversity))

    def evaluate_and_checkpoint(self, do_eval: bool, do_ckpt: bool) -> None:
        """All ranks take part (finiteness check, gathering random states);
        rank 0 evaluates, writes ``last`` and keeps ``best``."""
        self.check_weights_finite()
        state = self.checkpoint_state()
        improved = False
        main, cfg = self.ctx.is_main, self.run.config
        if main and do_eval:
            # Prepared on first use, not before step 1: training starts at
            # once and the classifier's training (cached per dataset) is paid
            # at the first evaluation.
            if self.evaluator is None:
                self.evaluator = _make_evaluator(cfg, self.run.runtime.device, self.reporter)
            report = _evaluate(self.evaluator, self.nets.G, self.nets.ema, self.run.model, self.run.runtime.device, cfg.seed)
            improved, score = _better(self.best, report)
            if improved:
                self.best.update(value=score, step=self.step, fd=report.samples.fd, class_accuracy=report.class_accuracy)
                state["best"] = dict(self.best)
            _log_eval(self.logs, self.reporter, self.monitor, self.step, report, improved)
        if main and do_ckpt:
            save_checkpoint(state, self.last_path)
            self.last_good = str(self.last_path)
            if improved:
                copy_checkpoint(self.last_path, self.best_path)
        elif main and improved:
            save_checkpoint(state, self.best_path)
        if self.logs and improved:
            self.logs.event("best", self.step, fd=self.best.get("fd"), score=self.best["value"])

    def finish(self, run_start: float) -> TrainResult:
        """Log the end of the run and say where it left its outputs."""
        images_per_s = (self.step - self.start_step) * self.run.config.batch_size / max(time.perf_counter() - run_start, 1e-9)
        if self.logs:
            self.logs.event("finished", self.step, images_per_s=images_per_s)
        best_fd = self.best.get("fd", self.best["value"])  # checkpoints before the combined score stored the FD as value
        return TrainResult(
            step=self.step, run_dir=self.rundir.root, last_checkpoint=self.last_path,
            best_checkpoint=self.best_path if self.best_path.is_file() else None, best_fd=best_fd,
            images_per_s=images_per_s,
        )

    def save_on_interrupt(self) -> None:
        """Keep the progress of an interrupted single-process run."""
        if self.ctx.is_main and not self.ctx.enabled and self.step > 0:
            self.check_weights_finite()
            save_checkpoint(self.checkpoint_state(), self.last_path)
            if self.logs:
                self.logs.event("interrupted", self.step)
            self.reporter.message(f"interrupted: checkpoint written at step {self.step} ({self.last_path}); --resume continues")


def _train(run: ResolvedRun, resume: bool, reporter: Reporter) -> TrainResult:
    """The loop, top to bottom: set-up phases, then per step D, G, statistics,
    and the step-boundary work (logs, grids, evaluation, checkpoints)."""
    cfg, mcfg, rt, ctx = run.config, run.model, run.runtime, run.dist
    device, rundir = rt.device, RunDir(cfg.run_dir)
    configure_determinism(cfg.deterministic, device)
    seed_everything(cfg.seed)  # same initial weights on every rank

    # ---- Checkpoint to resume from, networks, data ------------------------------------------
    ckpt = _resume_point(run, rundir, resume)
    s = _Session(run, rundir, ckpt, reporter)
    nets, batches, noise_gen = s.nets, s.batches, s.noise_gen
    local_batch = cfg.batch_size // ctx.world_size
    d_loss_fn, g_loss_fn = get_losses(cfg.loss)
    obj = _Objective(
        d_loss=d_loss_fn, g_loss=g_loss_fn, fake_term=D_FAKE_TERMS[cfg.loss],
        mismatch=cfg.mismatch if mcfg.conditional else 0.0,
        diversity=cfg.diversity if local_batch >= 2 else 0.0,
        aux=cfg.aux_weight if mcfg.aux_classifier else 0.0,
        augment=lambda x: diff_augment(x, cfg.diffaugment, noise_gen) if cfg.diffaugment else x,
    )

    # ---- Run directory, evaluation, fixed noise (rank 0) -------------------------------------
    if ctx.is_main:
        s.open_outputs(resumed=ckpt is not None)
    distributed.barrier(ctx)
    fixed = _fixed_noise(mcfg, cfg.seed, device)
    real_diversity = pairwise_diversity(batches.peek(64)) if ctx.is_main else 0.0
    eval_every = cfg.resolved_eval_every

    # ---- The loop ------------------------------------------------------------------------------
    stats = torch.zeros(4, device=device)  # sums since the last log: loss_d, loss_g, D(x), D(G(z))
    window_steps, window_time = 0, 0.0
    run_start = time.perf_counter()
    nets.G_train.train()
    nets.D_train.train()
    reporter.start(cfg.steps, s.step)
    try:
        while s.step < cfg.steps:
            t0 = time.perf_counter()
            # 0. The learning rates of this step (a function of the step alone, so resumes follow it).
            _set_learning_rates(nets, cfg, s.step)
            # 1. A batch of real images (drawn and normalized on the device) and fresh noise.
            real, labels = batches.next()
            y = labels if mcfg.conditional else None
            z = torch.randn(local_batch, mcfg.nz, generator=noise_gen, device=device)
            y_fake = y
            if obj.diversity and y is not None:
                # Pairs (i, i + B/2) share a class, so their difference is z's doing alone.
                half = local_batch // 2
                y_fake = torch.cat([y[:half], y[:half], y[2 * half:]])
            # 2. Discriminator step: real images up, generated images (detached) down.
            with rt.autocast():
                fake = nets.G_train(z, y_fake)
            loss_d, logits_real, logits_fake = _discriminator_step(nets, rt, obj, real, y, fake, y_fake, mcfg.num_classes, noise_gen)
            # 3. Generator step: make the (just updated) D call the same fakes real.
            loss_g = _generator_step(nets, rt, obj, fake, z, y_fake)
            if nets.ema is not None:
                nets.ema.update(nets.G, s.step)
            s.step += 1

            # 4. Statistics stay on the device: no host sync in the step.
            stats += torch.stack([
                loss_d.detach(), loss_g.detach(),
                d_output_summary(logits_real, cfg.loss), d_output_summary(logits_fake, cfg.loss),
            ])
            window_steps += 1
            reporter.advance(s.step)
            final = s.step == cfg.steps
            window_time += time.perf_counter() - t0

            # 5. Every log_every steps: one sync to read the window, check it, log it.
            if s.step % cfg.log_every == 0 or final:
                s.log_window(stats, window_steps, window_time, run_start)
                stats.zero_()
                window_steps, window_time = 0, 0.0

            # 6. Fixed-noise grids in eval mode, raw and EMA (rank 0).
            if ctx.is_main and (s.step % cfg.sample_every == 0 or final):
                s.save_grids(fixed, real_diversity)

            # 7. Evaluation (best checkpoint) and checkpoints.
            do_eval = bool(eval_every) and (s.step % eval_every == 0 or final)
            do_ckpt = s.step % cfg.checkpoint_every == 0 or final
            if do_eval or do_ckpt:
                s.evaluate_and_checkpoint(do_eval, do_ckpt)
    except KeyboardInterrupt:
        s.save_on_interrupt()
        raise
    finally:
        reporter.close()
        if s.logs:
            s.logs.close()
    distributed.barrier(ctx)
    return s.finish(run_start)


@dataclass(frozen=True)
class _Objective:
    """What D and G minimise: the adversarial losses, the optional terms'
    weights (0 = off) and the DiffAugment applied to everything D sees."""

    d_loss: Any
    g_loss: Any
    fake_term: Any
    mismatch: float
    diversity: float
    aux: float
    augment: Any


def _set_learning_rates(nets: _Networks, cfg: TrainConfig, step: int) -> None:
    if cfg.lr_decay == "none":
        return
    factor = cfg.lr_factor(step)
    for opt, base in ((nets.opt_d, cfg.lr_d), (nets.opt_g, cfg.lr_g)):
        for group in opt.param_groups:
            group["lr"] = base * factor


def _discriminator_step(
    nets: _Networks, rt: Any, obj: _Objective, real: torch.Tensor, y: torch.Tensor | None, fake: torch.Tensor,
    y_fake: torch.Tensor | None, num_classes: int, noise_gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One update of D: real images up, the (detached) fakes down, plus the
    mismatch and auxiliary-classifier terms. Returns (loss, real logits, fake logits)."""
    nets.D.requires_grad_(True)
    with rt.autocast():
        wrong = None
        if obj.mismatch:
            # Real images under a wrong class count as fakes too (same body pass).
            shift = torch.randint(1, num_classes, y.shape, generator=noise_gen, device=y.device)
            wrong = (y + shift) % num_classes
        out_real = nets.D_train(obj.augment(real), y, wrong, with_aux=bool(obj.aux))
        if obj.aux:
            # The auxiliary classifier learns the classes of real images only.
            out_real, aux_real = out_real
        logits_real, logits_wrong = out_real if obj.mismatch else (out_real, None)
        logits_fake = nets.D_train(obj.augment(fake.detach()), y_fake)
    loss_d = obj.d_loss(logits_real, logits_fake)
    if obj.mismatch:
        loss_d = loss_d + obj.mismatch * obj.fake_term(logits_wrong)
    if obj.aux:
        loss_d = loss_d + obj.aux * F.cross_entropy(aux_real.float(), y)
    nets.opt_d.zero_grad(set_to_none=True)
    nets.scaler_d.scale(loss_d).backward()
    nets.scaler_d.step(nets.opt_d)
    nets.scaler_d.update()
    return loss_d, logits_real, logits_fake


def _generator_step(
    nets: _Networks, rt: Any, obj: _Objective, fake: torch.Tensor, z: torch.Tensor, y_fake: torch.Tensor | None,
) -> torch.Tensor:
    """One update of G: make the just-updated D call the same fakes real (and,
    with the auxiliary classifier, classify them as asked; with the
    mode-seeking term, keep different noise apart). Returns the loss."""
    nets.D.requires_grad_(False)
    with rt.autocast():
        logits_gen = nets.D_for_g(obj.augment(fake), y_fake, with_aux=bool(obj.aux))
        if obj.aux:
            logits_gen, aux_gen = logits_gen
    loss_g = obj.g_loss(logits_gen)
    if obj.aux:
        loss_g = loss_g + obj.aux * F.cross_entropy(aux_gen.float(), y_fake)
    if obj.diversity:
        loss_g = loss_g + obj.diversity * mode_seeking_loss(fake, z)
    nets.opt_g.zero_grad(set_to_none=True)
    nets.scaler_g.scale(loss_g).backward()
    nets.scaler_g.step(nets.opt_g)
    nets.scaler_g.update()
    return loss_g


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def _check_resumable(ckpt: dict[str, Any], run: ResolvedRun) -> None:
    """A checkpoint continues only with the same model, settings and data."""
    saved = TrainConfig.from_json(ckpt["config"])
    saved.with_overrides(run.config.to_json())  # raises ConfigError naming the changed option
    if ModelConfig.from_json(ckpt["model"]) != run.model:
        raise RunError("--resume: the checkpoint's model does not match this configuration")
    if ckpt["dataset"]["manifest_sha256"] != run.dataset.manifest_sha256:
        raise DataError(
            f"DATA: {run.dataset.path} is not the dataset the run was trained on "
            f"(manifest sha256 {run.dataset.manifest_sha256[:12]} != {ckpt['dataset']['manifest_sha256'][:12]})"
        )


def _make_evaluator(cfg: TrainConfig, device: torch.device, reporter: Reporter):
    from gantrain.evaluate import EvalConfig, Evaluator

    config = EvalConfig(
        num_samples=cfg.eval_samples, split=cfg.split, seed=cfg.seed, kid_subsets=20,
        classifier=ClassifierConfig(steps=cfg.classifier_steps), cache_dir=cfg.cache_dir,
    )
    reporter.message("preparing evaluation (the classifier is trained once per dataset and cached)...")

    def progress(step: int, total: int, accuracy: float | None) -> None:
        reporter.message(f"  evaluation classifier: step {step}/{total} (at most), held-out accuracy {accuracy:.1%}")

    evaluator = Evaluator(cfg.data, config, device, progress)
    clf = evaluator.classifier
    took = "loaded from cache" if clf.cached else f"trained in {clf.train_seconds:.0f} s"
    reporter.message(f"evaluation features ({took}): {clf.describe()}")
    return evaluator


@torch.no_grad()
def _save_grids(
    rundir: RunDir, step: int, G: torch.nn.Module, ema: EMA | None, z: torch.Tensor, y: torch.Tensor | None,
    ncols: int, mcfg: ModelConfig,
) -> float:
    """Write the raw (and EMA) fixed-noise grids; return the diversity of the
    better generator's samples for the collapse monitor."""
    G.eval()  # eval mode: BatchNorm running statistics, no batch coupling
    images = G(z, y).float()
    G.train()
    save_grid(to_uint8(images, mcfg.offset, mcfg.scale).cpu().numpy(), rundir.samples_dir / f"step-{step:07d}.png", ncols)
    if ema is not None:
        images = ema.calibrated()(z, y).float()
        save_grid(to_uint8(images, mcfg.offset, mcfg.scale).cpu().numpy(), rundir.samples_dir / f"step-{step:07d}-ema.png", ncols)
    return pairwise_diversity(images)


@torch.no_grad()
def _evaluate(evaluator, G: torch.nn.Module, ema: EMA | None, mcfg: ModelConfig, device: torch.device, seed: int):
    model = ema.calibrated() if ema is not None else G
    was_training = model.training
    model.eval()
    # The same noise at every evaluation: differences come from the model.
    gen = torch.Generator(device=device).manual_seed(seed + 12_345)

    def generate(n: int, labels: torch.Tensor | None) -> torch.Tensor:
        z = torch.randn(n, mcfg.nz, generator=gen, device=device)
        x = model(z, labels.to(device) if labels is not None else None)
        return to_uint8(x, mcfg.offset, mcfg.scale)

    try:
        return evaluator.evaluate(generate, mcfg.conditional, model="EMA generator" if ema is not None else "generator")
    finally:
        model.train(was_training)


def _log_eval(logs, reporter: Reporter, monitor: CollapseMonitor, step: int, report, improved: bool) -> None:
    row = {
        "step": step, "fd": report.samples.fd, "fd_floor": report.floor.fd, "kid": report.samples.kid,
        "precision": report.samples.precision, "recall": report.samples.recall,
        "class_accuracy": report.class_accuracy, "class_entropy": report.class_entropy, "model": report.model,
        "classifier_accuracy": report.classifier_accuracy,
    }
    if logs:
        logs.log_eval(row)
    acc = ""
    if report.class_accuracy is not None:
        acc = (
            f", classified as asked {report.class_accuracy:.1%} (classifier {report.classifier_accuracy:.1%} on real"
            f"{'; WEAK' if report.classifier_weak else ''})"
        )
    reporter.message(
        f"step {step}: eval FD {report.samples.fd:.3f} (floor {report.floor.fd:.3f}), "
        f"precision {report.samples.precision:.2f}, recall {report.samples.recall:.2f}{acc}"
        + (" [best]" if improved else "")
    )
    if report.class_entropy is not None and report.real_class_entropy is not None:
        alarm = monitor.observe_class_entropy(step, report.class_entropy, report.real_class_entropy)
        if alarm:
            if logs:
                logs.event("alarm", step, kind=alarm.kind, message=alarm.message)
            reporter.message(f"step {step}: ALARM {alarm.message}")
