from __future__ import annotations

import math

import pytest
import torch

from benchmarks.mixtures import Grid25, Ring8
from benchmarks.torchvision_images import FashionMNIST, MNIST
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
