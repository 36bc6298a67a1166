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


def test_the_floor_is_the_mean_over_several_real_splits(tiny_dataset, tmp_path):
    """One real-vs-real split's Frechet distance is noisy (0.05-0.19 over 20
    splits of synth:shapes): the floor is the mean of floor_splits of them,
    the first being R1 against R2, and the report says so."""
    from gantrain.metrics import frechet_distance

    one = Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=1), torch.device("cpu"))
    several = Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=6), torch.device("cpu"))
    own = frechet_distance(one.real_features, one.classifier.features_and_predictions(one._other_images)[0])
    assert one.floor.fd == pytest.approx(own)
    low, high = several.floor_fd_range
    assert low <= own <= high and low < high
    assert low <= several.floor.fd <= high
    # KID, precision and recall of the floor stay those of R1 against R2.
    assert (several.floor.kid, several.floor.precision) == (one.floor.kid, one.floor.precision)
    report = several.evaluate(lambda n, labels: torch.zeros(n, *one.real_images.shape[1:], dtype=torch.uint8), conditional=False)
    assert report.fd_ratio == pytest.approx(report.samples.fd / several.floor.fd)
    assert "mean of 6 splits" in "\n".join(report.lines())
    with pytest.raises(EvalError, match="floor_splits"):
        Evaluator(tiny_dataset, _eval_config(tmp_path, floor_splits=0), torch.device("cpu"))
