"""Exponential moving average of the generator's weights.

Averaging the generator's weights over training gives visibly smoother,
better samples at no training cost. BatchNorm needs care: its running
statistics were gathered by the raw generator's weights, and they do not
describe the activations of the averaged weights. So the buffers are copied
from the raw generator while training (cheap, always usable), and
``recalibrate`` re-estimates them for the averaged weights before the EMA
generator is used for samples, evaluation or a checkpoint.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """An averaged copy of ``model``, updated after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

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
        for ema_buf, buf in zip(self.model.buffers(), model.buffers()):
            ema_buf.copy_(buf)

    @torch.no_grad()
    def recalibrate(self, batches: int, batch_size: int, seed: int = 0) -> None:
        """Re-estimate BatchNorm running statistics for the averaged weights.

        Uses its own random generator, so the training run's random streams are
        untouched (exact resume depends on it).
        """
        recalibrate_batchnorm(self.model, batches, batch_size, seed)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


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
