"""Exponential moving average of the generator's weights.

Averaging the generator's weights over training gives visibly smoother,
better samples at no training cost. BatchNorm needs care: its running
statistics were gathered by the raw generator's weights, and they do not
describe the activations of the averaged weights. So the average keeps its
own statistics: every update marks them stale, and ``state_dict`` and
``calibrated`` re-estimate them for the averaged weights from fresh noise
(``recalibrate``) before the EMA generator is sampled, evaluated or written
to a checkpoint -- at any step, an interrupt included. An earlier version
copied the raw generator's buffers at every step and recalibrated only for
grids and evaluations, so a checkpoint taken at any other step stored
statistics that did not match its weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """An averaged copy of ``model``, updated after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float, calibration_batches: int = 16, calibration_batch_size: int = 64):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.calibration_batches = calibration_batches
        self.calibration_batch_size = calibration_batch_size
        self._stale = True

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights.

        The effective decay ramps up from 0 ((1 + step) / (10 + step)), so the
        average is not dominated by the random initial weights early in training.
        """
        decay = min(self.decay, (1 + step) / (10 + step))
        ema_params = list(self.model.parameters())
        params = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        # BatchNorm statistics are not averaged: they are re-estimated for
        # these weights when next needed.
        self._stale = True

    def calibrated(self) -> nn.Module:
        """The averaged generator with BatchNorm statistics that match its
        weights (recalibrated if the weights moved since the last time)."""
        if self._stale:
            self.recalibrate(self.calibration_batches, self.calibration_batch_size)
        return self.model

    @torch.no_grad()
    def recalibrate(self, batches: int, batch_size: int, seed: int = 0) -> None:
        """Re-estimate BatchNorm running statistics for the averaged weights.

        Uses its own random generator, so the training run's random streams are
        untouched (exact resume depends on it).
        """
        recalibrate_batchnorm(self.model, batches, batch_size, seed)
        self._stale = False

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights with statistics recalibrated for them."""
        return self.calibrated().state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore weights and (already calibrated) statistics."""
        self.model.load_state_dict(state)
        self._stale = False


@torch.no_grad()
def recalibrate_batchnorm(generator: nn.Module, batches: int, batch_size: int, seed: int = 0) -> None:
    """Reset and re-accumulate every BatchNorm's running mean/var in ``generator``
    (a cumulative average over ``batches`` batches of fresh noise)."""
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    config = generator.config  # type: ignore[attr-defined]
    device = next(generator.parameters()).device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    for _ in range(batches):
        z = torch.randn(batch_size, config.nz, generator=gen, device=device)
        labels = None
        if config.conditional:
            labels = torch.randint(config.num_classes, (batch_size,), generator=gen, device=device)
        generator(z, labels)
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
