from __future__ import annotations

import json

import pytest

from metrics.classifier import ClassifierConfig, FEATURE_DIM, train_classifier


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
    from benchmarks.torchvision_images import MNIST

    images = MNIST(data_root).load().test[:5]
    assert again.features(images).shape == (5, FEATURE_DIM)
    assert (again(images).argmax(1) == model(images).argmax(1)).all()
    assert not str(tmp_path).startswith(str(data_root))  # the cache is never inside the data root


def test_bad_classifier_config_is_a_clear_error():
    from gvae_bench.errors import UserError

    with pytest.raises(UserError, match="epochs must be >= 1"):
        ClassifierConfig(epochs=0)
