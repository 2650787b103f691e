from __future__ import annotations

import math

import pytest
import torch

from gvae_bench.benchmarks.mixtures import Grid25, Ring8
from gvae_bench.benchmarks.torchvision_images import FashionMNIST, MNIST
from gvae_bench.errors import DataMissingError


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_torchvision_layout_reads_full_splits_in_minus_one_one(cls, data_root):
    splits = cls(data_root).load()
    assert splits.train.shape == (60000, 1, 28, 28) and splits.test.shape == (10000, 1, 28, 28)
    assert splits.train.dtype == torch.float32
    assert splits.train.min().item() == -1.0 and splits.train.max().item() == 1.0
    assert set(splits.test_labels.unique().tolist()) == set(range(10))


def test_missing_files_name_the_folder_and_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GVAE_BENCH_OFFLINE", "1")
    with pytest.raises(DataMissingError) as info:
        MNIST(tmp_path).load()
    message = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train-images-idx3-ubyte" in message


def test_train_limit_cuts_the_training_set(data_root):
    splits = MNIST(data_root, MNIST.Config(train_limit=100)).load()
    assert len(splits.train) == 100 and len(splits.train_labels) == 100 and len(splits.test) == 10000


def test_ring8_geometry_and_spread():
    bench = Ring8(".", Ring8.Config(n_train=40000, n_test=100))
    centres = bench.modes
    assert centres.shape == (8, 2)
    assert torch.allclose(centres.norm(dim=1), torch.ones(8))
    assert torch.allclose(centres[1], torch.tensor([math.cos(math.pi / 4), math.sin(math.pi / 4)]))
    splits = bench.load()
    offsets = splits.train - centres[splits.train_labels]
    assert abs(offsets.std().item() - 0.01) < 0.0005
    counts = torch.bincount(splits.train_labels, minlength=8).float()
    assert (counts / counts.sum() - 1 / 8).abs().max() < 0.01


def test_grid25_geometry_and_fixed_draw():
    bench = Grid25(".", Grid25.Config(n_train=20000, n_test=100))
    assert sorted(set(bench.modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    splits = bench.load()
    offsets = splits.train - bench.modes[splits.train_labels]
    assert abs(offsets.std().item() - 0.05) < 0.002
    again = Grid25(".", Grid25.Config(n_train=20000, n_test=100)).load()
    assert torch.equal(splits.train, again.train)  # the data seed, not the run seed, fixes the data


def test_stacked_mnist_channels_are_mnist_digits_and_labels_name_the_mode(data_root):
    from gvae_bench.benchmarks.stacked_mnist import StackedMNIST

    bench = StackedMNIST(data_root, StackedMNIST.Config(n_train=3000, n_test=500))
    splits = bench.load()
    assert splits.train.shape == (3000, 3, 28, 28) and splits.test.shape == (500, 3, 28, 28)
    mnist = MNIST(data_root).load()
    # every channel of a test image is one MNIST test digit, and the label spells the three digits
    image, mode = splits.test[0], int(splits.test_labels[0])
    for channel, digit in zip(image, (mode // 100, mode // 10 % 10, mode % 10)):
        matches = (mnist.test[:, 0] == channel).flatten(1).all(dim=1).nonzero().flatten()
        assert len(matches) >= 1 and digit in mnist.test_labels[matches].tolist()
    modes = torch.cat([splits.train_labels, splits.test_labels])
    assert modes.min() >= 0 and modes.max() <= 999 and len(modes.unique()) > 900  # ~all 1000 modes appear
