"""Evaluation that works offline, with every figure's protocol attached.

``Evaluator`` is prepared once per dataset: it loads the real images, gets
the (cached) evaluation classifier, draws two disjoint real sets R1 and R2 of
the same size n, and measures R2 against R1 -- the real-vs-real floor, the
best any generator can score with this n. ``evaluate`` then draws n generated
images (for a conditional model, asking for exactly R1's labels, so both sets
have the same class mix) and measures them against R1 in the same way.

The floor depends on how a perfect generator's images would differ from R1.
A conditional model is asked for R1's labels, so its images have exactly R1's
class counts: its floor compares R1 with real sets of the same class counts
(R1 and R2 are drawn that way, class by class). An unconditional model's
class mix varies like a random draw's: its floor compares random real sets.
Either floor's Frechet distance is the mean over ``floor_splits`` pairs of
disjoint real sets of size n (drawn from at most 4n real images), reported
with its range: one pair's value is noisy. On the 5,000-image shapes set,
300 random halvings gave 0.082 on average (0.033-0.322), halvings with equal
class counts 0.046 (0.026-0.100): most of a random pair's distance, and of
its spread, is the difference of class mix.
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
    floor_splits: int = 20
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
    # The floor's Frechet distance is the mean over this many pairs of real
    # sets (with R1's class counts when ``floor_class_matched``, else drawn
    # at random); their smallest and largest.
    floor_splits: int = 1
    floor_fd_range: tuple[float, float] | None = None
    floor_class_matched: bool = False

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
        pairs = "with R1's class counts" if self.floor_class_matched else "drawn at random"
        if self.floor_splits < 2 or self.floor_fd_range is None:
            return f", real sets {pairs}"
        low, high = self.floor_fd_range
        return f", mean of {self.floor_splits} pairs of real sets {pairs}: {low:.4f}-{high:.4f}"

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


def _class_counts(labels: np.ndarray, n: int) -> dict[int, int]:
    """Images per class in a set of ``n`` with the classes' shares of
    ``labels`` (largest remainders round; at most half of each class, so two
    such sets are disjoint, which may leave the set a little short of n)."""
    classes, totals = np.unique(labels, return_counts=True)
    exact = n * totals / len(labels)
    counts = np.minimum(np.floor(exact).astype(np.int64), totals // 2)
    for i in np.argsort(-(exact - np.floor(exact)), kind="stable"):
        if counts.sum() >= n:
            break
        if counts[i] < totals[i] // 2:
            counts[i] += 1
    return {int(c): int(k) for c, k in zip(classes, counts)}


def _matched_pair(labels: np.ndarray, counts: dict[int, int], rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index sets into ``labels`` with ``counts[c]`` images of
    each class c: the first of each class in the given order (``rng`` None),
    or in a random order; each set sorted, so it keeps the draw's order."""
    first, second = [], []
    for c, k in counts.items():
        where = np.flatnonzero(labels == c)
        if rng is not None:
            where = rng.permutation(where)
        first.append(where[:k])
        second.append(where[k : 2 * k])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


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
        perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
        pool = perm[: min(len(images), 4 * n)]
        pool_labels = labels[pool].numpy()
        self.class_matched = bool(info.classes)
        rng = np.random.default_rng(config.seed)
        if self.class_matched:
            counts = _class_counts(pool_labels, n)
            r1, r2 = _matched_pair(pool_labels, counts, None)
        else:
            r1, r2 = np.arange(n), np.arange(n, 2 * n)
        self.n = len(r1)
        if self.n < 2:
            raise DataError(f"DATA: {len(images)} images are too few to evaluate (two disjoint sets with the same classes are needed)")
        pool_features, pool_pred = self.classifier.features_and_predictions(images[pool])
        self.real_images = images[pool[r1]]
        self.real_labels = labels[pool[r1]]
        self.real_features, real_pred = pool_features[r1], pool_pred[r1]
        pair = self._distances(pool_features[r2])
        # Per kind of pair, the mean Frechet distance over floor_splits
        # pairs, R1/R2 the first of its own kind.
        fds: dict[str, list[float]] = {"random": [], "matched": []}
        for k in range(config.floor_splits):
            if self.class_matched:
                a, b = (r1, r2) if k == 0 else _matched_pair(pool_labels, counts, rng)
                fds["matched"].append(frechet_distance(pool_features[a], pool_features[b]))
            if k == 0 and not self.class_matched:
                a, b = r1, r2
            else:
                order = rng.permutation(len(pool))
                a, b = order[: self.n], order[self.n : 2 * self.n]
            fds["random"].append(frechet_distance(pool_features[a], pool_features[b]))
        self.floors = {
            kind: (dataclasses.replace(pair, fd=float(np.mean(values))), (float(min(values)), float(max(values))))
            for kind, values in fds.items() if values
        }
        self.labeled = self.classifier.task == "labels"
        self.real_hist = class_histogram(real_pred, len(info.classes)) if self.labeled else None
        self._other_images = images[pool[r2]]  # kept for the Inception floor

    @property
    def floor(self) -> SetDistances:
        """The floor of an unconditional model (random pairs of real sets)."""
        return self.floors["random"][0]

    def perturbed_real_fd(self, perturb: Callable[[torch.Tensor], torch.Tensor]) -> float:
        """The Frechet distance from R1 to the other real set R2 after
        ``perturb`` (float pixels [N, C, H, W] in 0-255 -> the same; the
        result is rounded and clipped to uint8). A yardstick for what a
        distance means in this feature space: how far, say, slightly blurred
        real images are from the real ones."""
        pixels = perturb(self._other_images.float()).round().clamp(0, 255).to(torch.uint8)
        return frechet_distance(self.real_features, self.classifier.features_and_predictions(pixels)[0])

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
        kind = "matched" if conditional and self.class_matched else "random"
        floor, floor_range = self.floors[kind]
        report = EvalReport(
            samples=self._distances(features),
            floor=floor,
            num_samples=self.n,
            num_real=self.info.num_samples,
            split=self.config.split,
            classifier=self.classifier.describe(),
            classifier_accuracy=self.classifier.accuracy,
            class_names=self.info.classes if self.labeled else (),
            model=model,
            floor_splits=self.config.floor_splits,
            floor_fd_range=floor_range,
            floor_class_matched=kind == "matched",
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
