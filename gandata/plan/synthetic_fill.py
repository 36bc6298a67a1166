"""Synthetic fill (``--balance synthesize``): what to ask a generator for.

The pipeline (gandata/pipeline.py) plans the real data first; the functions
here turn that plan into the fill: per-class targets in imbalanced-learn's
oversampling vocabulary (``--sampling-strategy``), the deficits, the refusal
to make a class more synthetic than ``--max-synthetic-share``, the ``gan:``
URI of each generation round and the manifest's ``synthetic`` record.

gandata never imports gantrain: the generator is reached through the source
registry (``gan:`` is a plugin gantrain registers), like any source.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import quote, urlencode

import numpy as np

from gandata.config import BalanceConfig
from gandata.errors import ConfigError
from gandata.plan.balance import resolve_targets

# Generation rounds at most: a round asks for what cleaning (duplicates,
# blank images) and the filter left missing after the previous ones.
MAX_ROUNDS = 3
# Stream tag mixed into the build seed for the generator's seeds.
_SYNTH_STREAM = 0x5157


def round_seed(build_seed: int, round_no: int) -> int:
    """The generator seed of a fill round, derived from the build seed."""
    return int(np.random.SeedSequence([build_seed, _SYNTH_STREAM, round_no]).generate_state(1)[0] & 0x7FFFFFFF)


def gan_uri(bc: BalanceConfig, counts: Mapping[str, int] | None = None, seed: int = 0) -> str:
    """The ``gan:`` URI of one round: ``counts`` samples per class (None: a
    one-sample probe used to check the run and fingerprint it)."""
    params: dict[str, str] = dict(bc.synth_options)
    if counts is None:
        params["count"] = "1"
    else:
        params["counts"] = ",".join(f"{name}:{n}" for name, n in counts.items() if n > 0)
    params["seed"] = str(seed)
    if bc.synth_filter is not None:
        params["filter"] = repr(bc.synth_filter)
    if bc.synth_truncation is not None:
        params["truncation"] = repr(bc.synth_truncation)
    # Class names may hold '&' or '='; ':' and ',' stay readable.
    return f"gan:{bc.synth_from}?" + urlencode(params, safe=":,", quote_via=quote)


@dataclass
class FillPlan:
    """Targets and deficits of the training split, per class."""

    real: dict[str, int]
    targets: dict[str, int]
    deficits: dict[str, int]


def plan_fill(labels: np.ndarray, splits: np.ndarray, classes: Sequence[str], bc: BalanceConfig,
              generator_classes: Sequence[str]) -> FillPlan:
    """Targets from the training split's counts; raises ConfigError when a
    class would be more synthetic than allowed, or the generator does not
    know a class that needs samples."""
    train = labels[splits == "train"]
    real = {name: int((train == i).sum()) for i, name in enumerate(classes)}
    targets = resolve_targets(real, "oversample", bc.sampling_strategy)
    deficits = {name: max(0, targets[name] - real[name]) for name in classes}
    unknown = [name for name, d in deficits.items() if d > 0 and name not in generator_classes]
    if unknown:
        raise ConfigError(
            f"--synth-from: the generator in {bc.synth_from} does not know class(es) {', '.join(map(repr, unknown))} "
            f"that need samples (its classes: {', '.join(generator_classes)}); train it on this dataset's classes, "
            "or leave those classes out with --sampling-strategy"
        )
    for name, d in deficits.items():
        share = d / targets[name] if targets[name] else 0.0
        if d and share > bc.max_synthetic_share + 1e-12:
            raise ConfigError(
                f"--max-synthetic-share: class {name!r} has {real[name]} real training samples; filling it to "
                f"{targets[name]} would make {share:.0%} of it synthetic, above the limit of "
                f"{bc.max_synthetic_share:.0%}. Raise the limit (--max-synthetic-share {min(1.0, round(share + 0.005, 2))}) "
                "if that is what you want, or lower the target (--sampling-strategy)"
            )
    return FillPlan(real=real, targets=targets, deficits=deficits)


def synthetic_counts(labels: np.ndarray, splits: np.ndarray, synthetic: np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """Synthetic samples per class in the training split of a plan."""
    mask = synthetic & (splits == "train")
    return {name: int(((labels == i) & mask).sum()) for i, name in enumerate(classes)}


@dataclass
class FillRecord:
    """What the fill did, for the manifest's ``synthetic`` key."""

    fill: FillPlan
    generator: dict[str, Any]
    max_share: float
    seeds: list[int] = field(default_factory=list)
    generated: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)

    def shortfall(self) -> dict[str, int]:
        """Samples each class still misses after the last round."""
        return {name: self.fill.deficits[name] - self.counts.get(name, 0) for name in self.fill.deficits
                if self.fill.deficits[name] > self.counts.get(name, 0)}

    def to_json(self) -> dict[str, Any]:
        shares = {
            name: (self.counts.get(name, 0) / (self.fill.real[name] + self.counts.get(name, 0)))
            if self.fill.real[name] + self.counts.get(name, 0) else 0.0
            for name in self.fill.real
        }
        generator = {k: v for k, v in self.generator.items() if k not in ("seed", "requested", "classes", "conditional")}
        return {
            **generator,
            "seeds": self.seeds,
            "rounds": len(self.seeds),
            "max_share": self.max_share,
            "real_counts": self.fill.real,
            "targets": self.fill.targets,
            "requested": self.fill.deficits,
            "counts": {name: self.counts.get(name, 0) for name in self.fill.real},
            "shares": shares,
            "accepted": dict(sorted(self.generated.items())),
            "rejected_off_class": dict(sorted(self.rejected.items())),
            "shortfall": self.shortfall(),
        }
