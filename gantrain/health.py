"""Training health: non-finite values and mode-collapse alarms.

Nothing here reads the GPU every step: the loop hands over values it already
synchronised for logging (every ``log_every`` steps) or computed for a sample
grid or an evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import torch


@dataclass(frozen=True)
class Alarm:
    """A sign that training is going wrong, for the log and the console."""

    kind: str  # d_loss_zero | low_diversity | class_collapse
    step: int
    message: str


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """True when every value of every tensor is finite (one host sync)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return bool(torch.stack(flags).all()) if flags else True


def pairwise_diversity(images: torch.Tensor) -> float:
    """Mean pairwise RMS distance between images: near 0 when they all look alike."""
    flat = images.detach().float().flatten(1)
    n = flat.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    return float(d.sum() / (n * (n - 1)))


def normalized_entropy(counts: Iterable[float]) -> float:
    """Entropy of a histogram divided by log(number of bins): 1 = uniform."""
    values = [float(c) for c in counts]
    total = sum(values)
    if total <= 0 or len(values) < 2:
        return 0.0
    h = -sum((c / total) * math.log(c / total) for c in values if c > 0)
    return max(0.0, h / math.log(len(values)))


class CollapseMonitor:
    """Raises an alarm once per episode when

    * the discriminator's loss stays below ``d_loss_threshold`` for
      ``windows`` logged windows in a row (D wins outright; G gets no signal),
    * the diversity of the fixed-noise samples falls below ``diversity_ratio``
      of the real images' diversity,
    * the entropy of the samples' class histogram falls below
      ``entropy_ratio`` of the real data's (the generator drops classes).
    """

    def __init__(self, d_loss_threshold: float, windows: int, diversity_ratio: float = 0.25, entropy_ratio: float = 0.6):
        self.d_loss_threshold = d_loss_threshold
        self.windows = windows
        self.diversity_ratio = diversity_ratio
        self.entropy_ratio = entropy_ratio
        self.low_d_windows = 0
        self.active: set[str] = set()

    def _raise(self, kind: str, step: int, message: str, condition: bool) -> Alarm | None:
        if not condition:
            self.active.discard(kind)
            return None
        if kind in self.active:
            return None
        self.active.add(kind)
        return Alarm(kind, step, message)

    def observe_d_loss(self, step: int, loss_d: float, window_steps: int) -> Alarm | None:
        self.low_d_windows = self.low_d_windows + 1 if loss_d < self.d_loss_threshold else 0
        return self._raise(
            "d_loss_zero", step,
            f"discriminator loss below {self.d_loss_threshold} for {self.low_d_windows * window_steps} steps: "
            "D wins outright and the generator gets no signal (try --diffaugment, --spectral-norm or a lower --lr-d)",
            self.low_d_windows >= self.windows,
        )

    def observe_diversity(self, step: int, samples: float, real: float) -> Alarm | None:
        ratio = samples / real if real > 0 else 1.0
        return self._raise(
            "low_diversity", step,
            f"sample diversity fell to {ratio:.2f} of the real images': possible mode collapse",
            ratio < self.diversity_ratio,
        )

    def observe_class_entropy(self, step: int, samples: float, real: float) -> Alarm | None:
        ratio = samples / real if real > 0 else 1.0
        return self._raise(
            "class_collapse", step,
            f"class-histogram entropy of samples is {samples:.2f} against {real:.2f} for real images: "
            "the generator is dropping classes",
            ratio < self.entropy_ratio,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"low_d_windows": self.low_d_windows, "active": sorted(self.active)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.low_d_windows = int(state.get("low_d_windows", 0))
        self.active = set(state.get("active", []))
