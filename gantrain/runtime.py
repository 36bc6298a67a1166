"""Device, precision and determinism: the choices that depend on the machine.

Resolved once at the start of a run, recorded in config.json, and never
consulted again through global state: the training loop reads the ``Runtime``.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from gantrain.errors import ConfigError

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    """How this process trains: device, precision and the CUDA fast paths."""

    device: torch.device
    precision: str  # fp32 | bf16 | fp16 (never "auto")
    channels_last: bool
    fused_adam: bool
    compile: bool
    deterministic: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context for forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_AUTOCAST_DTYPES[self.precision])

    @property
    def needs_grad_scaler(self) -> bool:
        # bf16 has float32's exponent range; only fp16 needs loss scaling.
        return self.precision == "fp16"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["device"] = str(self.device)
        return data


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """``auto`` picks CUDA (this rank's GPU under torchrun), then MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank or 0)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device: {name} was asked for but this PyTorch sees no CUDA GPU")
        if device.index is None:
            device = torch.device("cuda", local_rank or 0)
    return device


def resolve_precision(requested: str, device: torch.device) -> str:
    """``auto`` is bf16 on GPUs that support it and fp32 everywhere else."""
    if requested == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bf16"
        return "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError(f"--precision: fp16 needs a CUDA device (this run uses {device}); use bf16 or fp32")
    return requested


def resolve_runtime(
    device: torch.device, precision: str, channels_last: bool | None, compile: bool, deterministic: bool
) -> Runtime:
    """Turn the user's runtime options into concrete choices for ``device``."""
    on_cuda = device.type == "cuda"
    return Runtime(
        device=device,
        precision=resolve_precision(precision, device),
        # NHWC lets cuDNN use tensor-core convolution kernels without transposes,
        # and oneDNN's CPU convolutions prefer it too (64 px DCGAN step, 2-core
        # AVX2 EPYC: 2.66 s against 2.86 s, mean of 4 alternating runs). MPS: off.
        channels_last=device.type in ("cuda", "cpu") if channels_last is None else channels_last,
        fused_adam=on_cuda,
        compile=compile,
        deterministic=deterministic,
    )


def configure_determinism(deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels when asked (needed for bit-exact resume on GPUs);
    otherwise let cuDNN benchmark and pick the fastest convolution algorithms."""
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; it reads this
        # variable when its handle is created, so set it before first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        # Only touch the flag when it is on: the call imports torch._inductor,
        # which costs seconds of start-up.
        if torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = device.type == "cuda"
    if device.type == "cuda":
        # TF32 matmuls/convolutions: fp32 accuracy is not what GAN quality hinges on.
        torch.backends.cuda.matmul.allow_tf32 = not deterministic
        torch.backends.cudnn.allow_tf32 = not deterministic


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def global_rng_state() -> dict[str, Any]:
    """The global RNG states, in a form ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``global_rng_state`` captured."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
