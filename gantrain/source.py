"""``gan:RUN_DIR``: samples of a trained gantrain generator, as a gandata source.

gantrain registers this factory under the entry-point group
``gandata.sources`` (see pyproject.toml), so gandata finds it without ever
importing gantrain: the dependency runs one way only.

Options (URI query, or the source's table in a build config)::

    count=N               N samples, split evenly over the classes (conditional
                          models; remainder to the first classes)
    classes=a,b           with count: only these classes
    counts=a:100,b:50     explicit samples per class (instead of count)
    truncation=T          redraw noise values with |z| > T (truncation trick)
    ema=1|0               the EMA generator (default: when the run has one) or the raw one
    checkpoint=best|last  which checkpoint (default best, falling back to last)
    seed=S                noise seed (default: the build's seed)
    filter=CONF           keep only samples the evaluation classifier assigns
                          to the class asked for with probability >= CONF
    classifier_steps=N    most training steps of that classifier (default 600, the
                          `gantrain eval` default, so its cached one is reused)
    classifier_width=W    its width (default 16, the `gantrain eval` one)
    cache_dir=DIR         classifier cache (default $GANTRAIN_CACHE or ~/.cache/gantrain)
    data=PATH             dataset the classifier is trained on (default: the run's)
    max_rounds=R          generation rounds per partition with the filter (default 5)
    batch_size=B          generator batch (default 256)
    upscale=1             allow a build size above the generator's own (resampled up)

Image size: samples come out at the generator's own size (``image_size_px``,
also in the manifest's source summary); a build that sets no --size uses it
rather than resample them. A --size above it is refused without ``upscale=1``:
upscaling adds no detail, it only makes the samples look like larger images
(a smaller --size is an ordinary downscale).

Determinism: a partition is a fixed range of one class's samples; its noise
seed derives from (seed, class id, start, round) only, so the output does not
depend on the number of workers. Every sample records ``synthetic = true``,
the run directory, the checkpoint's SHA-256 and its noise seed; its locator
adds the batch size and row, enough to regenerate it.

With ``filter``, each partition generates in rounds: the first asks for the
samples it needs, each next round for the remainder divided by the
acceptance rate measured so far (at least 1/8), for at most ``max_rounds``
rounds. Samples the classifier puts in another class, or below the
threshold, are ``off_class`` rejections. A class the generator cannot fill
in that budget yields fewer samples than asked; the build records the
shortfall (docs/BALANCE.md).
"""

from __future__ import annotations

import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from gandata.config import SourceSpec
from gandata.errors import SourceError
from gandata.records import Rejection, Sample
from gandata.sources.arrays import query_options
from gandata.sources.base import Partition, SourceContext
from gandata.util.hashing import file_sha256

__all__ = ["GanSource", "open_gan", "OPTIONS", "PARTITION_SIZE"]

OPTIONS = (
    "count", "classes", "counts", "truncation", "ema", "checkpoint", "seed", "filter", "classifier_steps",
    "classifier_width", "cache_dir", "data", "max_rounds", "batch_size", "upscale",
)
# Samples per partition: small enough to spread a fill over the workers,
# large enough that a worker loads its generator for real work.
PARTITION_SIZE = 256
DEFAULT_MAX_ROUNDS = 5
DEFAULT_CLASSIFIER_STEPS = 600  # ClassifierConfig's default, as `gantrain eval` and training use
# With the filter, a round asks for at most 1 / MIN_ACCEPTANCE times the
# samples still missing: a class that is (almost) never accepted costs a
# bounded amount of generation instead of an endless loop.
MIN_ACCEPTANCE = 0.125
# Bumped when what a given (checkpoint, options) produces changes.
SOURCE_VERSION = 1


def _derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers, with independent streams per tuple."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


# Per-process caches: a worker loads the generator and classifier once, not per partition.
_GENERATORS: dict[tuple[str, bool], Any] = {}
_CLASSIFIERS: dict[str, Any] = {}


