"""Normalization specs shared by the writer and the reader.

Every mode is the same affine map per channel, so one formula serves storage
and reading alike: ``normalized = (pixel / 255 - offset) / scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gandata.errors import ConfigError, FormatError


@dataclass(frozen=True)
class Normalization:
    """A per-channel affine normalization of [0, 1] pixel values."""

    mode: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "offset": list(self.offset), "scale": list(self.scale)}

    @classmethod
    def from_json(cls, data: Any) -> "Normalization":
        try:
            return cls(str(data["mode"]), tuple(float(v) for v in data["offset"]), tuple(float(v) for v in data["scale"]))
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"manifest: normalization {data!r} is not valid (needs mode, offset, scale)") from None

    def _shaped(self, values: tuple[float, ...], ndim: int, channel_axis: int) -> np.ndarray:
        shape = [1] * ndim
        shape[channel_axis] = len(values)
        return np.asarray(values, dtype=np.float32).reshape(shape)

    def apply(self, pixels: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        """uint8 pixels -> normalized float32 values."""
        ndim = pixels.ndim
        offset = self._shaped(self.offset, ndim, channel_axis)
        scale = self._shaped(self.scale, ndim, channel_axis)
        return ((pixels.astype(np.float32) / 255.0) - offset) / scale

    def invert(self, values: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        """Normalized values -> uint8 pixels (rounded and clipped)."""
        ndim = values.ndim
        offset = self._shaped(self.offset, ndim, channel_axis)
        scale = self._shaped(self.scale, ndim, channel_axis)
        pixels = (values.astype(np.float32) * scale + offset) * 255.0
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def normalization_for(mode: str, mean: Sequence[float], std: Sequence[float], channels: int) -> Normalization:
    """The normalization a build records, given the dataset's channel stats."""
    if mode == "minus1-1":
        return Normalization(mode, (0.5,) * channels, (0.5,) * channels)
    if mode == "zero-1":
        return Normalization(mode, (0.0,) * channels, (1.0,) * channels)
    mean = list(mean) or [0.0] * channels
    std = list(std) or [1.0] * channels
    if mode == "center":
        return Normalization(mode, tuple(mean), (1.0,) * channels)
    if mode == "standardize":
        # A constant channel has std 0; dividing by it would make NaNs.
        return Normalization(mode, tuple(mean), tuple(s if s > 1e-6 else 1.0 for s in std))
    raise ConfigError(f"--normalize: unknown mode {mode!r}")
