"""Distances between two sets of feature vectors.

Pure functions on [N, D] float arrays; the feature extractor is chosen by the
caller (gantrain's offline classifier, or Inception when weights are given).

* Frechet distance (Heusel et al. 2017): distance between Gaussians fitted to
  the two sets. Biased upwards for small N, so compare figures computed with
  the same N (the evaluation prints a real-vs-real floor with the same N).
* KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
  kernel, averaged over random subsets; unbiased, so meaningful at small N.
* Precision / recall (Kynkaanniemi et al. 2019): the share of generated
  samples inside the real data's k-NN manifold, and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class SetDistances:
    """The distances between one set of samples and the reference set."""

    fd: float
    kid: float
    kid_std: float
    precision: float
    recall: float


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64.

    tr((S_a S_b)^(1/2)) is computed as the sum of square roots of the
    eigenvalues of S_a^(1/2) S_b S_a^(1/2), which is symmetric positive
    semi-definite: no complex matrix square root, no scipy.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(cov_a)
    sqrt_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = sqrt_a @ cov_b @ sqrt_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt)
    return max(fd, 0.0)


def kernel_inception_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Mean and standard deviation over subsets of the unbiased MMD^2 estimate
    with kernel k(x, y) = (x.y / d + 1)^3."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start : start + chunk], x)
        # k + 1: the nearest "neighbour" of a point is itself.
        radii.append(d.kthvalue(min(k + 1, len(x)), dim=1).values)
    return torch.cat(radii)


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 2048) -> float:
    inside = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start : start + chunk], centres)
        inside.append((d <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).float().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall with k-nearest-neighbour manifolds."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float32)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    precision = _coverage(f, r, _kth_neighbour_radii(r, k))
    recall = _coverage(r, f, _kth_neighbour_radii(f, k))
    return precision, recall


def set_distances(
    reference: np.ndarray, samples: np.ndarray, *, kid_subsets: int = 100, kid_subset_size: int = 1000,
    pr_k: int = 3, seed: int = 0,
) -> SetDistances:
    """All distances between ``samples`` and ``reference`` features."""
    kid, kid_std = kernel_inception_distance(reference, samples, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(reference, samples, pr_k)
    return SetDistances(frechet_distance(reference, samples), kid, kid_std, precision, recall)


def class_histogram(predictions: np.ndarray, num_classes: int) -> list[int]:
    """Counts of each predicted class."""
    return np.bincount(np.asarray(predictions, dtype=np.int64), minlength=num_classes)[:num_classes].tolist()
