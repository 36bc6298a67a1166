"""Evaluation that works offline, with every figure's protocol attached.

``Evaluator`` is prepared once per dataset: it loads the real images, gets
the (cached) evaluation classifier, draws two disjoint real sets R1 and R2 of
the same size n, and measures R2 against R1 -- the real-vs-real floor, the
best any generator can score with this n. ``evaluate`` then draws n generated
images (for a conditional model, asking for exactly R1's labels, so both sets
have the same class mix) and measures them against R1 in the same way.

The Frechet distance of one pair of real sets is itself noisy: over 20
random splits of 5,000 synth:shapes into two halves it ranged from 0.051 to
0.186 (mean 0.102), so a ratio to one split's floor said as much about the
split as about the model. The floor's Frechet distance is therefore the mean
over ``floor_splits`` random pairs of disjoint real sets of size n (R1/R2
the first), reported with its range.

Reported: Frechet distance, KID and precision/recall in the classifier's
feature space, the class histogram of the samples as the classifier sees them
(and its entropy), and for conditional models the share of samples classified
as the class asked for. With Inception weights (``inception_weights``) the
standard FID and KID are added, computed by torch-fidelity's Inception.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gantrain.classifier import (
    WEAK_ACCURACY,
    Classifier,
    ClassifierConfig,
    ProgressFn,
    load_or_train_classifier,
)
from gantrain.data import load_real_uint8, open_dataset
from gantrain.errors import DataError, EvalError
from gantrain.health import normalized_entropy
from gantrain.metrics import (
    SetDistances,
    class_histogram,
    frechet_distance,
    kernel_inception_distance,
    set_distances,
)

# generate(n, labels or None) -> uint8 pixels [n, C, H, W]
GenerateFn = Callable[[int, "torch.Tensor | None"], torch.Tensor]


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation protocol (printed with the figures)."""

    num_samples: int = 5000
    split: str | None = "train"
    seed: int = 0
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    batch_size: int = 250
    # Pairs of disjoint real sets whose mean Frechet distance is the floor.
    floor_splits: int = 10
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    cache_dir: str | None = None
    inception_weights: str | None = None

    def validate(self) -> None:
        if self.num_samples < 2:
            raise EvalError(f"--samples: {self.num_samples} must be at least 2")
        if self.classifier.steps < 1:
            raise EvalError(f"--classifier-steps: {self.classifier.steps} must be positive")
        if self.floor_splits < 1:
            raise EvalError(f"floor_splits: {self.floor_splits} must be at least 1")


@dataclass
class EvalReport:
    """Everything one evaluation measured, and how."""

    samples: SetDistances
    floor: SetDistances
    num_samples: int
    num_real: int
    split: str | None
    classifier: str
    classifier_accuracy: float
    class_names: tuple[str, ...] = ()
    class_histogram: list[int] | None = None
    real_class_histogram: list[int] | None = None
    class_entropy: float | None = None
    real_class_entropy: float | None = None
    class_accuracy: float | None = None
    inception: dict[str, float] | None = None
    model: str = ""
    # The floor's Frechet distance is the mean over this many real-vs-real
    # splits; their smallest and largest.
    floor_splits: int = 1
    floor_fd_range: tuple[float, float] | None = None

    @property
    def classifier_weak(self) -> bool:
        """True when the classifier is too inaccurate on real images to trust."""
        return not self.classifier_accuracy >= WEAK_ACCURACY

    @property
    def weak_note(self) -> str:
        """A warning to print beside class-based figures of a weak classifier."""
        return f"; WEAK classifier (< {WEAK_ACCURACY:.0%}): treat this figure as unreliable" if self.classifier_weak else ""

    @property
    def fd_ratio(self) -> float:
        """Frechet distance of the samples over the real-vs-real floor."""
        return self.samples.fd / self.floor.fd if self.floor.fd > 0 else math.inf

    @property
    def _floor_note(self) -> str:
        if self.floor_splits < 2 or self.floor_fd_range is None:
            return ""
        low, high = self.floor_fd_range
        return f", mean of {self.floor_splits} splits: {low:.4f}-{high:.4f}"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fd_ratio"] = self.fd_ratio
        data["classifier_weak"] = self.classifier_weak
        data["class_names"] = list(self.class_names)
        return data

    def lines(self) -> list[str]:
        """The report as text, each figure with its protocol."""
        s, f = self.samples, self.floor
        out = [
            f"protocol: {self.num_samples} generated vs {self.num_samples} real images (R1) from split "
            f"{self.split!r}; floor: {self.num_samples} other real images (R2) vs R1; "
            f"model: {self.model}",
            f"features: {self.classifier}",
            f"Frechet distance   {s.fd:10.4f}   (real-vs-real floor {f.fd:.4f}{self._floor_note}; ratio {self.fd_ratio:.2f})",
            f"KID                {s.kid:10.5f} +- {s.kid_std:.5f}   (floor {f.kid:.5f} +- {f.kid_std:.5f}; "
            f"subsets of {min(self.num_samples, 1000)})",
            f"precision          {s.precision:10.3f}   (floor {f.precision:.3f}; k=3 nearest neighbours)",
            f"recall             {s.recall:10.3f}   (floor {f.recall:.3f})",
        ]
        if self.class_accuracy is not None:
            out.append(
                f"classified as asked {self.class_accuracy:9.1%}   (share of samples the classifier assigns "
                f"to the class they were generated for; the classifier scores {self.classifier_accuracy:.1%} on "
                f"held-out real images{self.weak_note})"
            )
        if self.class_histogram is not None and self.real_class_histogram is not None:
            out.append(
                f"class entropy      {self.class_entropy:10.3f}   (real {self.real_class_entropy:.3f}; 1 = uniform)"
            )
            width = max(len(n) for n in self.class_names) if self.class_names else 5
            out.append(f"class histogram    {'class'.ljust(width)}  samples     real")
            for name, a, b in zip(self.class_names, self.class_histogram, self.real_class_histogram):
                out.append(f"                   {name.ljust(width)}  {a:7d}  {b:7d}")
        if self.inception:
            i = self.inception
            out.append(
                f"FID (Inception)    {i['fid']:10.3f}   (floor {i['fid_floor']:.3f}; standard pool3 features, "
                f"torch-fidelity inception-v3-compat, {self.num_samples} vs {self.num_samples})"
            )
            out.append(f"KID (Inception)    {i['kid']:10.5f}   (floor {i['kid_floor']:.5f})")
        return out


