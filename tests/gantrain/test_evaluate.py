from __future__ import annotations

import pytest
import torch

from gantrain.classifier import ClassifierConfig, cache_path
from gantrain.errors import EvalError
from gantrain.evaluate import EvalConfig, Evaluator, evaluate_run
from gantrain.train import train

from .conftest import tiny_config, write_dataset


def _eval_config(tmp_path, **kw) -> EvalConfig:
    values = dict(num_samples=24, kid_subsets=5, classifier=ClassifierConfig(steps=3, batch_size=32, width=4), cache_dir=str(tmp_path / "cache"))
    values.update(kw)
    return EvalConfig(**values)


def test_evaluate_a_conditional_run(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(tiny_dataset, run, conditional=True, steps=2))
    report = evaluate_run(run, config=_eval_config(tmp_path))
    assert report.num_samples == 24
    assert report.samples.fd >= 0 and report.floor.fd >= 0
    assert 0 <= report.class_accuracy <= 1
    assert sum(report.class_histogram) == 24 and len(report.class_histogram) == 3
    assert 0 <= report.class_entropy <= 1
    text = "\n".join(report.lines())
    for needle in ("protocol: 24 generated vs 24 real", "real-vs-real floor", "KID", "precision", "recall",
                   "classified as asked", "class histogram", "accuracy"):
        assert needle in text
    data = report.to_json()
    assert data["fd_ratio"] == report.fd_ratio
    # The classifier is cached per dataset and config.
    manifest_sha = report.classifier  # described, not the hash; check the file instead
    assert any((tmp_path / "cache" / "classifiers").iterdir()), manifest_sha
    again = evaluate_run(run, config=_eval_config(tmp_path))
    assert again.samples.fd == report.samples.fd  # seeded: same figures twice


def test_unlabeled_data_uses_a_rotation_classifier(tmp_path):
    data = write_dataset(tmp_path / "u", n=64, classes=())
    run = tmp_path / "run"
    train(tiny_config(data, run, steps=1))
    report = evaluate_run(run, config=_eval_config(tmp_path))
    assert "rotation" in report.classifier
    assert report.class_histogram is None and report.class_accuracy is None
    assert "class histogram" not in "\n".join(report.lines())


def test_val_split_measures_classifier_accuracy(tmp_path):
    data = write_dataset(tmp_path / "v", n=48, val=12)
    evaluator = Evaluator(data, _eval_config(tmp_path, num_samples=10), torch.device("cpu"))
    assert "val split (12 images)" in evaluator.classifier.describe()
    assert evaluator.n == 10
    path = cache_path(tmp_path / "cache", evaluator.info.manifest_sha256, ClassifierConfig(steps=3, batch_size=32, width=4))
    assert path.is_file()


def test_inception_needs_the_extra(tiny_dataset, tmp_path):
    pytest.importorskip("torch", reason="torch is needed")
    try:
        import torch_fidelity  # noqa: F401
        pytest.skip("torch-fidelity is installed")
    except ImportError:
        pass
    run = tmp_path / "run"
    train(tiny_config(tiny_dataset, run, steps=1))
    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"")
    with pytest.raises(EvalError, match="torch-fidelity"):
        evaluate_run(run, config=_eval_config(tmp_path, inception_weights=str(weights)))


def test_floors_compare_real_sets_like_the_model_would_be_compared(tiny_dataset, tmp_path):
    """A conditional model is asked for R1's labels, so its floor compares
    real sets with R1's class counts; an unconditional model's compares
    random real sets. Each floor is the mean of floor_splits pairs (one
    pair's value is noisy), R1/R2 the first, and the report says which."""
    import numpy as np

    from gantrain.metrics import frechet_distance

    one = Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=1), torch.device("cpu"))
    other_labels = one.classifier.features_and_predictions(one._other_images)[1]
    assert one.class_matched
    own = frechet_distance(one.real_features, one.classifier.features_and_predictions(one._other_images)[0])
    matched, (low, high) = one.floors["matched"]
    assert matched.fd == pytest.approx(own) and low == high
    assert len(other_labels) == len(one.real_labels)
    several = Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=6), torch.device("cpu"))
    assert np.array_equal(several.real_labels, one.real_labels)  # the same R1 whatever the number of pairs
    for kind in ("matched", "random"):
        floor, (low, high) = several.floors[kind]
        assert low < high and low <= floor.fd <= high
    blank = lambda n, labels: torch.zeros(n, *one.real_images.shape[1:], dtype=torch.uint8)  # noqa: E731
    conditional = several.evaluate(blank, conditional=True)
    unconditional = several.evaluate(blank, conditional=False)
    assert conditional.floor.fd == several.floors["matched"][0].fd
    assert unconditional.floor.fd == several.floors["random"][0].fd
    assert conditional.fd_ratio == pytest.approx(conditional.samples.fd / conditional.floor.fd)
    assert "mean of 6 pairs of real sets with R1's class counts" in "\n".join(conditional.lines())
    assert "mean of 6 pairs of real sets drawn at random" in "\n".join(unconditional.lines())
    with pytest.raises(EvalError, match="floor_splits"):
        Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=0), torch.device("cpu"))


def test_perturbed_real_fd_measures_r2_after_the_perturbation(tiny_dataset, tmp_path):
    """The yardstick compares R1 with R2 perturbed: unperturbed it is R1/R2's
    own distance (the first matched pair), and blanking R2 moves it away."""
    evaluator = Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=1), torch.device("cpu"))
    pair = evaluator.floors["matched"][0].fd
    assert evaluator.perturbed_real_fd(lambda x: x) == pytest.approx(pair)
    assert evaluator.perturbed_real_fd(lambda x: x + 0.3) == pytest.approx(pair)  # rounded back to the same pixels
    assert evaluator.perturbed_real_fd(lambda x: torch.zeros_like(x)) > pair


def test_r1_and_r2_hold_the_same_number_of_images_of_each_class() -> None:
    import numpy as np

    from gantrain.evaluate import _class_counts, _matched_pair

    labels = np.random.default_rng(0).choice(4, size=400, p=[0.55, 0.25, 0.15, 0.05])
    counts = _class_counts(labels, 150)
    for rng in (None, np.random.default_rng(1)):
        a, b = _matched_pair(labels, counts, rng)
        assert not set(a) & set(b)
        assert np.array_equal(np.bincount(labels[a], minlength=4), np.bincount(labels[b], minlength=4))
        assert sum(counts.values()) == len(a) == 150
