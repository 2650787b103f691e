"""The Vendi score (metrics/vendi.py) against Friedman and Dieng's closed cases and the vendi-score package."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gvae_bench.metrics.vendi import vendi_score


def test_identical_samples_score_one() -> None:
    row = torch.tensor([[0.3, -1.0, 2.0, 0.5]])
    assert vendi_score(row.repeat(9, 1)) == pytest.approx(1.0, abs=1e-12)
    scaled = row.repeat(5, 1) * torch.tensor([[1.0], [2.0], [0.1], [7.0], [3.0]])
    assert vendi_score(scaled) == pytest.approx(1.0, abs=1e-12)  # cosine: the length does not matter
    assert vendi_score(row) == pytest.approx(1.0)


@pytest.mark.parametrize("n", [1, 4, 10])
def test_orthogonal_samples_score_n(n: int) -> None:
    basis, _ = torch.linalg.qr(torch.randn(12, 12, generator=torch.Generator().manual_seed(n), dtype=torch.float64))
    rows = basis[:n] * torch.arange(1, n + 1, dtype=torch.float64)[:, None]  # orthogonal, of several lengths
    assert vendi_score(rows) == pytest.approx(n, rel=1e-10)


def test_k_separated_clusters_score_about_k() -> None:
    """k tight clusters around mutually orthogonal directions: k when equal in size (exactly, without noise),
    the exponential of the entropy of the cluster shares when not."""
    g = torch.Generator().manual_seed(0)
    axes = torch.eye(16, dtype=torch.float64)
    for k in (2, 5, 8):
        labels = torch.arange(k).repeat_interleave(40)
        assert vendi_score(axes[labels]) == pytest.approx(k, rel=1e-10)
        noisy = axes[labels] + 0.02 * torch.randn(len(labels), 16, generator=g, dtype=torch.float64)
        assert vendi_score(noisy) == pytest.approx(k, rel=0.05)
    shares = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    unequal = axes[torch.tensor([0] * 20 + [1] * 10 + [2] * 10)]
    assert vendi_score(unequal) == pytest.approx(math.exp(float(-(shares * shares.log()).sum())), rel=1e-10)


@pytest.mark.filterwarnings("ignore:Please import `csr_matrix`:DeprecationWarning")  # the package's own import
@pytest.mark.parametrize("n,d", [(80, 6), (7, 30), (50, 50)])
def test_matches_the_vendi_score_package(n: int, d: int) -> None:
    """The package's ``score_X`` (cosine kernel on row-normalised embeddings, eigenvalues of K / n by scipy), on
    both of our paths (n > d: the d x d dual; n <= d: K itself), with a row of zeros as the package treats it."""
    from vendi_score import vendi

    x = np.random.default_rng(n * d).normal(size=(n, d)) + 0.3
    assert vendi_score(torch.from_numpy(x)) == pytest.approx(vendi.score_X(x), rel=1e-9)
    x[0] = 0.0
    assert vendi_score(torch.from_numpy(x)) == pytest.approx(vendi.score_X(x), rel=1e-9)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="finite"):
        vendi_score(torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match="at least 1 sample"):
        vendi_score(torch.empty(0, 3))
    with pytest.raises(ValueError, match="leading sample dimension"):
        vendi_score(torch.tensor(1.0))


def test_registered_metric_a_collapsed_model_scores_one(data_root) -> None:
    """Through an EvalContext with MNIST classifier features: a model that always draws the same image scores 1;
    the reference is the score of as many real test images' features."""
    import gvae_bench.metrics  # noqa: F401
    from gvae_bench.benchmarks.torchvision_images import MNIST
    from gvae_bench.execution.classifier import ClassifierConfig, train_classifier
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.registry import METRICS

    benchmark = MNIST(data_root)
    full = benchmark.load()
    splits = DataSplits(train=full.train[:1000], test=full.test[:500])
    classifier, record = train_classifier("mnist", data_root,
                                          ClassifierConfig(epochs=1, width=8, train_limit=2000, batch_size=32))
    ctx = EvalContext(model=None, benchmark=benchmark, splits=splits, config=EvalConfig(n_samples=200), seed=0,
                      classifier=classifier, classifier_record=record)
    ctx._generated = full.train[:1].repeat(200, 1, 1, 1)
    result = METRICS.get("vendi")().compute(ctx)
    assert result.value == pytest.approx(1.0, abs=1e-9) and result.n_generated == 200 and result.n_real == 200
    assert result.reference == pytest.approx(vendi_score(ctx.features("real", 200)))
    assert result.reference > 1.5 and result.details["kernel"] == "cosine similarity, uncentred features"
