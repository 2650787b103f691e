"""The cifar10 benchmark on a tiny CIFAR-10 written here in torchvision's layout and the official
files' pickle form: the arrays read back exactly (and as torchvision's ``pickle.load`` reads them),
a file naming any other global refused without running it, broken files named, every model trained
with the smoke profile (colour samples, the classifier metrics on the ten classes), and the
offline error at the command line."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gvae_bench.benchmarks.cifar10 import CIFAR10, META_FILE, TEST_FILES, TRAIN_FILES, batch_arrays, read_batch_file
from gvae_bench.execution.checkpoints import UnsafeFileError
from gvae_bench.errors import DataMissingError
from tests.conftest import invoke_cli

MODELS = ["vae", "wgan_gp", "gvae", "vae_gan", "alpha_gan"]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_TRAIN_BATCH, N_TEST = 12, 20


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 strings (BINSTRING), as the official CIFAR-10 files hold them."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def _official_form(content: dict) -> bytes:
    """Protocol 2 with Python 2 strings and numpy 1's module name, like the files torchvision downloads."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(content)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n")


def _images(n: int, labels: list[int], rng: np.random.Generator) -> np.ndarray:
    """(n, 3072) uint8 rows: the label's colour channel bright (class k lights channel k mod 3), noise."""
    images = rng.integers(0, 60, (n, 3, 32, 32), dtype=np.uint8)
    for row, label in enumerate(labels):
        images[row, label % 3] += 180
    return images.reshape(n, 3072)


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(name, PER_TRAIN_BATCH) for name in TRAIN_FILES] + [(TEST_FILES[0], N_TEST)]:
        labels = [int(v) for v in rng.permutation(np.arange(n) % 10)]
        content = {b"batch_label": name.encode(), b"labels": labels, b"data": _images(n, labels, rng),
                   b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(_official_form(content))
    (folder / META_FILE).write_bytes(_official_form({b"label_names": [n.encode() for n in NAMES],
                                                     b"num_cases_per_batch": 10000, b"num_vis": 3072}))
    return root


def test_batches_read_back_exactly_and_as_torchvision_reads_them(cifar_root):
    path = cifar_root / "cifar-10-batches-py" / "data_batch_1"
    with open(path, "rb") as handle:
        plain = pickle.load(handle, encoding="latin1")  # torchvision's own reading (runs whatever the file says)
    ours = read_batch_file(path)
    assert sorted(ours) == sorted(plain) == ["batch_label", "data", "filenames", "labels"]
    assert np.array_equal(ours["data"], plain["data"]) and ours["labels"] == plain["labels"]
    images, labels = batch_arrays(path)
    row = plain["data"][3]  # channel c, row y, column x of an image is row[1024 c + 32 y + x]
    assert images.shape == (PER_TRAIN_BATCH, 3, 32, 32) and images[3, 2, 5, 7] == row[2 * 1024 + 5 * 32 + 7]
    assert images[3, 0, 31, 0] == row[31 * 32] and list(labels) == plain["labels"]


def test_splits_classes_and_scaling(cifar_root):
    bench = CIFAR10(cifar_root)
    splits = bench.load()
    assert bench.spec.shape == (3, 32, 32) and bench.classifier_dataset == "cifar10"
    assert splits.train.shape == (5 * PER_TRAIN_BATCH, 3, 32, 32) and splits.test.shape == (N_TEST, 3, 32, 32)
    first, _ = batch_arrays(cifar_root / "cifar-10-batches-py" / "data_batch_1")
    assert torch.equal(splits.train[:PER_TRAIN_BATCH], torch.from_numpy(first).float() / 127.5 - 1)
    assert splits.train.min() >= -1 and splits.train.max() <= 1 and splits.test_labels.max() <= 9
    assert splits.info["class_names"] == NAMES and splits.info["official_md5"] is False
    assert "test_batch" in splits.info["files_not_official"]


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_file_naming_any_other_global_is_refused_and_nothing_runs(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": _Runs(marker), "labels": [0]}, protocol=2))
    with pytest.raises(UnsafeFileError, match=r"data_batch_1 names (posix|os)\.system.*nothing in it was run"):
        read_batch_file(path)
    assert not marker.exists()


def test_truncated_and_malformed_files_are_named(tmp_path, cifar_root):
    good = (cifar_root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    truncated = tmp_path / "data_batch_2"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataMissingError, match="data_batch_2 is (truncated|not a complete pickle)"):
        read_batch_file(truncated)
    wrong = tmp_path / "data_batch_3"
    wrong.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=4))
    with pytest.raises(DataMissingError, match=r"data_batch_3: 'data' must be a uint8 array of shape \(n, 3072\)"):
        batch_arrays(wrong)
    labels = tmp_path / "test_batch"
    labels.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 12]}, protocol=4))
    with pytest.raises(DataMissingError, match="test_batch: 'labels' must hold one class index 0-9 per image"):
        batch_arrays(labels)


def test_every_model_trains_on_it_with_colour_samples_and_classifier_metrics(cifar_root, tmp_path):
    from gvae_bench.sweep import run_sweep

    summary = run_sweep(MODELS, "cifar10", profile="smoke", data_root=cifar_root, out=tmp_path / "out", device="cpu")
    assert summary.exit_status == 0 and len(summary.results) == len(MODELS)
    for result in summary.results:
        record = result.record
        assert record.status == "finished", (record.model, record.reason)
        assert record.config["network_family"] == "dcgan32" and record.data["class_names"] == NAMES
        for name in ("mmd", "ms_ssim", "kid", "precision", "recall", "density", "coverage"):
            assert record.metrics[name]["value"] is not None, (record.model, name, record.metrics[name])
        assert record.metrics["kid"]["details"]["feature_space"] == "cifar10 classifier penultimate layer"
        assert "128 features" in record.metrics["fid"]["na"]  # 20 test images: too few for a 128-d covariance
    run_dir = next((tmp_path / "out" / "runs" / "cifar10" / "wgan_gp").glob("*/seed0"))
    grid = np.asarray(Image.open(run_dir / "samples.png").convert("RGB")).astype(int)
    assert (grid[..., 0] != grid[..., 1]).mean() > 0.1  # colour samples, not grey
    classifier = json.loads(next(Path(os.environ["GVAE_BENCH_CACHE"], "classifiers").glob("cifar10-*.json")).read_text())
    assert classifier["channels"] == 3 and classifier["size"] == 32 and classifier["n_classes"] == 10


def test_missing_files_offline_are_one_line_naming_the_folder_and_files(tmp_path):
    result = invoke_cli("--models", "vae", "--dataset", "cifar10", "--profile", "smoke", "--data-root", str(tmp_path),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert str(tmp_path / "cifar-10-batches-py") in lines[0] and "GVAE_BENCH_OFFLINE" in lines[0]
    assert all(name in lines[0] for name in (*TRAIN_FILES, *TEST_FILES, META_FILE))
    assert "cifar-10-python.tar.gz" in lines[0]