class Evaluator:
    """Real images, classifier and floor, prepared once; ``evaluate`` per model."""

    def __init__(self, data: str | Path, config: EvalConfig, device: torch.device, progress: ProgressFn | None = None):
        """``progress`` hears from the classifier's training (when it is not cached)."""
        config.validate()
        self.config = config
        self.device = device
        # The classifier and the class-conditional scores need a class per image.
        images, labels, info = load_real_uint8(data, config.split, labelled_only=True)
        self.info = info
        holdout = _val_split(data) if config.split == "train" else None
        self.classifier: Classifier = load_or_train_classifier(
            images, labels, info.classes, info.manifest_sha256, config.classifier, device, config.cache_dir, holdout,
            progress,
        )
        n = min(config.num_samples, len(images) // 2)
        if n < 2:
            raise DataError(f"DATA: {len(images)} images are too few to evaluate (two disjoint sets are needed)")
        self.n = n
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
        r1, r2 = perm[:n], perm[n : 2 * n]
        self.real_images = images[r1]
        self.real_labels = labels[r1]
        self.real_features, real_pred = self.classifier.features_and_predictions(self.real_images)
        other = images[r2]
        other_features, _ = self.classifier.features_and_predictions(other)
        split_fds = self._floor_fds(images, perm, other_features)
        self.floor = dataclasses.replace(self._distances(other_features), fd=float(np.mean(split_fds)))
        self.floor_fd_range = (float(min(split_fds)), float(max(split_fds)))
        self.labeled = self.classifier.task == "labels"
        self.real_hist = class_histogram(real_pred, len(info.classes)) if self.labeled else None
        self._other_images = other  # kept for the Inception floor

    def _floor_fds(self, images: torch.Tensor, perm: torch.Tensor, other_features: np.ndarray) -> list[float]:
        """Frechet distances of ``floor_splits`` pairs of disjoint real sets of
        size n: R1 against R2, then random pairs drawn (with the config's seed)
        from a pool of at most 4n real images, R1 and R2 included."""
        n, splits = self.n, self.config.floor_splits
        fds = [frechet_distance(self.real_features, other_features)]
        if splits == 1:
            return fds
        pool = perm[: min(len(images), 4 * n)]
        features = np.concatenate([self.real_features, other_features] + (
            [self.classifier.features_and_predictions(images[pool[2 * n :]])[0]] if len(pool) > 2 * n else []
        ))
        rng = np.random.default_rng(self.config.seed)
        for _ in range(splits - 1):
            pick = rng.permutation(len(features))
            fds.append(frechet_distance(features[pick[:n]], features[pick[n : 2 * n]]))
        return fds

    def _distances(self, features: np.ndarray) -> SetDistances:
        c = self.config
        return set_distances(
            self.real_features, features, kid_subsets=c.kid_subsets, kid_subset_size=c.kid_subset_size,
            pr_k=c.pr_k, seed=c.seed,
        )

    def generate(self, generate: GenerateFn, conditional: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """n generated uint8 images, asking a conditional model for R1's labels."""
        labels = self.real_labels if conditional else None
        out = []
        for start in range(0, self.n, self.config.batch_size):
            count = min(self.config.batch_size, self.n - start)
            out.append(generate(count, labels[start : start + count] if labels is not None else None).cpu())
        return torch.cat(out), labels

    def evaluate(self, generate: GenerateFn, conditional: bool, model: str = "") -> EvalReport:
        """Measure a generator against the real reference set."""
        fakes, asked = self.generate(generate, conditional)
        features, predictions = self.classifier.features_and_predictions(fakes)
        report = EvalReport(
            samples=self._distances(features),
            floor=self.floor,
            num_samples=self.n,
            num_real=self.info.num_samples,
            split=self.config.split,
            classifier=self.classifier.describe(),
            classifier_accuracy=self.classifier.accuracy,
            class_names=self.info.classes if self.labeled else (),
            model=model,
            floor_splits=self.config.floor_splits,
            floor_fd_range=self.floor_fd_range,
        )
        if self.labeled:
            k = len(self.info.classes)
            report.class_histogram = class_histogram(predictions, k)
            report.real_class_histogram = self.real_hist
            report.class_entropy = normalized_entropy(report.class_histogram)
            report.real_class_entropy = normalized_entropy(self.real_hist or [])
            if asked is not None:
                report.class_accuracy = float((torch.from_numpy(predictions) == asked).float().mean())
        if self.config.inception_weights:
            report.inception = inception_metrics(
                self.real_images, self._other_images, fakes, self.config.inception_weights, self.device, self.config
            )
        return report


def _val_split(data: str | Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The val split's images and labels, or None when the dataset has none."""
    try:
        if len(open_dataset(data, "val")) == 0:
            return None
        images, labels, _ = load_real_uint8(data, "val", labelled_only=True)
    except DataError:
        return None
    return images, labels


def inception_metrics(
    real: torch.Tensor, other_real: torch.Tensor, fakes: torch.Tensor, weights: str, device: torch.device,
    config: EvalConfig,
) -> dict[str, float]:
    """Standard FID/KID with torch-fidelity's Inception (pool3, 2048-d) loaded
    from a local weights file (pt_inception-2015-12-05-6726825d.pth)."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import (
            FeatureExtractorInceptionV3,
        )
    except ImportError:
        raise EvalError(
            "--inception-weights: standard FID needs torch-fidelity (pip install 'gandata[fid]' or torch-fidelity)"
        ) from None
    if not Path(weights).is_file():
        raise EvalError(f"--inception-weights: {weights} does not exist")
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    except Exception as exc:
        raise EvalError(f"--inception-weights: cannot load {weights}: {exc}") from None
    net = net.to(device).eval()

    @torch.no_grad()
    def feats(pixels: torch.Tensor) -> np.ndarray:
        out = []
        for start in range(0, len(pixels), 100):
            x = pixels[start : start + 100].to(device)
            if x.shape[1] == 1:  # Inception wants RGB
                x = x.repeat(1, 3, 1, 1)
            out.append(net(x)[0].double().cpu())
        return torch.cat(out).numpy()

    r1, r2, f = feats(real), feats(other_real), feats(fakes)
    kid, _ = kernel_inception_distance(r1, f, config.kid_subsets, config.kid_subset_size, config.seed)
    kid_floor, _ = kernel_inception_distance(r1, r2, config.kid_subsets, config.kid_subset_size, config.seed)
    return {"fid": frechet_distance(r1, f), "fid_floor": frechet_distance(r1, r2), "kid": kid, "kid_floor": kid_floor}


def evaluate_run(
    run: str | Path, *, checkpoint: str = "best", ema: bool | None = None, data: str | None = None,
    config: EvalConfig | None = None, device: str | torch.device = "cpu", progress: ProgressFn | None = None,
) -> EvalReport:
    """Evaluate the generator of a run directory against its dataset."""
    from gantrain.sample import load_generator

    config = config or EvalConfig()
    device = torch.device(device)
    g = load_generator(run, checkpoint=checkpoint, ema=ema, device=device)
    data_path = data or g.dataset.get("path")
    if not data_path:
        raise EvalError("--data: the checkpoint does not record its dataset; pass --data")
    evaluator = Evaluator(data_path, config, device, progress)
    if evaluator.info.image_shape != (g.config.channels, g.config.image_size, g.config.image_size):
        raise EvalError(f"--data: {data_path} holds {evaluator.info.image_shape} images; the model makes "
                        f"{(g.config.channels, g.config.image_size, g.config.image_size)}")

    # Seeds fixed per batch: two evaluations of one checkpoint give the same figures.
    seeds = itertools.count(config.seed * 1_000_003)

    def generate(n: int, labels: torch.Tensor | None) -> torch.Tensor:
        return g.to_pixels(g.generate(n, labels, seed=next(seeds)))

    label = f"{'EMA' if g.ema else 'raw'} generator, step {g.step}, {g.checkpoint.name}"
    return evaluator.evaluate(generate, g.conditional, model=label)
