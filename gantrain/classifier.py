"""The offline evaluation network: a small CNN trained on the dataset itself.

Inception weights cannot be downloaded behind a firewall, and Inception's
ImageNet features say little about, say, 32 px procedural shapes. So gantrain
trains a small classifier on the dataset's own real images (once per dataset
and classifier config, seeded, cached) and measures generated images in its
penultimate feature space. A labeled dataset trains it to predict the labels;
an unlabeled one trains it to predict which of four rotations was applied
(a self-supervised task whose features still describe the images' content).
Its held-out accuracy is reported with every figure, because features are
only as meaningful as the network that makes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gantrain.augment import translation
from gantrain.errors import EvalError

FORMAT = "gantrain-classifier"
VERSION = 2


# progress(step, max_steps, held-out accuracy or None): called while training.
ProgressFn = Callable[[int, int, "float | None"], None]

# Below this held-out accuracy the classifier's verdicts are flagged as weak.
WEAK_ACCURACY = 0.9


@dataclass(frozen=True)
class ClassifierConfig:
    """How the evaluation classifier is trained (part of its cache key).

    Sized to train in well under a minute on two CPU cores at 32 px: width 16,
    at most ``steps`` steps, stopping early once the held-out accuracy reaches
    ``target_accuracy`` (checked every ``check_every`` steps). An earlier
    config (width 32, 1,000 fixed steps at batch 128) took 8.5 minutes on a
    CPU before a run's first step, with no progress shown.
    """

    width: int = 16
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    # Held out to measure accuracy when the dataset has no val split.
    holdout_fraction: float = 0.1
    target_accuracy: float = 0.99
    check_every: int = 50
    # Horizontal flips as augmentation: off by default, because a flip changes
    # the class of digits and text (a mirrored "3" is no digit).
    flip: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FeatureNet(nn.Module):
    """conv3x3-BN-ReLU-maxpool stages down to 4x4, then global average pooling.

    Takes uint8 pixels; features are the pooled activations ([N, 8 * width]).
    """

    def __init__(self, channels: int, num_outputs: int, width: int, image_size: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, size, i = channels, image_size, 0
        while size > 4:
            c_out = width * min(2**i, 8)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c_in, size, i = c_out, size // 2, i + 1
        layers += [nn.Conv2d(c_in, width * 8, 3, padding=1, bias=False), nn.BatchNorm2d(width * 8), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width * 8, num_outputs)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 127.5 - 1.0
        return self.body(x).mean(dim=(2, 3))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(pixels))


@dataclass
class Classifier:
    """A trained evaluation network and what is known about its quality."""

    net: FeatureNet
    task: str  # "labels" or "rotation"
    classes: tuple[str, ...]
    accuracy: float
    accuracy_on: str  # what the accuracy was measured on
    num_train: int
    config: ClassifierConfig
    path: Path | None = None
    cached: bool = False
    steps_trained: int | None = None
    train_seconds: float | None = None

    @property
    def weak(self) -> bool:
        """True when the held-out accuracy is too low to trust its verdicts."""
        return not self.accuracy >= WEAK_ACCURACY

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def features_and_predictions(self, pixels: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features (float64 [N, D]) and predicted class ids of uint8 images."""
        self.net.eval()
        feats, preds = [], []
        for start in range(0, len(pixels), batch_size):
            x = pixels[start : start + batch_size].to(self.device)
            f = self.net.features(x)
            feats.append(f.double().cpu())
            preds.append(self.net.head(f).argmax(1).cpu())
        if not feats:
            return np.zeros((0, self.net.head.in_features)), np.zeros(0, dtype=np.int64)
        return torch.cat(feats).numpy(), torch.cat(preds).numpy()

    @torch.no_grad()
    def probabilities(self, pixels: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Softmax class probabilities (float64 [N, K]) of uint8 images [N, C, H, W]."""
        self.net.eval()
        out = []
        for start in range(0, len(pixels), batch_size):
            x = pixels[start : start + batch_size].to(self.device)
            out.append(torch.softmax(self.net(x).double(), dim=1).cpu())
        if not out:
            return np.zeros((0, self.net.head.out_features))
        return torch.cat(out).numpy()

    def describe(self) -> str:
        what = f"{len(self.classes)}-class labels" if self.task == "labels" else "rotation (self-supervised, unlabeled data)"
        steps = self.steps_trained if self.steps_trained is not None else self.config.steps
        weak = f" [WEAK: below {WEAK_ACCURACY:.0%}, its verdicts are unreliable]" if self.weak else ""
        return (
            f"gantrain classifier, task {what}, width {self.config.width}, {steps} steps on "
            f"{self.num_train} images, accuracy {self.accuracy:.1%} on {self.accuracy_on}{weak}"
        )


def default_cache_dir() -> Path:
    """$GANTRAIN_CACHE, else ~/.cache/gantrain."""
    return Path(os.environ.get("GANTRAIN_CACHE") or Path.home() / ".cache" / "gantrain")


def cache_path(cache_dir: str | Path, manifest_sha256: str, config: ClassifierConfig) -> Path:
    key = hashlib.sha256(json.dumps(config.to_json(), sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / "classifiers" / f"{manifest_sha256[:16]}-{key}-v{VERSION}.pt"


def _rotate(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    for turns in range(1, 4):
        sel = k == turns
        if sel.any():
            out[sel] = torch.rot90(x[sel], turns, dims=(2, 3))
    return out


def _task_batch(x: torch.Tensor, y: torch.Tensor, task: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if task == "rotation":
        k = torch.randint(4, (x.shape[0],), generator=gen, device=x.device)
        return _rotate(x, k), k
    return x, y


@torch.no_grad()
def _accuracy(net: FeatureNet, images: torch.Tensor, labels: torch.Tensor, task: str, batch_size: int = 500) -> float:
    net.eval()
    correct, total = 0, 0
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size]
        y = labels[start : start + batch_size]
        if task == "rotation":
            for turns in range(4):
                pred = net(torch.rot90(x, turns, dims=(2, 3))).argmax(1)
                correct += int((pred == turns).sum())
                total += len(x)
        else:
            correct += int((net(x).argmax(1) == y).sum())
            total += len(x)
    return correct / max(total, 1)


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], config: ClassifierConfig,
    device: torch.device, holdout: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: ProgressFn | None = None,
) -> Classifier:
    """Train the evaluation network on uint8 ``images`` [N, C, H, W].

    ``holdout`` (the val split) measures accuracy; without it a seeded
    ``holdout_fraction`` of ``images`` is held out. Training stops early once
    the held-out accuracy reaches ``config.target_accuracy``; ``progress`` is
    told the step and the accuracy at every check.
    """
    task = "labels" if len(classes) >= 2 else "rotation"
    gen_cpu = torch.Generator().manual_seed(config.seed)
    if holdout is None or len(holdout[0]) == 0:
        perm = torch.randperm(len(images), generator=gen_cpu)
        n_hold = max(1, int(len(images) * config.holdout_fraction)) if len(images) > 10 else 0
        hold_idx, train_idx = perm[:n_hold], perm[n_hold:]
        holdout = (images[hold_idx], labels[hold_idx])
        accuracy_on = f"{n_hold} held-out train images ({config.holdout_fraction:.0%})"
        images, labels = images[train_idx], labels[train_idx]
    else:
        accuracy_on = f"the val split ({len(holdout[0])} images)"
    if len(images) == 0:
        raise EvalError("evaluation: the dataset has no images to train the evaluation classifier on")
    if task == "labels" and int(labels.min()) < 0:
        raise EvalError("evaluation: some images have no label (-1); the classifier needs every image labeled")
    c, h, _ = images.shape[1:]
    torch.manual_seed(config.seed)
    net = FeatureNet(c, len(classes) if task == "labels" else 4, config.width, h).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    # Constant rate, then a tenth of it for the second half. On synth:shapes
    # the held-out accuracy wanders around 90% at the full rate and jumps to
    # 99% within 50 steps of the drop, so the drop comes early enough for the
    # early stop to end training well before the step budget.
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(config.steps * 0.5)], gamma=0.1)
    images_dev, labels_dev = images.to(device), labels.to(device)
    hold_x, hold_y = holdout[0].to(device), holdout[1].to(device)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    accuracy, steps_done = float("nan"), 0
    net.train()
    for step in range(1, config.steps + 1):
        idx = torch.randint(len(images_dev), (config.batch_size,), generator=gen, device=device)
        x, y = _task_batch(images_dev[idx], labels_dev[idx], task, gen)
        # Light augmentation (shift, and flips only where they keep the class)
        # so the features do not overfit a small set.
        if config.flip and task == "labels":
            flip = torch.rand(x.shape[0], generator=gen, device=device) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        x = translation(x.float(), gen, ratio=0.0625)
        loss = F.cross_entropy(net.head(net.body(x / 127.5 - 1.0).mean(dim=(2, 3))), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        steps_done = step
        if step % config.check_every == 0 or step == config.steps:
            accuracy = _accuracy(net, hold_x, hold_y, task) if len(hold_x) else float("nan")
            net.train()
            if progress is not None:
                progress(step, config.steps, accuracy)
            if accuracy >= config.target_accuracy:
                break
    net.eval().requires_grad_(False)
    return Classifier(net, task, tuple(classes), accuracy, accuracy_on, len(images), config, steps_trained=steps_done)


def save_classifier(classifier: Classifier, path: Path, manifest_sha256: str) -> None:
    """Write the classifier to the cache (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "version": VERSION, "state_dict": classifier.net.state_dict(), "task": classifier.task,
        "classes": list(classifier.classes), "accuracy": classifier.accuracy, "accuracy_on": classifier.accuracy_on,
        "num_train": classifier.num_train, "config": classifier.config.to_json(), "manifest_sha256": manifest_sha256,
        "steps_trained": classifier.steps_trained, "train_seconds": classifier.train_seconds,
        "input": [classifier.net.body[0].in_channels, _input_size(classifier)],
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    classifier.path = path


def _input_size(classifier: Classifier) -> int:
    pools = sum(isinstance(m, nn.MaxPool2d) for m in classifier.net.body)
    return 4 * 2**pools


def load_classifier(path: Path, device: torch.device) -> Classifier:
    """Read a cached classifier."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise EvalError(f"{path}: not a readable classifier cache ({exc}); delete it to retrain") from None
    if state.get("format") != FORMAT or state.get("version") != VERSION:
        raise EvalError(f"{path}: not a gantrain classifier of version {VERSION}; delete it to retrain")
    config = ClassifierConfig(**state["config"])
    channels, size = state["input"]
    outputs = len(state["classes"]) if state["task"] == "labels" else 4
    net = FeatureNet(channels, outputs, config.width, size).to(device)
    net.load_state_dict(state["state_dict"])
    net.eval().requires_grad_(False)
    return Classifier(
        net, state["task"], tuple(state["classes"]), float(state["accuracy"]), state["accuracy_on"],
        int(state["num_train"]), config, path, cached=True, steps_trained=state.get("steps_trained"),
        train_seconds=state.get("train_seconds"),
    )


def load_or_train_classifier(
    images: torch.Tensor, labels: torch.Tensor, classes: tuple[str, ...], manifest_sha256: str,
    config: ClassifierConfig, device: torch.device, cache_dir: str | Path | None = None,
    holdout: tuple[torch.Tensor, torch.Tensor] | None = None, progress: ProgressFn | None = None,
) -> Classifier:
    """The cached classifier for this dataset and config, training it on first use."""
    path = cache_path(cache_dir or default_cache_dir(), manifest_sha256, config)
    if path.is_file():
        return load_classifier(path, device)
    start = time.perf_counter()
    classifier = train_classifier(images, labels, classes, config, device, holdout, progress)
    classifier.train_seconds = time.perf_counter() - start
    save_classifier(classifier, path, manifest_sha256)
    return classifier
