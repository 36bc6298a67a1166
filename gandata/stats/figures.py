"""Balance figures of a list of class counts: imbalance ratio, entropy, exp(H), Gini,
the effective number of samples (Cui et al. 2019). Pure functions of counts.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from gandata.errors import ConfigError

DEFAULT_BETA = 0.999


DEFAULT_FLOOR = 1000


def imbalance_ratio(counts: Sequence[int]) -> float | None:
    """max/min class count; inf when a class is empty, None without classes."""
    if not counts:
        return None
    lo, hi = min(counts), max(counts)
    return math.inf if lo == 0 else hi / lo


def shannon_entropy(counts: Sequence[int]) -> float | None:
    """Shannon entropy (nats) of the class shares."""
    total = sum(counts)
    if not counts or total == 0:
        return None
    return -sum((c / total) * math.log(c / total) for c in counts if c > 0)


def normalized_entropy(counts: Sequence[int]) -> float | None:
    """Entropy over ln K: 1.0 for perfectly even classes (evenness)."""
    h = shannon_entropy(counts)
    if h is None:
        return None
    return 1.0 if len(counts) == 1 else h / math.log(len(counts))


def effective_classes(counts: Sequence[int]) -> float | None:
    """exp(H): how many equally large classes would have the same entropy."""
    h = shannon_entropy(counts)
    return None if h is None else math.exp(h)


def gini(counts: Sequence[int]) -> float | None:
    """Gini coefficient of the counts: 0 = even, towards 1 = one class holds all."""
    total = sum(counts)
    if not counts or total == 0:
        return None
    x = np.asarray(counts, dtype=np.float64)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) * total))


def effective_samples(count: int, beta: float = DEFAULT_BETA) -> float:
    """Cui et al. 2019: (1 - beta^n) / (1 - beta), the data a class really holds
    once overlap between samples is accounted for; n when beta is 0."""
    if not 0.0 <= beta < 1.0:
        raise ConfigError(f"--beta: {beta} must be in [0, 1)")
    if beta == 0.0:
        return float(min(count, 1))
    return (1.0 - beta**count) / (1.0 - beta)
