from __future__ import annotations

import json

import pytest

from gvae_bench.classifier import ClassifierConfig, FEATURE_DIM, train_classifier


def test_classifier_learns_is_cached_with_its_record(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("GVAE_BENCH_CACHE", str(tmp_path))
    config = ClassifierConfig(epochs=1, width=8, train_limit=3000, batch_size=32)
    model, record = train_classifier("mnist", data_root, config)
    assert record["test_accuracy"] > 0.85  # 3000 images, one epoch; the real one is in results/
    assert record["n_test"] == 10000 and record["config"]["train_limit"] == 3000
    files = sorted(p.name for p in (tmp_path / "classifiers").iterdir())
    assert files == [f"{record['key']}.json", f"{record['key']}.pt"]
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
