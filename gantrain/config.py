"""Configuration of a training run: frozen dataclasses, validated once.

``TrainConfig`` is what the user chooses (CLI flags or the Python API).
``ModelConfig`` is what the networks need, resolved from the training config
and the dataset's manifest (image size, channels, classes, normalization). Both
are stored as plain dicts in every checkpoint and in the run's ``config.json``,
so a run can be resumed or sampled without the original command line.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from gantrain.errors import ConfigError

LOSSES = ("bce", "hinge")
# Learning-rate schedules: constant, or linear decay of both learning rates to
# 0 at --steps (derived from the step alone, so a resume continues it exactly).
LR_DECAYS = ("none", "linear")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PLACEMENTS = ("auto", "device", "stream")
WEIGHT_MODES = ("sample", "none")
AUGMENTS = ("color", "translation", "cutout")
IMAGE_SIZES = (32, 64, 128)
# Discriminator bodies (gantrain.models): "pool" sees outlines (the default),
# "dcgan" is the paper's network, "resnet" the SNGAN/BigGAN-CIFAR one.
ARCHS = ("pool", "dcgan", "resnet")

# Defaults that depend on the hardware (options left at None choose these).
# A GPU gets the paper's sizes; a CPU gets a network and a run it can finish:
# at width 32 and batch 64 a step of the 32 px conditional model takes about
# 0.1-0.2 s on two cores, against seconds at width 64 and batch 128.
GPU_DEFAULTS = {"steps": 20_000, "batch_size": 128, "ngf": 64, "ndf": 64, "eval_samples": 2000}
CPU_DEFAULTS = {"steps": 6_000, "batch_size": 64, "ngf": 32, "ndf": 32, "eval_samples": 1000}
HARDWARE_DEFAULTED = tuple(GPU_DEFAULTS)

# Options that may change when a run is resumed: they steer the loop and its
# outputs, not the model or the optimisation, so the result stays comparable.
RESUMABLE_OVERRIDES = frozenset(
    {
        "steps", "log_every", "sample_every", "checkpoint_every", "eval_every", "eval_samples", "classifier_steps",
        "device", "compile", "data", "cache_dir", "placement", "precision", "channels_last",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a user chooses about one training run.

    ``steps`` is the total number of optimisation steps of the run (a resumed run
    continues up to it). ``batch_size`` is the global batch: with several
    processes each rank draws ``batch_size / world_size`` images per step, so a
    run means the same thing on any number of GPUs. ``steps``, ``batch_size``,
    ``ngf``, ``ndf`` and ``eval_samples`` left at None take the hardware's
    defaults (``GPU_DEFAULTS`` or ``CPU_DEFAULTS``, see ``with_hardware_defaults``).
    """

    data: str
    run_dir: str
    split: str | None = "train"
    steps: int | None = None
    batch_size: int | None = None
    conditional: bool = False
    # Architecture (Radford et al. defaults, but for the discriminator's body).
    arch: str = "pool"
    nz: int = 100
    ngf: int | None = None
    ndf: int | None = None
    # Spectral norm on every D layer and the hinge loss (both the default
    # since issue 20's third session): on synth:shapes (CPU, width 32, 3,000
    # steps, with the matching-aware D, the mode-seeking term and DiffAugment
    # translation) they took the best checkpoint from 92.4% classified as
    # asked and FD 69x the class-matched real-vs-real floor (BCE, no
    # spectral norm) to 94.9% and 53x at seed 0, and from 92.2% / 55x to
    # 96.2% / 47x at seed 1, at the same CPU time.
    spectral_norm: bool = True
    # BigGAN's skip-z: every BatchNorm of G takes its scale and shift from z
    # and the class (gantrain.models.LatentBatchNorm2d), instead of from the
    # class alone. The default since issue 20's seventh session: on
    # synth:shapes (CPU, width 32, batch 64, 3,000 steps) the best checkpoint
    # went from FD 2.72 (63x the class-matched floor) to 1.88 (43x) at seed 0
    # and from 2.88 (52x) to 1.84 (33x) at seed 1, and on MNIST-style digits
    # from 0.398 to 0.370 at 99.8% classified as asked, at the same CPU time.
    skip_z: bool = True
    # Optimisation (Radford et al.: Adam 2e-4, betas 0.5/0.999; the loss is
    # hinge, see above, where the paper's is BCE).
    loss: str = "hinge"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema: bool = False
    # The decay used at step k is min(ema_decay, (1 + k) / (10 + k)) (ema.py):
    # below 0.999 for the first 8,990 updates, so any ema_decay >= 0.999
    # gives the same average up to there (issue 20: 0.9995 evaluated
    # identically to 0.999).
    ema_decay: float = 0.999
    # "linear": both learning rates fall linearly from lr_g / lr_d at step 0
    # to 0 at ``steps`` (see ``lr_factor``); "none": constant.
    lr_decay: str = "none"
    # Conditional only: weight of an auxiliary classifier (AC-GAN) on D's own
    # features, trained from scratch with D: D learns to classify real images
    # (cross-entropy), G to make its fakes classified as the class asked for
    # (0 = off, no head is built).
    aux_weight: float = 0.0
    # Matching-aware D (conditional only): real images shown with a wrong
    # class count as fakes with this weight, so D must check the class from
    # its first steps instead of only "real or generated" (0 = off). On
    # synth:shapes it took the share classified as asked at step 500 from 20%
    # to 33% (CPU, width 32), and a colour-coded toy set from one colour for
    # all classes to 60% at step 400.
    mismatch: float = 1.0
    # Weight of the mode-seeking term in G's loss (0 = off): pairs of fakes of
    # one class with different noise are pushed apart, against the generator
    # that draws one image per class. With the matching-aware D on
    # synth:shapes (CPU, width 32, step 3,000, BCE): 84% classified as asked,
    # FD 9.0, recall 0.23, against 70% / 26.0 / 0.00 without it. 0.3 since
    # issue 20's fourth session (was 1.0): with hinge + spectral norm, weight
    # 1.0 spread MNIST-style digits into smudges (precision 0.37-0.41, FD
    # 0.95-1.14 at two seeds) where 0.3 gave 0.35-0.40 at 99.8%; on the
    # shapes it costs a quarter more FD (2.28 -> 2.84, 1.97 -> 2.50) at the
    # same share classified as asked (docs/GANTRAIN.md, Measured numbers).
    diversity: float = 0.3
    # Data handling.
    flip: bool = False
    # DiffAugment policies applied to every image D sees (real and fake);
    # () = off. Default: random translation by up to 1/8 of the size. On
    # synth:shapes (CPU, width 32, 3,000 steps, issue 20) it took the best
    # checkpoint from 86.4% classified as asked and FD 151x the class-matched
    # real-vs-real floor to 92.4% and 69x (meant to keep D from memorising the 5,000
    # images; the runs without it peaked and then lost variety).
    diffaugment: tuple[str, ...] = ("translation",)
    weights: str = "sample"
    placement: str = "auto"
    # Runtime.
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None  # None: on for CUDA, off elsewhere
    compile: bool = False
    deterministic: bool = False
    seed: int = 0
    # Outputs.
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 1000
    # None: evaluate at every checkpoint; 0: never evaluate during training.
    eval_every: int | None = None
    eval_samples: int | None = None
    # Most training steps of the evaluation classifier (part of its cache key);
    # it stops earlier once its held-out accuracy reaches its target.
    classifier_steps: int = 600
    cache_dir: str | None = None
    # Collapse alarm: D loss below this for this many logged windows.
    collapse_d_loss: float = 0.05
    collapse_windows: int = 10

    @classmethod
    def default_of(cls, name: str) -> Any:
        """The default of field ``name``: each option's default is declared
        once, here, and the CLI and the benchmarks read it."""
        field_ = cls.__dataclass_fields__[name]
        return field_.default_factory() if field_.default is dataclasses.MISSING else field_.default  # type: ignore[misc]

    def validate(self) -> None:
        """Check every option; raises ``ConfigError`` naming the CLI option."""
        if not self.data:
            raise ConfigError("DATA: a dataset directory is needed")
        if not self.run_dir:
            raise ConfigError("-o/--output: a run directory is needed")
        positive = {
            "--steps": self.steps, "--batch-size": self.batch_size, "--nz": self.nz, "--ngf": self.ngf,
            "--ndf": self.ndf, "--log-every": self.log_every, "--sample-every": self.sample_every,
            "--checkpoint-every": self.checkpoint_every, "--eval-samples": self.eval_samples,
            "--classifier-steps": self.classifier_steps,
            "--collapse-windows": self.collapse_windows,
        }
        for option, value in positive.items():
            if value is None and option.lstrip("-").replace("-", "_") in HARDWARE_DEFAULTED:
                continue  # chosen for the hardware by with_hardware_defaults
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{option}: {value!r} must be a positive integer")
        if self.eval_every is not None and self.eval_every < 0:
            raise ConfigError(f"--eval-every: {self.eval_every} must be 0 (off) or positive")
        if self.arch not in ARCHS:
            raise ConfigError(f"--arch: {self.arch!r} must be one of {', '.join(ARCHS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss: {self.loss!r} must be one of {', '.join(LOSSES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision: {self.precision!r} must be one of {', '.join(PRECISIONS)}")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"--placement: {self.placement!r} must be one of {', '.join(PLACEMENTS)}")
        if self.weights not in WEIGHT_MODES:
            raise ConfigError(f"--weights: {self.weights!r} must be one of {', '.join(WEIGHT_MODES)}")
        for policy in self.diffaugment:
            if policy not in AUGMENTS:
                raise ConfigError(f"--diffaugment: {policy!r} must be among {', '.join(AUGMENTS)}")
        if not 0.0 <= self.diversity <= 10.0:
            raise ConfigError(f"--diversity: {self.diversity} must be in [0, 10]")
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(f"--lr-decay: {self.lr_decay!r} must be one of {', '.join(LR_DECAYS)}")
        if not 0.0 <= self.aux_weight <= 10.0:
            raise ConfigError(f"--aux-weight: {self.aux_weight} must be in [0, 10]")
        if self.aux_weight and not self.conditional:
            raise ConfigError("--aux-weight: the auxiliary classifier needs --conditional (class labels)")
        if not 0.0 <= self.mismatch <= 10.0:
            raise ConfigError(f"--mismatch: {self.mismatch} must be in [0, 10]")
        for option, value in (("--lr-g", self.lr_g), ("--lr-d", self.lr_d)):
            if not value > 0:
                raise ConfigError(f"{option}: {value} must be positive")
        for option, value in (("--beta1", self.beta1), ("--beta2", self.beta2), ("--ema-decay", self.ema_decay)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{option}: {value} must be in [0, 1)")
        if self.device not in ("auto", "cpu") and not self.device.startswith(("cuda", "mps")):
            raise ConfigError(f"--device: {self.device!r} must be auto, cpu, cuda, cuda:N or mps")

    def with_hardware_defaults(self, device_type: str) -> "TrainConfig":
        """This config with every option left at None set for the hardware:
        ``GPU_DEFAULTS`` on "cuda", ``CPU_DEFAULTS`` elsewhere (CPU, MPS)."""
        table = GPU_DEFAULTS if device_type == "cuda" else CPU_DEFAULTS
        changes = {key: value for key, value in table.items() if getattr(self, key) is None}
        return dataclasses.replace(self, **changes)

    def lr_factor(self, step: int) -> float:
        """The multiplier of lr_g and lr_d for the update made at ``step``
        (0-based: the first update is step 0). Linear decay reaches 0 only
        after the last update (step ``steps - 1`` gets 1/steps). A function
        of the step and ``steps`` alone: nothing is stored, and a resumed run
        with the same --steps follows the schedule exactly (a resume that
        changes --steps re-derives the rest of the schedule from the new total)."""
        if self.lr_decay == "none":
            return 1.0
        total = self.steps or 1
        return max(0.0, 1.0 - step / total)

    @property
    def resolved_eval_every(self) -> int:
        """Steps between evaluations during training (0 = never)."""
        return self.checkpoint_every if self.eval_every is None else self.eval_every

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready data (saved in config.json and checkpoints)."""
        data = dataclasses.asdict(self)
        data["diffaugment"] = list(self.diffaugment)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Rebuild a config saved by ``to_json``; unknown keys are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"config: unknown option(s) {', '.join(sorted(unknown))}")
        values = dict(data)
        values["diffaugment"] = tuple(values.get("diffaugment", ()))  # saved by every version; () = none
        # Runs saved before "arch" existed trained the paper's network.
        values.setdefault("arch", "dcgan")
        values.setdefault("mismatch", 0.0)
        values.setdefault("diversity", 0.0)
        values.setdefault("lr_decay", "none")
        values.setdefault("aux_weight", 0.0)
        values.setdefault("skip_z", False)
        return cls(**values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """This (saved) config with the options a resumed run may change.

        Any other option that differs from the saved value is refused, because
        it would make the resumed run a different experiment.
        """
        changes = {}
        for key, value in overrides.items():
            if key in ("run_dir",):
                continue
            if key == "diffaugment":
                value = tuple(value)
            current = getattr(self, key)
            if value == current:
                continue
            if key not in RESUMABLE_OVERRIDES:
                option = "--" + key.replace("_", "-")
                raise ConfigError(
                    f"{option}: the run was trained with {current!r}; a resumed run keeps it "
                    f"(drop the option, or start a new run in another directory)"
                )
            changes[key] = value
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelConfig:
    """What the generator and discriminator are built from.

    ``offset``/``scale`` are the dataset's normalization (normalized =
    (pixel - offset) / scale with pixel in [0, 1]); the generator maps its Tanh
    output into exactly that range, so samples can be turned back into pixels
    without the dataset at hand.
    """

    image_size: int
    channels: int
    num_classes: int = 0
    conditional: bool = False
    arch: str = "pool"
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    spectral_norm: bool = False
    skip_z: bool = False
    # An auxiliary classifier head on D's features (TrainConfig.aux_weight > 0).
    aux_classifier: bool = False
    offset: tuple[float, ...] = field(default_factory=tuple)
    scale: tuple[float, ...] = field(default_factory=tuple)
    classes: tuple[str, ...] = field(default_factory=tuple)

    def validate(self) -> None:
        """Refuse sizes and shapes the DCGAN cannot be built for."""
        if self.image_size not in IMAGE_SIZES:
            raise ConfigError(
                f"image size {self.image_size} px is not supported: the DCGAN is built for "
                f"{', '.join(map(str, IMAGE_SIZES))} px (rebuild the dataset with gandata build --size 64)"
            )
        if self.arch not in ARCHS:
            raise ConfigError(f"--arch: {self.arch!r} must be one of {', '.join(ARCHS)}")
        if self.aux_classifier and not self.conditional:
            raise ConfigError("--aux-weight: the auxiliary classifier needs --conditional (class labels)")
        if self.channels < 1:
            raise ConfigError(f"channels: {self.channels} must be at least 1")
        if self.conditional and self.num_classes < 2:
            raise ConfigError(
                "--conditional: the dataset has no labels (or a single class); "
                "train an unconditional model or build the dataset with labels"
            )
        for name, values in (("offset", self.offset), ("scale", self.scale)):
            if len(values) != self.channels:
                raise ConfigError(f"normalization {name}: {len(values)} values for {self.channels} channels")
        if any(s == 0 for s in self.scale):
            raise ConfigError("normalization scale: a scale of 0 cannot be inverted")

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("offset", "scale", "classes"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ModelConfig":
        values = dict(data)
        # Checkpoints written before "arch" existed hold the paper's network.
        values.setdefault("arch", "dcgan")
        values.setdefault("skip_z", False)
        for key in ("offset", "scale", "classes"):
            values[key] = tuple(values.get(key, ()))
        return cls(**values)
