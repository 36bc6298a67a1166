"""Load a trained generator from a run directory and sample from it.

This is the Python API other tools build on (gandata's synthesis source
among them)::

    from gantrain import load_generator
    g = load_generator("runs/faces", ema=True)
    images = g.generate_uint8(64, labels=g.class_index("cat"))   # uint8 [64, C, H, W]

Sampling always runs the generator in eval mode (BatchNorm uses its running
statistics), unlike pytorch/examples' dcgan, which samples in training mode
and so makes every image depend on the others in its batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gantrain.checkpoint import find_checkpoint, load_checkpoint
from gantrain.config import ModelConfig
from gantrain.errors import ConfigError, RunError
from gantrain.images import to_uint8
from gantrain.models import Generator

# Conditional grids show one row per class; beyond this many classes the grid
# would be unreadable, so only the first ones are shown.
MAX_GRID_CLASSES = 16


@dataclass
class LoadedGenerator:
    """A generator restored from a checkpoint, in eval mode, ready to sample."""

    module: Generator
    config: ModelConfig
    step: int
    ema: bool
    checkpoint: Path
    dataset: dict[str, Any]
    device: torch.device

    @property
    def classes(self) -> tuple[str, ...]:
        return self.config.classes

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def class_index(self, name: str) -> int:
        """The label id of a class name (raises ``ConfigError`` listing the names)."""
        if not self.conditional:
            raise ConfigError(f"--class: the model in {self.checkpoint} is unconditional; it cannot be asked for a class")
        try:
            return self.config.classes.index(name)
        except ValueError:
            raise ConfigError(f"--class: {name!r} is not a class of this model (classes: {', '.join(self.classes)})") from None

    def _labels(self, n: int, labels: int | Sequence[int] | torch.Tensor | None) -> torch.Tensor | None:
        if not self.conditional:
            if labels is not None:
                raise ConfigError("labels: the model is unconditional")
            return None
        if labels is None:
            # Balanced over classes, in class order.
            return torch.arange(n, device=self.device) * self.config.num_classes // max(n, 1)
        if isinstance(labels, int):
            out = torch.full((n,), labels, dtype=torch.int64, device=self.device)
        else:
            out = torch.as_tensor(labels, dtype=torch.int64, device=self.device)
            if out.shape != (n,):
                raise ConfigError(f"labels: expected {n} labels, got shape {tuple(out.shape)}")
        if out.numel() and (int(out.min()) < 0 or int(out.max()) >= self.config.num_classes):
            raise ConfigError(f"labels: ids must be in [0, {self.config.num_classes})")
        return out

    @torch.no_grad()
    def generate(
        self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None, seed: int = 0, batch_size: int = 256,
        truncation: float | None = None,
    ) -> torch.Tensor:
        """``n`` images in the dataset's normalized space, float32 [n, C, H, W]
        on the generator's device. The noise is drawn on the CPU from ``seed``,
        so the same seed gives the same images on any device. ``truncation``
        T redraws every noise value with ``|z| > T`` (the truncation trick:
        typical samples at the cost of variety)."""
        y = self._labels(n, labels)
        z = noise(n, self.config.nz, seed, truncation)
        out = []
        for start in range(0, n, batch_size):
            zb = z[start : start + batch_size].to(self.device)
            yb = y[start : start + batch_size] if y is not None else None
            out.append(self.module(zb, yb).float())
        return torch.cat(out) if out else torch.empty(0, self.config.channels, self.config.image_size, self.config.image_size)

    def generate_uint8(
        self, n: int, labels: int | Sequence[int] | torch.Tensor | None = None, seed: int = 0, batch_size: int = 256,
        truncation: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images as uint8 pixels [n, C, H, W] and their labels (int64,
        -1 for an unconditional model)."""
        y = self._labels(n, labels)
        x = self.generate(n, y, seed=seed, batch_size=batch_size, truncation=truncation)
        pixels = to_uint8(x, self.config.offset, self.config.scale).cpu().numpy()
        label_array = y.cpu().numpy() if y is not None else np.full(n, -1, dtype=np.int64)
        return pixels, label_array.astype(np.int64)

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized generator output -> uint8 pixels."""
        return to_uint8(x, self.config.offset, self.config.scale)


# Redraw rounds of the truncation trick; after them the few values still
# outside are clamped (at T = 0.5 about 0.2% of values survive 10 rounds).
_TRUNCATION_ROUNDS = 10


def noise(n: int, nz: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """Standard normal noise [n, nz] drawn on the CPU from ``seed``; with
    ``truncation`` T, values with ``|z| > T`` are redrawn (then clamped)."""
    if truncation is not None and not truncation > 0:
        raise ConfigError(f"truncation: {truncation} must be positive")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, nz, generator=gen)
    if truncation is not None:
        for _ in range(_TRUNCATION_ROUNDS):
            outside = z.abs() > truncation
            if not outside.any():
                break
            z = torch.where(outside, torch.randn(n, nz, generator=gen), z)
        z = z.clamp(-truncation, truncation)
    return z


def load_generator(
    run: str | Path, *, checkpoint: str = "best", ema: bool | None = None, device: str | torch.device = "cpu"
) -> LoadedGenerator:
    """Restore the generator of a run directory (or of a checkpoint file).

    ``checkpoint`` is ``best`` (falling back to ``last`` when no evaluation
    ran) or ``last``. ``ema`` None uses the EMA generator when the run has one.
    """
    path = find_checkpoint(run, checkpoint)
    device = torch.device(device)
    state = load_checkpoint(path, map_location=device)
    config = checked_model_config(state, path)
    has_ema = state.get("ema") is not None
    use_ema = has_ema if ema is None else ema
    if use_ema and not has_ema:
        raise RunError(f"--ema: the run in {run} was trained without --ema; sample the raw generator instead")
    weights = state.get("ema" if use_ema else "generator")
    _check_weights(config, weights, path)
    step, dataset = state.get("step"), state.get("dataset", {})
    if isinstance(step, bool) or not isinstance(step, int) or not isinstance(dataset, dict):
        raise RunError(f"{path}: not a valid checkpoint (step {step!r}, dataset {type(dataset).__name__})")
    module = Generator(config).to(device)
    module.load_state_dict(weights)
    module.eval().requires_grad_(False)
    return LoadedGenerator(module, config, step, use_ema, path, dict(dataset), device)


# Widths beyond these are no DCGAN anyone trains: a checkpoint asking for more
# is refused before a model is allocated from its numbers (ngf 300,000 would
# take 7.7 GB).
MAX_WIDTH = 2048
MAX_NZ = 4096
MAX_CLASSES = 100_000


def checked_model_config(state: dict[str, Any], path: Path) -> ModelConfig:
    """The model config of a loaded checkpoint, checked for types and sane
    sizes; RunError naming the file and the field otherwise."""
    data = state.get("model")
    if not isinstance(data, dict):
        raise RunError(f"{path}: not a valid checkpoint (its model config is {type(data).__name__}, not a table)")
    try:
        config = ModelConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise RunError(f"{path}: not a valid checkpoint (model config: {exc})") from None
    ints = {"image_size": None, "channels": 4, "num_classes": MAX_CLASSES, "nz": MAX_NZ, "ngf": MAX_WIDTH, "ndf": MAX_WIDTH}
    for name, limit in ints.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "num_classes" else 1) \
                or (limit is not None and value > limit):
            raise RunError(f"{path}: not a valid checkpoint (model {name} {value!r}"
                           f"{f', at most {limit}' if limit is not None else ''})")
    if not all(isinstance(c, str) for c in config.classes) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in (*config.offset, *config.scale)):
        raise RunError(f"{path}: not a valid checkpoint (model classes or normalization of the wrong type)")
    try:
        config.validate()
    except ConfigError as exc:
        raise RunError(f"{path}: not a valid checkpoint ({exc})") from None
    return config


def _check_weights(config: ModelConfig, weights: Any, path: Path) -> None:
    """The generator weights must be exactly the tensors the config's model
    has, shape for shape (checked on the meta device: nothing allocated)."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise RunError(f"{path}: not a valid checkpoint (the generator weights are not a table of tensors)")
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Generator(config).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))
        wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        extra = sorted(set(got) - set(expected))
        what = (f"missing {missing[0]}" if missing else f"{wrong[0]} has shape {got[wrong[0]]}, not {expected[wrong[0]]}"
                if wrong else f"unexpected {extra[0]}")
        raise RunError(f"{path}: not a valid checkpoint (generator weights do not fit its model config: {what})")


def grid_layout(num_classes: int, conditional: bool, n: int = 64, per_class: int = 8) -> tuple[torch.Tensor | None, int]:
    """Labels and column count of a sample grid: 8x8 for an unconditional
    model, one row of ``per_class`` per class (first 16 classes) otherwise."""
    if not conditional:
        return None, int(math.sqrt(n)) if int(math.sqrt(n)) ** 2 == n else 8
    shown = min(num_classes, MAX_GRID_CLASSES)
    return torch.arange(shown).repeat_interleave(per_class), per_class
