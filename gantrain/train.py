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

from gantrain import distributed
from gantrain.augment import diff_augment
from gantrain.checkpoint import BEST, LAST, copy_checkpoint, load_checkpoint, save_checkpoint
from gantrain.classifier import ClassifierConfig
from gantrain.config import ModelConfig, TrainConfig
from gantrain.data import DatasetInfo, load_batches, read_dataset_info
from gantrain.distributed import DistContext
from gantrain.ema import EMA
from gantrain.errors import ConfigError, DataError, NonFiniteError, RunError
from gantrain.health import CollapseMonitor, all_finite, pairwise_diversity
from gantrain.images import save_grid, to_uint8
from gantrain.losses import d_output_summary, get_losses
from gantrain.models import build_models, count_parameters
from gantrain.rundir import RunDir
from gantrain.runtime import (
    Runtime, configure_determinism, global_rng_state, resolve_device, resolve_runtime, seed_everything,
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
    """Validate ``config``, probe the dataset and pick device and precision."""
    config.validate()
    info = read_dataset_info(config.data, config.split)
    if info.num_samples == 0:
        raise DataError(f"DATA: split {config.split!r} of {config.data} holds no images")
    c, h, w = info.image_shape
    if h != w:
        raise DataError(f"DATA: images are {h}x{w}; the DCGAN needs square images (rebuild with --resize crop)")
    model = ModelConfig(
        image_size=h, channels=c, num_classes=len(info.classes), conditional=config.conditional, nz=config.nz,
        ngf=config.ngf, ndf=config.ndf, spectral_norm=config.spectral_norm, offset=info.offset, scale=info.scale,
        classes=info.classes,
    )
    model.validate()
    ctx = distributed.context_from_env()
    if config.batch_size % ctx.world_size:
        raise ConfigError(f"--batch-size: {config.batch_size} is not divisible by the {ctx.world_size} processes")
    device = resolve_device(config.device, ctx.local_rank)
    runtime = resolve_runtime(device, config.precision, config.channels_last, config.compile, config.deterministic)
    return ResolvedRun(config, model, info, runtime, ctx)


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


def _train(run: ResolvedRun, resume: bool, reporter: Reporter) -> TrainResult:
    cfg, mcfg, info, rt, ctx = run.config, run.model, run.dataset, run.runtime, run.dist
    device = rt.device
    rundir = RunDir(cfg.run_dir)
    configure_determinism(cfg.deterministic, device)
    seed_everything(cfg.seed)  # same initial weights on every rank

    # ---- Checkpoint to resume from ---------------------------------------------------------
    ckpt = None
    if resume:
        ckpt = load_checkpoint(rundir.checkpoints_dir / LAST, map_location=device)
        _check_resumable(ckpt, run)
    elif rundir.has_checkpoint():
        raise RunError(f"-o/--output: {cfg.run_dir} already holds a run; pass --resume to continue it, or choose another directory")
    step = int(ckpt["step"]) if ckpt else 0

    # ---- Networks, optimisers, loss ---------------------------------------------------------
    G, D = build_models(mcfg)
    G, D = G.to(device), D.to(device)
    if rt.channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # Only rank 0 writes checkpoints and samples, so only it keeps the average.
    ema = EMA(G, cfg.ema_decay) if cfg.ema and ctx.is_main else None
    adam = {"betas": (cfg.beta1, cfg.beta2), "fused": True if rt.fused_adam else None}
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, **adam)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, **adam)
    scaler_g = torch.amp.GradScaler(device.type, enabled=rt.needs_grad_scaler)
    scaler_d = torch.amp.GradScaler(device.type, enabled=rt.needs_grad_scaler)
    d_loss_fn, g_loss_fn = get_losses(cfg.loss)
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

    # ---- Data and random streams ------------------------------------------------------------
    saved_ranks = ckpt["rng"]["ranks"] if ckpt else []
    same_world = len(saved_ranks) == ctx.world_size
    stream_seed = _stream_seed(cfg.seed, ctx.rank, 0 if (same_world or not ckpt) else step)
    batches = load_batches(
        info, device, cfg.batch_size // ctx.world_size, placement=cfg.placement, flip=cfg.flip,
        use_weights=cfg.weights == "sample", seed=stream_seed, channels_last=rt.channels_last,
    )
    noise_gen = torch.Generator(device=device).manual_seed(stream_seed + 1)
    if ckpt:
        set_global_rng_state(ckpt["rng"]["global"])
        if same_world:
            batches.load_state_dict(saved_ranks[ctx.rank]["data"])
            noise_gen.set_state(saved_ranks[ctx.rank]["noise"])
    local_batch = cfg.batch_size // ctx.world_size

    # ---- Wrapping for several processes and for speed ----------------------------------------
    G_train = distributed.wrap(G, ctx, device)
    D_train = distributed.wrap(D, ctx, device)
    # The generator step goes through the bare D with its weights frozen: only
    # G's gradients are computed (pytorch/examples computes D's as well and
    # throws them away) and DDP has nothing to synchronise for D there.
    D_for_g: torch.nn.Module = D
    if rt.compile:
        G_train, D_train = torch.compile(G_train), torch.compile(D_train)
        D_for_g = torch.compile(D) if ctx.enabled else D_train

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, cfg.diffaugment, noise_gen) if cfg.diffaugment else x

    # ---- Run directory, evaluation, fixed noise (rank 0) -------------------------------------
    logs = None
    evaluator = None
    eval_every = cfg.resolved_eval_every
    if ctx.is_main:
        logs = rundir.open(resumed_from_step=step if ckpt else None)
        rundir.write_config(run.to_json())
        logs.event("resume" if ckpt else "start", step, steps=cfg.steps, world_size=ctx.world_size, device=str(device))
        reporter.message(
            f"{'resuming at step ' + str(step) if ckpt else 'training'}: G {count_parameters(G):,} params, "
            f"D {count_parameters(D):,} params, {device}, {rt.precision}, data on {batches.placement}, "
            f"{ctx.world_size} process(es)"
        )
        if eval_every:
            evaluator = _make_evaluator(cfg, device, reporter)
    distributed.barrier(ctx)
    grid_labels, grid_cols = grid_layout(mcfg.num_classes, mcfg.conditional)
    grid_n = len(grid_labels) if grid_labels is not None else 64
    fixed_gen = torch.Generator().manual_seed(cfg.seed)
    if mcfg.conditional:
        # The same noise in every row, so rows differ only by class.
        fixed_z = torch.randn(grid_cols, mcfg.nz, generator=fixed_gen).repeat(grid_n // grid_cols, 1).to(device)
        fixed_y = grid_labels.to(device)
    else:
        fixed_z, fixed_y = torch.randn(grid_n, mcfg.nz, generator=fixed_gen).to(device), None
    real_diversity = pairwise_diversity(batches.peek(64)) if ctx.is_main else 0.0
    monitor = CollapseMonitor(cfg.collapse_d_loss, cfg.collapse_windows)
    best: dict[str, Any] = {"metric": "fd", "value": None, "step": None}
    if ckpt:
        monitor.load_state_dict(ckpt.get("monitor") or {})
        best = dict(ckpt.get("best") or best)
    last_path = rundir.checkpoints_dir / LAST
    best_path = rundir.checkpoints_dir / BEST
    last_good = str(last_path) if ckpt else None

    def checkpoint_state() -> dict[str, Any]:
        # Every rank's random streams, so a resume on as many processes is exact.
        ranks = distributed.all_gather_objects({"data": batches.state_dict(), "noise": noise_gen.get_state()}, ctx)
        return {
            "step": step, "config": cfg.to_json(), "model": mcfg.to_json(), "dataset": info.to_json(),
            "generator": G.state_dict(), "discriminator": D.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
            "scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
            "rng": {"global": global_rng_state(), "ranks": ranks},
            "best": dict(best), "monitor": monitor.state_dict(),
        }

    def check_weights_finite() -> None:
        # Every rank checks (the weights are the same on all), so all stop together.
        tensors = list(G.parameters()) + list(D.parameters()) + (list(ema.model.parameters()) if ema else [])
        if not all_finite(tensors):
            raise NonFiniteError(
                f"weights became NaN/Inf before step {step}; the last good checkpoint is {last_good or 'none (none written yet)'}",
                last_good,
            )

    # ---- The loop ------------------------------------------------------------------------------
    stats = torch.zeros(4, device=device)  # sums since the last log: loss_d, loss_g, D(x), D(G(z))
    window_steps, window_time = 0, 0.0
    run_start = time.perf_counter()
    G_train.train()
    D_train.train()
    reporter.start(cfg.steps, step)
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            # 1. A batch of real images (drawn and normalized on the device) and fresh noise.
            real, labels = batches.next()
            y = labels if mcfg.conditional else None
            z = torch.randn(local_batch, mcfg.nz, generator=noise_gen, device=device)

            # 2. Discriminator step: real images up, generated images (detached) down.
            D.requires_grad_(True)
            with rt.autocast():
                fake = G_train(z, y)
                logits_real = D_train(augment(real), y)
                logits_fake = D_train(augment(fake.detach()), y)
            loss_d = d_loss_fn(logits_real, logits_fake)
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()

            # 3. Generator step: make the (just updated) D call the same fakes real.
            D.requires_grad_(False)
            with rt.autocast():
                logits_gen = D_for_g(augment(fake), y)
            loss_g = g_loss_fn(logits_gen)
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            if ema is not None:
                ema.update(G, step)
            step += 1

            # 4. Statistics stay on the device: no host sync in the step.
            stats += torch.stack([
                loss_d.detach(), loss_g.detach(),
                d_output_summary(logits_real, cfg.loss), d_output_summary(logits_fake, cfg.loss),
            ])
            window_steps += 1
            reporter.advance(step)
            final = step == cfg.steps

            # 5. Every log_every steps: one sync to read the window, check it, log it.
            if step % cfg.log_every == 0 or final:
                means = (distributed.all_reduce_mean(stats, ctx) / window_steps).tolist()
                window_time += time.perf_counter() - t0
                if not all(map(_finite, means)):
                    if logs:
                        logs.event("non_finite", step, values=means)
                    raise NonFiniteError(
                        f"loss became NaN/Inf between steps {step - window_steps + 1} and {step}; training stopped. "
                        f"The last good checkpoint is {last_good or 'none (none written yet)'}; "
                        "try a lower learning rate, --precision fp32 or --spectral-norm",
                        last_good,
                    )
                row = {
                    "step": step, "loss_d": means[0], "loss_g": means[1], "d_real": means[2], "d_fake": means[3],
                    "images_per_s": window_steps * cfg.batch_size / max(window_time, 1e-9),
                    "elapsed_s": time.perf_counter() - run_start,
                }
                alarm = monitor.observe_d_loss(step, means[0], cfg.log_every)
                if logs:
                    logs.log_metrics(row)
                    reporter.log(step, row)
                    if alarm:
                        logs.event("alarm", step, kind=alarm.kind, message=alarm.message)
                        reporter.message(f"step {step}: ALARM {alarm.message}")
                stats.zero_()
                window_steps, window_time = 0, 0.0
            else:
                window_time += time.perf_counter() - t0

            # 6. Fixed-noise grids in eval mode, raw and EMA (rank 0).
            if ctx.is_main and (step % cfg.sample_every == 0 or final):
                diversity = _save_grids(rundir, step, G, ema, fixed_z, fixed_y, grid_cols, mcfg)
                alarm = monitor.observe_diversity(step, diversity, real_diversity)
                if alarm and logs:
                    logs.event("alarm", step, kind=alarm.kind, message=alarm.message)
                    reporter.message(f"step {step}: ALARM {alarm.message}")

            # 7. Evaluation and checkpoints. All ranks take part (finiteness
            #    check, gathering random states); rank 0 evaluates and writes.
            do_eval = bool(eval_every) and (step % eval_every == 0 or final)
            do_ckpt = step % cfg.checkpoint_every == 0 or final
            if do_eval or do_ckpt:
                check_weights_finite()
                state = checkpoint_state()
                improved = False
                if ctx.is_main and do_eval and evaluator is not None:
                    report = _evaluate(evaluator, G, ema, mcfg, device, cfg.seed)
                    improved = best["value"] is None or report.samples.fd < best["value"]
                    if improved:
                        best.update(value=report.samples.fd, step=step)
                        state["best"] = dict(best)
                    _log_eval(logs, reporter, monitor, step, report, improved)
                if ctx.is_main and do_ckpt:
                    save_checkpoint(state, last_path)
                    last_good = str(last_path)
                    if improved:
                        copy_checkpoint(last_path, best_path)
                elif ctx.is_main and improved:
                    save_checkpoint(state, best_path)
                if logs and improved:
                    logs.event("best", step, fd=best["value"])
    except KeyboardInterrupt:
        # Keep the progress of an interrupted single-process run.
        if ctx.is_main and not ctx.enabled and step > 0:
            check_weights_finite()
            save_checkpoint(checkpoint_state(), last_path)
            if logs:
                logs.event("interrupted", step)
            reporter.message(f"interrupted: checkpoint written at step {step} ({last_path}); --resume continues")
        raise
    finally:
        reporter.close()
        if logs:
            logs.close()
    distributed.barrier(ctx)
    total_time = time.perf_counter() - run_start
    images_per_s = (step - (int(ckpt["step"]) if ckpt else 0)) * cfg.batch_size / max(total_time, 1e-9)
    if logs:
        logs.event("finished", step, images_per_s=images_per_s)
    return TrainResult(
        step=step, run_dir=rundir.root, last_checkpoint=last_path,
        best_checkpoint=best_path if best_path.is_file() else None, best_fd=best["value"], images_per_s=images_per_s,
    )


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
    evaluator = Evaluator(cfg.data, config, device)
    reporter.message(f"evaluation features: {evaluator.classifier.describe()}")
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
        ema.recalibrate(EMA_RECALIBRATION_BATCHES, EMA_RECALIBRATION_BATCH_SIZE)
        images = ema.model(z, y).float()
        save_grid(to_uint8(images, mcfg.offset, mcfg.scale).cpu().numpy(), rundir.samples_dir / f"step-{step:07d}-ema.png", ncols)
    return pairwise_diversity(images)


@torch.no_grad()
def _evaluate(evaluator, G: torch.nn.Module, ema: EMA | None, mcfg: ModelConfig, device: torch.device, seed: int):
    model = ema.model if ema is not None else G
    if ema is not None:
        ema.recalibrate(EMA_RECALIBRATION_BATCHES, EMA_RECALIBRATION_BATCH_SIZE)
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
    }
    if logs:
        logs.log_eval(row)
    acc = f", classified as asked {report.class_accuracy:.1%}" if report.class_accuracy is not None else ""
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
