"""The pinned domain classifiers: shipped weights, checked by SHA-256, never retrained silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import gvae_bench.execution.classifier as classifier_module
from gvae_bench.execution.classifier import (PINNED_DIR, ClassifierConfig, DomainClassifier, file_sha256, load_pinned,
                                   pinned_manifest, retrain_pinned, train_classifier)
from gvae_bench.errors import UserError


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_the_pinned_classifier_is_shipped_and_matches_its_manifest(dataset):
    entry = pinned_manifest()[dataset]
    path = PINNED_DIR / entry["file"]
    assert file_sha256(path) == entry["sha256"]
    assert entry["record"]["test_accuracy"] > {"mnist": 0.98, "fashion_mnist": 0.88}[dataset]
    model, record = load_pinned(dataset)
    assert record["pinned"] is True and record["sha256"] == entry["sha256"]
    assert record["version"] == f"{dataset}-v{entry['version']}"
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_run_at_default_settings_loads_the_pinned_classifier_without_training(monkeypatch, data_root):
    def no_training(*args, **kwargs):
        raise AssertionError("the pinned classifier must not be retrained")

    monkeypatch.setattr(classifier_module, "_fit", no_training)
    _, record = train_classifier("mnist", data_root, ClassifierConfig())
    assert record["sha256"] == pinned_manifest()["mnist"]["sha256"]


def test_the_pinned_classifier_reads_real_digits(data_root):
    """The weights are the ones trained: most of the first 500 MNIST test digits read correctly."""
    from gvae_bench.registry import BENCHMARKS

    splits = BENCHMARKS.get("mnist")(data_root).load()
    model, record = load_pinned("mnist")
    with torch.no_grad():
        correct = (model(splits.test[:500]).argmax(1) == splits.test_labels[:500]).float().mean().item()
    assert correct > 0.97


def test_a_changed_weights_file_is_refused(tmp_path):
    folder = tmp_path / "pinned"
    shutil.copytree(PINNED_DIR, folder)
    entry = pinned_manifest(folder)["mnist"]
    path = folder / entry["file"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="SHA-256 .* not the pinned"):
        load_pinned("mnist", folder)
    path.unlink()
    with pytest.raises(UserError, match="missing"):
        load_pinned("mnist", folder)


def test_retraining_pins_a_new_version_beside_the_old(tmp_path, monkeypatch, data_root):
    folder = tmp_path / "pinned"
    shutil.copytree(PINNED_DIR, folder)
    before = pinned_manifest(folder)["mnist"]
    torch.manual_seed(0)
    fresh = DomainClassifier(16, 10, 1, 28)
    monkeypatch.setattr(classifier_module, "_fit", lambda *args, **kwargs: fresh)  # no 8 epochs in a test
    entry = retrain_pinned("mnist", data_root, folder)
    assert entry["version"] == before["version"] + 1
    assert (folder / before["file"]).is_file()  # the old version stays
    assert file_sha256(folder / entry["file"]) == entry["sha256"] != before["sha256"]
    manifest = json.loads((folder / "classifiers.json").read_text())
    assert manifest["mnist"]["file"] == entry["file"]
    model, record = load_pinned("mnist", folder)
    assert record["version"] == f"mnist-v{entry['version']}"
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)


def test_a_cached_classifier_names_the_sha256_of_its_weights(tmp_path, monkeypatch, data_root):
    monkeypatch.setenv("GVAE_BENCH_CACHE", str(tmp_path / "cache"))
    config = ClassifierConfig(epochs=1, train_limit=300, width=4)
    _, record = train_classifier("mnist", data_root, config)
    weights = Path(tmp_path / "cache" / "classifiers" / f"{record['key']}.safetensors")
    assert record["pinned"] is False and record["sha256"] == file_sha256(weights)
    assert record["version"] == f"cache:{record['key']}"