@dataclass(frozen=True)
class GanSource:
    """Samples of one checkpoint of a gantrain run. Picklable: workers get
    paths and options and load the networks themselves, on the CPU."""

    uri: str
    run_dir: str
    checkpoint: str
    checkpoint_sha256: str
    ema: bool
    conditional: bool
    # (class name, count) in the generator's label order; (None, count) when unconditional.
    counts: tuple[tuple[str | None, int], ...]
    seed: int
    generator_classes: tuple[str, ...] = ()
    truncation: float | None = None
    filter: float | None = None
    classifier_path: str | None = None
    classifier_sha256: str | None = None
    classifier_summary: str | None = None
    classifier_classes: tuple[str, ...] = ()
    max_rounds: int = DEFAULT_MAX_ROUNDS
    batch_size: int = 256
    # The generator's own image size: the natural size of a build of this
    # source (anything else resamples every sample).
    image_size_px: int = 0

    # --- the Source protocol ------------------------------------------------------------------

    def partitions(self) -> list[Partition]:
        """Ranges of at most PARTITION_SIZE samples of one class each."""
        out: list[Partition] = []
        for name, n in self.counts:
            for start in range(0, n, PARTITION_SIZE):
                stop = min(n, start + PARTITION_SIZE)
                what = f"class {name!r}" if name is not None else "unconditional"
                out.append(Partition(index=len(out), items=(name, start, stop), description=f"gan {what} samples {start}..{stop - 1}",
                                     num_inputs=stop - start))
        return out

    def read(self, partition: Partition) -> Iterator[Sample | Rejection]:
        """Generate the samples of one partition (and, with the filter, the
        off-class rejections)."""
        name, start, stop = partition.items
        need = int(stop) - int(start)
        cid = self.generator_classes.index(name) if name is not None else -1
        g = self._generator()
        if self.filter is None:
            # SeedSequence takes non-negative entropy: an unconditional model uses stream 0.
            seed = _derive_seed(self.seed, max(cid, 0), start, 0)
            pixels, _ = g.generate_uint8(need, labels=cid if cid >= 0 else None, seed=seed,
                                         batch_size=self.batch_size, truncation=self.truncation)
            for j in range(need):
                yield self._sample(name, int(start) + j, pixels[j], seed, need, j, None)
            return
        yield from self._read_filtered(g, name, cid, int(start), need)

    def class_names(self) -> list[str] | None:
        """The classes generated, in the generator's label order."""
        if not self.conditional:
            return None
        return [name for name, _ in self.counts if name is not None]

    def fingerprint(self) -> str:
        """Changes with the checkpoint's bytes and every option that changes the samples."""
        counts = ",".join(f"{n}:{c}" for n, c in self.counts)
        return (
            f"gan/v{SOURCE_VERSION}|ckpt={self.checkpoint_sha256}|ema={int(self.ema)}|counts={counts}|seed={self.seed}"
            f"|truncation={self.truncation!r}|filter={self.filter!r}|classifier={self.classifier_sha256}"
            f"|rounds={self.max_rounds}|batch={self.batch_size}"
        )

    def license(self) -> str:
        """Synthetic samples inherit no licence the source could know."""
        return "unknown"

    def summary(self) -> dict[str, Any]:
        """What the manifest records about this generator."""
        return {
            "run": self.run_dir, "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
            "ema": self.ema, "seed": self.seed, "truncation": self.truncation, "filter": self.filter,
            "classifier": self.classifier_summary, "requested": {str(n): c for n, c in self.counts},
            "conditional": self.conditional, "classes": list(self.generator_classes),
            "image_size_px": self.image_size_px,
        }

    # --- internals ---------------------------------------------------------------------------

    def _generator(self) -> Any:
        key = (self.checkpoint, self.ema)
        g = _GENERATORS.get(key)
        if g is None:
            import torch

            from gantrain.errors import GantrainError
            from gantrain.sample import load_generator

            if multiprocessing.current_process().name != "MainProcess":
                # Workers run one per core already; intra-op threads would fight them.
                torch.set_num_threads(1)
            sha = file_sha256(self.checkpoint)
            if sha != self.checkpoint_sha256:
                raise SourceError(
                    f"source {self.uri}: the checkpoint {self.checkpoint} changed since the build started "
                    f"(sha256 {sha[:12]} != {self.checkpoint_sha256[:12]}); run the build again"
                )
            try:
                g = load_generator(self.checkpoint, ema=self.ema, device="cpu")
            except GantrainError as exc:
                raise SourceError(f"source {self.uri}: {exc}") from None
            _GENERATORS[key] = g
        return g

    def _classifier(self) -> Any:
        assert self.classifier_path is not None
        clf = _CLASSIFIERS.get(self.classifier_path)
        if clf is None:
            import torch

            from gantrain.classifier import load_classifier
            from gantrain.errors import GantrainError

            try:
                clf = load_classifier(Path(self.classifier_path), torch.device("cpu"))
            except GantrainError as exc:
                raise SourceError(f"source {self.uri}: {exc}") from None
            _CLASSIFIERS[self.classifier_path] = clf
        return clf

    def _read_filtered(self, g: Any, name: str | None, cid: int, start: int, need: int) -> Iterator[Sample | Rejection]:
        import torch

        clf = self._classifier()
        target = self.classifier_classes.index(name)  # checked in open_gan
        assert self.filter is not None
        accepted, acceptance = 0, 1.0
        for round_no in range(self.max_rounds):
            missing = need - accepted
            if missing <= 0:
                break
            n = math.ceil(missing / max(acceptance, MIN_ACCEPTANCE))
            seed = _derive_seed(self.seed, cid, start, round_no)
            pixels, _ = g.generate_uint8(n, labels=cid, seed=seed, batch_size=self.batch_size, truncation=self.truncation)
            probs = clf.probabilities(torch.from_numpy(pixels))
            predicted = probs.argmax(1)
            confidence = probs[:, target]
            ok = (predicted == target) & (confidence >= self.filter)
            acceptance = float(ok.mean()) if n else 0.0
            for j in range(n):
                if ok[j]:
                    if accepted < need:
                        yield self._sample(name, start + accepted, pixels[j], seed, n, j, float(confidence[j]))
                        accepted += 1
                    # Accepted samples beyond the need are simply not used.
                    continue
                key = f"gan/{name}/s{seed}/n{n}/r{j}"
                shown = self.classifier_classes[int(predicted[j])]
                yield Rejection(
                    key=key, locator=self._locator(name, seed, n, j), reason="off_class", source=self.uri,
                    detail=(f"{key}: generated as {name!r} but classified as {shown!r} "
                            f"(p({name})={confidence[j]:.3f}, filter {self.filter})"),
                    score=float(confidence[j]),
                )

    def _locator(self, name: str | None, seed: int, n: int, row: int) -> str:
        what = f"class={name}&" if name is not None else ""
        return f"gan:{self.run_dir}#{what}seed={seed}&n={n}&row={row}"

    def _sample(self, name: str | None, index: int, chw: np.ndarray, seed: int, n: int, row: int,
                confidence: float | None) -> Sample:
        hwc = np.ascontiguousarray(chw.transpose(1, 2, 0))
        if hwc.shape[2] == 1:
            hwc = hwc[:, :, 0]
        key = f"gan/{name if name is not None else 'all'}/s{self.seed}/{index:07d}"
        provenance: dict[str, Any] = {
            "origin": key, "synthetic": True, "synth_run": self.run_dir,
            "synth_checkpoint_sha256": self.checkpoint_sha256, "synth_seed": seed,
        }
        if confidence is not None:
            provenance["synth_confidence"] = round(confidence, 6)
        return Sample(key=key, locator=self._locator(name, seed, n, row), label=name, array=hwc, provenance=provenance)


