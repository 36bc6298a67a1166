"""gantrain as a gandata source (``gan:RUN_DIR``) and ``--balance synthesize``.

The real data is a labeled npz of easy patterns (class k: a bright block in
the k-th region on dark noise, as in conftest.write_dataset), built into a
gandata dataset with the real pipeline; the generator is a conditional DCGAN
trained for a few CPU steps on it, so its samples are noise-like, which is
all the source and fill mechanics need. The classifier filter is tested with
a generator that is deliberately wrong for one class.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from gandata.config import (
    BalanceConfig,
    BuildConfig,
    CleanConfig,
    ImageConfig,
    SourceSpec,
)
from gandata.errors import ConfigError, SourceError
from gandata.pipeline import build
from gandata.records import Sample
from gandata.sources import SourceContext, open_source, scheme_of
from gandata.util.hashing import file_sha256
from gantrain.train import train

from .conftest import tiny_config, write_dataset

CLASSES = ("a", "b", "c")
REAL_COUNTS = {"a": 40, "b": 24, "c": 16}


def pattern_images(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """uint8 NHWC: dark noise with a bright block in the region of each label."""
    images = rng.integers(0, 60, size=(len(labels), size, size, 3), dtype=np.uint8)
    cell = size // 4
    for i, k in enumerate(labels):
        y0, x0 = cell * (int(k) % 3), cell * (int(k) // 3 + 1)
        images[i, y0 : y0 + 2 * cell, x0 : x0 + cell] = 230
    return images


@pytest.fixture(scope="module")
def real_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [REAL_COUNTS[c] for c in CLASSES])
    labels = labels[rng.permutation(len(labels))]
    path = tmp_path_factory.mktemp("npz") / "real.npz"
    np.savez(path, images=pattern_images(labels, rng), labels=labels, classes=np.array(CLASSES))
    return path


def _config(out: Path, uri: str, **kwargs) -> BuildConfig:
    values = dict(sources=(SourceSpec(uri),), output=str(out), image=ImageConfig(size_px=32), executor="serial",
                  clean=CleanConfig(enabled=False))
    values.update(kwargs)
    return BuildConfig(**values)


@pytest.fixture(scope="module")
def real_dataset(real_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "ds"
    build(_config(out, f"npz:{real_npz}"))
    return out


@pytest.fixture(scope="module")
def cond_run(real_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cond") / "run"
    torch.set_num_threads(1)
    # EMA: its BatchNorm statistics are re-estimated for its weights, so 4 steps give
    # varied samples (the raw G in eval mode still has the initial statistics and
    # draws near-constant grey images, which can repeat pixel for pixel).
    train(tiny_config(real_dataset, run, conditional=True, ema=True, steps=4))
    return run


def _synth_config(out: Path, npz: Path, run: Path, **balance) -> BuildConfig:
    values = dict(mode="synthesize", synth_from=str(run), max_synthetic_share=0.9)
    values.update(balance)
    return _config(out, f"npz:{npz}", balance=BalanceConfig(**values))


# --- the gan source ------------------------------------------------------------------------------


def test_gan_source_through_the_plugin_registry(cond_run: Path) -> None:
    assert scheme_of(f"gan:{cond_run}") == "gan"  # found through the entry point gantrain registers
    uri = f"gan:{cond_run}?counts=a:3,c:2&seed=5"
    source = open_source(SourceSpec(uri), SourceContext(size_px=32))
    assert source.class_names() == ["a", "c"]
    # The generator's own size, whatever the build's: gandata can default to it.
    from gantrain.source import open_gan

    bare = open_gan(uri, SourceSpec(uri), SourceContext(size_px=0))
    assert bare.image_size_px == 32 and bare.summary()["image_size_px"] == 32
    items = [x for p in source.partitions() for x in source.read(p)]
    assert all(isinstance(x, Sample) for x in items)
    assert Counter(x.label for x in items) == {"a": 3, "c": 2}
    sha = file_sha256(cond_run / "checkpoints" / "last.pt")
    assert sha in source.fingerprint()
    first = items[0]
    assert first.array.shape == (32, 32, 3) and first.array.dtype == np.uint8
    assert first.provenance["synthetic"] is True
    assert first.provenance["synth_checkpoint_sha256"] == sha
    assert first.provenance["synth_run"] == str(cond_run.resolve())
    # Deterministic, and the same in a worker's unpickled copy.
    again = pickle.loads(pickle.dumps(source))
    repeat = [x for p in again.partitions() for x in again.read(p)]
    assert [x.key for x in repeat] == [x.key for x in items]
    assert all(np.array_equal(x.array, y.array) for x, y in zip(items, repeat))
    # count= spreads over the classes; truncation and seed change the noise.
    even = open_source(SourceSpec(f"gan:{cond_run}?count=7&truncation=0.5&seed=6"), SourceContext(size_px=32))
    assert [n for p in even.partitions() for n in [p.items[0]] * (p.items[2] - p.items[1])].count("a") == 3
    assert even.fingerprint() != source.fingerprint()


@pytest.mark.parametrize("query, message", [
    ("?counts=a:2,zebra:1", r"'zebra' are not classes of this generator \(classes: a, b, c\)"),
    ("?count=3&counts=a:1", "not both"),
    ("?count=2&filter=2", r"filter=2 must be in \[0.0, 1.0\]"),
    ("?colour=red", "unknown option"),
    ("", "count=N"),
])
def test_gan_source_errors_name_the_option(cond_run: Path, query: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(SourceSpec(f"gan:{cond_run}{query}"), SourceContext(size_px=32))


def test_gan_build_records_provenance_in_worker_processes(cond_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "gan"
    build(_config(out, f"gan:{cond_run}?count=9", executor="process", workers=2))
    table = pq.read_table(out / "samples.parquet").to_pylist()
    assert len(table) == 9 and all(r["synthetic"] for r in table)
    assert {r["synth_checkpoint_sha256"] for r in table} == {file_sha256(cond_run / "checkpoints" / "last.pt")}
    assert all(isinstance(r["synth_seed"], int) for r in table)
    assert json.loads((out / "manifest.json").read_text())["class_counts"] == {"a": 3, "b": 3, "c": 3}


# --- --balance synthesize ------------------------------------------------------------------------


def test_synthesize_fills_classes_to_target_and_records_the_share(real_npz: Path, cond_run: Path, tmp_path: Path) -> None:
    from gandata.stats.audit import audit_dataset

    out = tmp_path / "filled"
    config = _synth_config(out, real_npz, cond_run, val_fraction=0.25)
    summary = build(config)
    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["synthetic"]
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    train_counts = Counter(r["class_name"] for r in rows if r["split"] == "train")
    real_train = {c: round(0.75 * n) for c, n in REAL_COUNTS.items()}
    assert record["real_counts"] == real_train
    assert record["targets"] == {c: real_train["a"] for c in CLASSES}
    assert dict(train_counts) == record["targets"]  # every class filled to the majority
    synthetic = Counter(r["class_name"] for r in rows if r["synthetic"])
    assert dict(synthetic) == {"b": real_train["a"] - real_train["b"], "c": real_train["a"] - real_train["c"]}
    assert record["counts"] == {"a": 0, **synthetic} and record["shortfall"] == {}
    assert record["shares"]["c"] == pytest.approx(synthetic["c"] / real_train["a"])
    assert record["checkpoint_sha256"] == file_sha256(cond_run / "checkpoints" / "last.pt")
    assert len(record["seeds"]) == 1 and all(r["synth_seed"] is not None for r in rows if r["synthetic"])
    assert not any(r["synthetic"] for r in rows if r["split"] == "val")  # validation stays real
    assert summary.synthetic == record
    audit = audit_dataset(out).to_json()
    assert audit["num_synthetic"] == sum(synthetic.values())
    assert audit["synthetic_share"]["a"] == 0.0
    assert audit["synthetic_share"]["c"] == pytest.approx(synthetic["c"] / (synthetic["c"] + REAL_COUNTS["c"]))
    assert build(config).up_to_date  # same config and checkpoint: nothing to do
    # An explicit target below the majority is honoured.
    out2 = tmp_path / "target"
    build(_synth_config(out2, real_npz, cond_run, sampling_strategy=30))
    counts = json.loads((out2 / "manifest.json").read_text())["class_counts"]
    assert counts == {"a": 40, "b": 30, "c": 30}


def test_synthesize_refuses_too_synthetic_classes_and_bad_runs(real_npz: Path, real_dataset: Path, cond_run: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(_config(out, f"npz:{real_npz}"))  # an existing dataset, which no failure may damage
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(ConfigError, match=r"--max-synthetic-share: class 'c' has 16 real training samples; "
                                          r"filling it to 40 would make 60% of it synthetic, above the limit of 50%"):
        build(replace(_synth_config(out, real_npz, cond_run, max_synthetic_share=0.5), overwrite=True))
    with pytest.raises(ConfigError, match="--synth-from: .*does not exist"):
        build(_synth_config(out, real_npz, tmp_path / "no-such-run"))
    plain = tmp_path / "plain"
    train(tiny_config(real_dataset, plain, steps=1))
    with pytest.raises(ConfigError, match="--synth-from: .*unconditional"):
        build(_synth_config(out, real_npz, plain))
    # As a plain source, an unconditional generator gives unlabeled samples.
    unlabeled = open_source(SourceSpec(f"gan:{plain}?count=3"), SourceContext(size_px=32))
    assert [x.label for p in unlabeled.partitions() for x in unlabeled.read(p)] == [None] * 3
    other = tmp_path / "other"
    train(tiny_config(write_dataset(tmp_path / "xyz", n=24, classes=("x", "y", "z")), other, conditional=True, steps=1))
    with pytest.raises(ConfigError, match=r"--synth-from: the generator in .* does not know class\(es\) 'b', 'c'"):
        build(replace(_synth_config(out, real_npz, other), overwrite=True))
    with pytest.raises(ConfigError, match="--synth-from: --balance synthesize needs"):
        BalanceConfig(mode="synthesize").validate()
    assert (out / "manifest.json").read_bytes() == before


# --- the classifier filter -----------------------------------------------------------------------


class WrongPatterns(nn.Module):
    """A 'generator' that draws real patterns of the class asked for, except
    that class 'c' gets class 'a''s pattern: deliberately wrong for one class.
    Each image's noise is seeded by its latent vector, so it is deterministic."""

    WRONG = {2: 0}

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = []
        for zi, yi in zip(z, y.tolist()):
            rng = np.random.default_rng(abs(int(zi[0].item() * 1e6)))
            pixels = pattern_images(np.array([self.WRONG.get(yi, yi)]), rng)[0]
            out.append(torch.from_numpy(pixels).permute(2, 0, 1).float() / 127.5 - 1.0)
        return torch.stack(out)


