from __future__ import annotations

import json

import pytest

from gvae_bench.execution.classifier import ClassifierConfig, FEATURE_DIM, train_classifier


def test_classifier_learns_is_cached_with_its_record(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("GVAE_BENCH_CACHE", str(tmp_path))
    config = ClassifierConfig(epochs=1, width=8, train_limit=3000, batch_size=32)
    model, record = train_classifier("mnist", data_root, config)
    assert record["test_accuracy"] > 0.85  # 3000 images, one epoch; the pinned ones are in gvae_bench/pinned/
    assert record["n_test"] == 10000 and record["config"]["train_limit"] == 3000
    files = sorted(p.name for p in (tmp_path / "classifiers").iterdir())
    assert files == [f"{record['key']}.json", f"{record['key']}.safetensors"]  # weights without pickle
    assert json.loads((tmp_path / "classifiers" / files[0]).read_text())["test_accuracy"] == record["test_accuracy"]
    again, cached = train_classifier("mnist", data_root, config)  # from the cache, not retrained
    assert cached == record
    from gvae_bench.benchmarks.torchvision_images import MNIST

    images = MNIST(data_root).load().test[:5]
    assert again.features(images).shape == (5, FEATURE_DIM)
    assert (again(images).argmax(1) == model(images).argmax(1)).all()
    assert not str(tmp_path).startswith(str(data_root))  # the cache is never inside the data root


def test_bad_classifier_config_is_a_clear_error():
    from gvae_bench.errors import UserError

    with pytest.raises(UserError, match="epochs must be >= 1"):
        ClassifierConfig(epochs=0)


def test_feature_metrics_score_the_training_data_as_their_reference(data_root):
    """Known answers: a "model" whose samples are the very training images the reference draws gets
    exactly the reference value on every feature-space metric; the reference itself (real training
    against real test images) scores as real data should; negated images score far worse."""
    import gvae_bench.metrics  # noqa: F401  (registers the metrics)
    from gvae_bench.benchmarks.torchvision_images import MNIST
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.registry import METRICS
    from gvae_bench.contracts.metric import EvalContext

    benchmark = MNIST(data_root)
    splits = benchmark.load()
    names = ("fid", "kid", "precision", "recall", "density", "coverage")
    classifier, record = train_classifier("mnist", data_root,
                                          ClassifierConfig(epochs=1, width=8, train_limit=3000, batch_size=32))

    def scores(fake_from_train):
        ctx = EvalContext(model=None, benchmark=benchmark, splits=splits, config=EvalConfig(n_samples=400), seed=0,
                          classifier=classifier, classifier_record=record)
        ctx._generated = fake_from_train(ctx.real_train(400))  # what the "model" samples
        return {name: METRICS.get(name)().compute(ctx) for name in names}

    copy, negated = scores(lambda train: train), scores(lambda train: -train)
    for name in names:
        assert copy[name].value == copy[name].reference == negated[name].reference, name
        assert copy[name].details["reference"] == "real train vs real test"
    reference = {name: copy[name].reference for name in names}
    assert min(reference[name] for name in ("precision", "recall", "density", "coverage")) > 0.7
    assert abs(reference["kid"]) < 0.01 * negated["kid"].value  # unbiased: about 0
    assert reference["fid"] < 0.1 * negated["fid"].value
    for name in ("precision", "recall", "density", "coverage"):
        assert negated[name].value < 0.5 * reference[name], name


def test_the_classifier_takes_each_image_size_and_keeps_mnists_weight_layout():
    """28 px grey keeps the layout of the classifiers cached before other sizes existed (their
    weights still load); 32, 64 and 128 px colour images reach the same 8x8 maps and features."""
    import torch

    from gvae_bench.execution.classifier import DomainClassifier

    keys = list(DomainClassifier(8).state_dict())
    assert keys == [f"trunk.{i}.{p}" for i in (0, 2, 5, 7, 12) for p in ("weight", "bias")] + ["head.1.weight", "head.1.bias"]
    for size in (32, 64, 128):
        model = DomainClassifier(8, n_classes=4, channels=3, size=size)
        assert model.trunk[-2].in_features == 2 * 8 * 8 * 8  # 2w channels of 8x8
        images = torch.zeros(2, 3, size, size)
        assert model.features(images).shape == (2, FEATURE_DIM) and model(images).shape == (2, 4)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        DomainClassifier(8, channels=2)


def test_features_read_as_many_channels_at_a_time_as_the_classifier_takes():
    """Stacked MNIST's 1-channel classifier reads each of three channels (3 x 128 features); a
    colour classifier reads the three together (128)."""
    import torch

    from gvae_bench.execution.classifier import DomainClassifier
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.profiles import EvalConfig

    images = torch.rand(6, 3, 28, 28) * 2 - 1
    for channels, width in ((1, 3 * FEATURE_DIM), (3, FEATURE_DIM)):
        classifier = DomainClassifier(8, channels=channels).eval()
        ctx = EvalContext(model=None, benchmark=None, splits=DataSplits(images, images), config=EvalConfig(n_samples=6),
                          seed=0, classifier=classifier)
        features = ctx.features("real", 6)
        assert features.shape == (6, width)
        if channels == 1:
            with torch.no_grad():
                assert torch.allclose(features[:, FEATURE_DIM:2 * FEATURE_DIM], classifier.features(images[:, 1:2]))