# --- the factory ---------------------------------------------------------------------------------


def _fail(uri: str, message: str) -> SourceError:
    return SourceError(f"source {uri}: {message}")


def _int(uri: str, name: str, value: Any, lo: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _fail(uri, f"option {name}={value!r} is not an integer") from None
    if number < lo:
        raise _fail(uri, f"option {name}={number} must be at least {lo}")
    return number


def _float(uri: str, name: str, value: Any, lo: float, hi: float, lo_open: bool = True) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise _fail(uri, f"option {name}={value!r} is not a number") from None
    if not math.isfinite(number) or number > hi or number < lo or (lo_open and number == lo):
        raise _fail(uri, f"option {name}={value} must be in {'(' if lo_open else '['}{lo}, {hi}]")
    return number


def _bool(uri: str, name: str, value: Any) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _fail(uri, f"option {name}={value!r} must be 1 or 0")


def _requested_counts(uri: str, options: Mapping[str, str], classes: Sequence[str], conditional: bool) -> list[tuple[str | None, int]]:
    """(class, count) pairs in the generator's label order."""
    if "count" in options and "counts" in options:
        raise _fail(uri, "give count=N (with optional classes=a,b) or counts=a:N,b:M, not both")
    if not conditional:
        if "classes" in options or "counts" in options:
            raise _fail(uri, "the model is unconditional: it cannot be asked for classes (use count=N)")
        if "count" not in options:
            raise _fail(uri, "say how many samples: count=N")
        return [(None, _int(uri, "count", options["count"], 1))]
    wanted: dict[str, int] = {}
    if "counts" in options:
        for part in str(options["counts"]).split(","):
            if not part.strip():
                continue
            name, sep, value = part.strip().rpartition(":")
            if not sep or not name:
                raise _fail(uri, f"counts: {part!r} is not CLASS:COUNT")
            if name in wanted:
                raise _fail(uri, f"counts: class {name!r} is given twice")
            wanted[name] = _int(uri, f"counts {name}", value, 0)
    elif "count" in options:
        total = _int(uri, "count", options["count"], 1)
        names = [n.strip() for n in str(options.get("classes", ",".join(classes))).split(",") if n.strip()]
        if not names:
            raise _fail(uri, "classes: names no class")
        per, extra = divmod(total, len(names))
        wanted = {n: per + (1 if i < extra else 0) for i, n in enumerate(names)}
    else:
        raise _fail(uri, "say how many samples: count=N (optionally classes=a,b) or counts=a:N,b:M")
    unknown = [n for n in wanted if n not in classes]
    if unknown:
        raise _fail(uri, f"class(es) {', '.join(map(repr, unknown))} are not classes of this generator (classes: {', '.join(classes)})")
    return [(n, wanted[n]) for n in classes if wanted.get(n, 0) > 0]


def _prepare_classifier(uri: str, options: Mapping[str, str], g: Any, names: Sequence[str]) -> tuple[Any, str]:
    """The evaluation classifier of the run's dataset (trained and cached on
    first use, here in the parent so workers only load it), and its path."""
    import torch

    from gantrain.classifier import (
        ClassifierConfig,
        cache_path,
        default_cache_dir,
        load_or_train_classifier,
    )
    from gantrain.data import load_real_uint8, manifest_sha256
    from gantrain.errors import GantrainError
    from gantrain.evaluate import _val_split

    data = options.get("data") or g.dataset.get("path")
    if not data:
        raise _fail(uri, "filter: the checkpoint does not record its dataset; give data=PATH")
    steps = _int(uri, "classifier_steps", options.get("classifier_steps", DEFAULT_CLASSIFIER_STEPS), 1)
    width = _int(uri, "classifier_width", options.get("classifier_width", ClassifierConfig.width), 1)
    config = ClassifierConfig(steps=steps, width=width)
    cache_dir = options.get("cache_dir") or default_cache_dir()
    try:
        sha = manifest_sha256(data)
        recorded = g.dataset.get("manifest_sha256")
        if "data" not in options and recorded and sha != recorded:
            raise _fail(uri, f"filter: the dataset {data} changed since the run was trained on it (manifest sha256 "
                             f"{sha[:12]} != {recorded[:12]}); give data=PATH for the classifier's dataset")
        path = cache_path(cache_dir, sha, config)
        if not path.is_file():
            images, labels, info = load_real_uint8(data, "train", labelled_only=True)
            load_or_train_classifier(images, labels, info.classes, sha, config, torch.device("cpu"), cache_dir, _val_split(data))
        from gantrain.classifier import load_classifier

        clf = load_classifier(path, torch.device("cpu"))
    except GantrainError as exc:
        raise _fail(uri, f"filter: {exc}") from None
    if clf.task != "labels":
        raise _fail(uri, f"filter: the dataset {data} is unlabeled; the classifier cannot check classes")
    missing = [n for n in names if n not in clf.classes]
    if missing:
        raise _fail(uri, f"filter: the classifier of {data} does not know class(es) {', '.join(map(repr, missing))}")
    return clf, str(path)


def open_gan(uri: str, spec: SourceSpec, ctx: SourceContext) -> GanSource:
    """gan:RUN_DIR[?count=N&classes=a,b|counts=a:N,b:M&truncation=T&ema=1|0&seed=S&filter=CONF&upscale=1]: samples of a trained gantrain generator (needs PyTorch)"""
    from gantrain.errors import GantrainError

    try:
        from gantrain.sample import load_generator
    except ImportError as exc:  # gantrain installed, torch not
        raise _fail(uri, f"the gan: source needs PyTorch, which cannot be imported ({exc}); pip install torch==2.13.0 --extra-index-url "
                           "https://download.pytorch.org/whl/cpu (CPU build), or pip install torch (CUDA build)") from None

    rest = uri[len("gan:"):] if uri.startswith("gan:") else uri
    path, _, query = rest.partition("?")
    options = query_options(uri, query, spec, OPTIONS)
    if not path:
        raise _fail(uri, "no run directory given (gan:RUN_DIR)")
    run = Path(path).expanduser()
    if not run.exists():
        raise _fail(uri, f"run directory {path} does not exist")
    which = options.get("checkpoint", "best")
    if which not in ("best", "last"):
        raise _fail(uri, f"option checkpoint={which!r} must be best or last")
    ema = _bool(uri, "ema", options["ema"]) if "ema" in options else None
    try:
        g = load_generator(run, checkpoint=which, ema=ema, device="cpu")
    except GantrainError as exc:
        raise _fail(uri, str(exc)) from None
    upscale = _bool(uri, "upscale", options["upscale"]) if "upscale" in options else False
    # size_px 0: the build asks for the generator's size before choosing one.
    if ctx.size_px > g.config.image_size and not upscale:
        raise _fail(uri, f"the generator makes {g.config.image_size}-px images and the build asks for {ctx.size_px} px; "
                         f"upscaling adds no detail: build with --size {g.config.image_size} (or no --size), "
                         "or add upscale=1 to the source to resample anyway")
    counts = _requested_counts(uri, options, g.classes, g.conditional)
    truncation = _float(uri, "truncation", options["truncation"], 0.0, 1e6) if "truncation" in options else None
    threshold = _float(uri, "filter", options["filter"], 0.0, 1.0, lo_open=False) if "filter" in options else None
    if threshold is not None and not g.conditional:
        raise _fail(uri, "filter: the model is unconditional; there is no class to check samples against")
    seed = _int(uri, "seed", options.get("seed", ctx.seed), 0)
    classifier = None
    classifier_path = None
    if threshold is not None:
        classifier, classifier_path = _prepare_classifier(uri, options, g, [n for n, _ in counts if n is not None])
    return GanSource(
        uri=uri, run_dir=str(run.resolve()), checkpoint=str(Path(g.checkpoint).resolve()),
        checkpoint_sha256=file_sha256(g.checkpoint), ema=g.ema, conditional=g.conditional, counts=tuple(counts),
        seed=seed, generator_classes=tuple(g.classes), truncation=truncation, filter=threshold,
        classifier_path=classifier_path,
        classifier_sha256=file_sha256(classifier_path) if classifier_path else None,
        classifier_summary=classifier.describe() if classifier is not None else None,
        classifier_classes=tuple(classifier.classes) if classifier is not None else (),
        max_rounds=_int(uri, "max_rounds", options.get("max_rounds", DEFAULT_MAX_ROUNDS), 1),
        batch_size=_int(uri, "batch_size", options.get("batch_size", 256), 1),
        image_size_px=g.config.image_size,
    )


open_gan.help = (  # type: ignore[attr-defined]
    "gan:RUN_DIR[?count=N&classes=a,b|counts=a:N,b:M&truncation=T&ema=1|0&seed=S&filter=CONF]: samples of a "
    "trained gantrain generator, labelled with the class asked for and flagged synthetic (from gantrain)"
)