def test_classifier_filter_drops_the_class_the_generator_gets_wrong(
    real_npz: Path, real_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gantrain.sample
    from gantrain.config import ModelConfig
    from gantrain.data import manifest_sha256
    from gantrain.sample import LoadedGenerator

    run = tmp_path / "wrong-run"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "best.pt"
    checkpoint.write_bytes(b"stands for the weights of the wrong generator")
    config = ModelConfig(image_size=32, channels=3, num_classes=3, conditional=True, nz=8,
                         offset=(0.5,) * 3, scale=(0.5,) * 3, classes=CLASSES)
    wrong = LoadedGenerator(WrongPatterns(), config, 0, False, checkpoint,
                            {"path": str(real_dataset), "manifest_sha256": manifest_sha256(real_dataset)},
                            torch.device("cpu"))
    real_loader = gantrain.sample.load_generator
    # The loader is the one seam replaced: everything else (LoadedGenerator's
    # sampling, the classifier, the source, the pipeline) is the real code.
    monkeypatch.setattr(gantrain.sample, "load_generator",
                        lambda path, **kw: wrong if Path(path).resolve() in (run.resolve(), checkpoint.resolve())
                        else real_loader(path, **kw))
    out = tmp_path / "filtered"
    build(_synth_config(out, real_npz, run, synth_filter=0.9,
                        synth_options={"classifier_steps": "120", "classifier_width": "8", "cache_dir": str(tmp_path / "cache")}))
    record = json.loads((out / "manifest.json").read_text())["synthetic"]
    assert "accuracy 100.0%" in record["classifier"]
    assert record["requested"] == {"a": 0, "b": 16, "c": 24}
    assert record["counts"] == {"a": 0, "b": 16, "c": 0}   # b filled, every 'c' (drawn as 'a') refused
    assert record["rejected_off_class"]["b"] == 0
    assert record["shortfall"] == {"c": 24}
    assert record["rejected_off_class"]["c"] >= 24 and record["rounds"] >= 1
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    off = [r for r in rejected if r["reason"] == "off_class"]
    assert len(off) == sum(record["rejected_off_class"].values())
    assert all("generated as 'c' but classified as 'a'" in r["detail"] for r in off)
    rows = pq.read_table(out / "samples.parquet").to_pylist()
    assert Counter(r["class_name"] for r in rows if r["synthetic"]) == {"b": 16}
    assert all(r["synth_confidence"] >= 0.9 for r in rows if r["synthetic"])


def test_cli_build_synthesize_and_stats_report_the_synthetic_share(real_npz: Path, cond_run: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gandata.cli import main

    runner = CliRunner()
    out = tmp_path / "cli"
    common = ["build", f"npz:{real_npz}", "-o", str(out), "--size", "32", "--no-clean", "--executor", "serial",
              "--balance", "synthesize", "--synth-from", str(cond_run)]
    refused = runner.invoke(main, common)
    assert refused.exit_code == 2 and "--max-synthetic-share: class 'c'" in refused.output
    result = runner.invoke(main, common + ["--max-synthetic-share", "0.6", "--synth-option", "batch_size=8"])
    assert result.exit_code == 0, result.output
    assert "c: 16 real + 24 synthetic = 40 (target 40, 60% synthetic)" in result.output
    stats = runner.invoke(main, ["stats", str(out), "--floor", "0"])
    assert stats.exit_code == 0, stats.output
    assert "synthetic samples: 40 of 120" in stats.output
    assert "gan:" in runner.invoke(main, ["build", "--help"]).output  # the plugin's URI form is listed
    bad = runner.invoke(main, common[:-2] + ["--synth-from", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "--synth-from" in bad.output and "does not exist" in bad.output


def test_synthesize_build_to_an_object_store_is_up_to_date_when_rerun(real_npz: Path, cond_run: Path) -> None:
    """The one output check counts the fill generator in the fingerprint for
    object-store outputs too (they used to rebuild every time)."""
    import uuid

    url = f"memory://gandata-test-{uuid.uuid4().hex}/filled"
    config = _synth_config(Path("unused"), real_npz, cond_run)
    config = replace(config, output=url)
    first = build(config)
    assert not first.up_to_date and first.num_samples > 0
    again = build(config)
    assert again.up_to_date and again.num_samples == first.num_samples


def test_gan_build_without_size_uses_the_generators_size(cond_run: Path, tmp_path: Path) -> None:
    """A 32-px generator's samples are not silently resampled to the 64-px default."""
    from click.testing import CliRunner

    from gandata.cli import main as gandata_main

    out = tmp_path / "gan32"
    result = CliRunner().invoke(gandata_main, ["build", f"gan:{cond_run}?count=6", "-o", str(out), "--workers", "1",
                                               "--no-clean", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["image_shape"][1:] == [32, 32]


def test_gan_build_refuses_a_size_above_the_generators_without_upscale(cond_run: Path, tmp_path: Path) -> None:
    """Issue 17 item 13: an explicit --size that upscales a 32-px generator is
    refused in one line naming both sizes; upscale=1 resamples on purpose,
    and a smaller size is an ordinary downscale."""
    from click.testing import CliRunner

    from gandata.cli import main as gandata_main

    common = ["--workers", "1", "--no-clean", "-q"]
    refused = CliRunner().invoke(gandata_main, ["build", f"gan:{cond_run}?count=6", "-o", str(tmp_path / "up"), "--size", "64", *common])
    assert refused.exit_code == 2, refused.output
    assert "32-px" in refused.output and "64 px" in refused.output and "upscale=1" in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "up" / "manifest.json").exists()
    allowed = CliRunner().invoke(gandata_main, ["build", f"gan:{cond_run}?count=6&upscale=1", "-o", str(tmp_path / "up"), "--size", "64", *common])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads((tmp_path / "up" / "manifest.json").read_text())["image_shape"][1:] == [64, 64]
    down = CliRunner().invoke(gandata_main, ["build", f"gan:{cond_run}?count=6", "-o", str(tmp_path / "down"), "--size", "16", *common])
    assert down.exit_code == 0, down.output
