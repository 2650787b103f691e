"""The public functional layer (gvae_bench.functional): MMD^2 with the harness's bandwidth rule against a float64
brute force, FID against scipy's matrix square root, the sample-count rule of FID and FRD (issue 34 item 8), the
domain features against the evaluation context's, and ``import gvae_bench`` staying light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

import gvae_bench.functional as F
from tests.conftest import REPO


def _brute_mmd2(x: np.ndarray, y: np.ndarray, h: float) -> float:
    """MMD^2_u (Gretton et al. 2012, Lemma 6) by explicit loops over the kernel matrices, float64."""
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / h)

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2.0 * kxy.sum() / (m * n))


def test_mmd2_on_two_random_tensors_equals_a_float64_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    fake = torch.randn(60, 3, 4, 4, generator=g) * 1.3 + 0.2
    real = torch.randn(80, 3, 4, 4, generator=g)
    x, y = fake.flatten(1).double().numpy(), real.flatten(1).double().numpy()
    d2 = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    h = float(np.median(d2[np.triu_indices(len(y), 1)]))  # the rule on all 80 rows (fewer than its 1000)
    assert F.harness_bandwidth(real) == pytest.approx(h, rel=1e-12)
    assert F.mmd2(fake, real) == pytest.approx(_brute_mmd2(x, y, h), rel=1e-5, abs=1e-7)
    assert F.mmd2(fake.double(), real.double()) == pytest.approx(_brute_mmd2(x, y, h), rel=1e-12, abs=1e-14)
    assert F.mmd2(fake.double(), real.double(), bandwidth=2.5) == pytest.approx(_brute_mmd2(x, y, 2.5), rel=1e-12)


def test_the_bandwidth_rule_takes_1000_rows_drawn_with_seed_0() -> None:
    real = torch.randn(1500, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rows = real[torch.randperm(1500, generator=torch.Generator().manual_seed(0))[:1000]].numpy()
    d2 = ((rows[:, None, :] - rows[None, :, :]) ** 2).sum(-1)
    assert F.harness_bandwidth(real) == pytest.approx(float(np.median(d2[np.triu_indices(1000, 1)])), rel=1e-12)


def test_fid_equals_the_closed_form_with_scipys_matrix_square_root() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(300, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(400, 6, generator=g, dtype=torch.float64) + 0.5
    sa, sb = np.cov(a.numpy(), rowvar=False), np.cov(b.numpy(), rowvar=False)
    mean = ((a.mean(0) - b.mean(0)) ** 2).sum().item()
    expected = mean + np.trace(sa) + np.trace(sb) - 2.0 * np.trace(scipy.linalg.sqrtm(sa @ sb).real)
    assert F.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_fid_and_frd_are_reported_only_with_more_samples_than_feature_dimensions() -> None:
    assert F.too_few_for_covariance(129, 5000, 128) is None
    assert "got 128 and 5000 samples for 128 features" in F.too_few_for_covariance(128, 5000, 128)
    assert "FRD fits a 398-dimensional" in F.too_few_for_covariance(20, 20, 398, "FRD")


def test_the_registered_fid_is_na_below_the_feature_dimension() -> None:
    """MNIST-shaped images through an (untrained) domain classifier: 128 features from 100 samples is n/a, with
    the counts in the reason; 200 samples give a number."""
    from gvae_bench.execution.classifier import DomainClassifier
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext, NotApplicable
    from gvae_bench.metrics.fid import ClassifierFID
    from gvae_bench.profiles import EvalConfig

    torch.manual_seed(0)
    classifier = DomainClassifier(8).eval()
    images = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1

    def context(n: int) -> EvalContext:
        ctx = EvalContext(model=None, benchmark=None, splits=DataSplits(images[:200], images[200:]),
                          config=EvalConfig(n_samples=n), seed=0, classifier=classifier)
        ctx._generated = -images[:n]
        return ctx

    with pytest.raises(NotApplicable, match="got 100 and 100 samples for 128 features"):
        ClassifierFID().compute(context(100))
    ctx = context(200)
    ctx.benchmark = type("B", (), {"classifier_dataset": "mnist"})()
    assert ClassifierFID().compute(ctx).value > 0


def test_domain_features_read_as_the_evaluation_context_reads_them(monkeypatch) -> None:
    """Three-channel images through a one-channel classifier: per-channel groups concatenated, equal to
    ``EvalContext.features`` bit for bit; ``domain_features`` takes the classifier ``train_classifier`` gives."""
    import gvae_bench.execution.classifier as classifier_module
    from gvae_bench.execution.classifier import DomainClassifier
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.profiles import EvalConfig

    torch.manual_seed(0)
    classifier = DomainClassifier(8).eval()
    images = torch.rand(1100, 3, 28, 28, generator=torch.Generator().manual_seed(4)) * 2 - 1
    ctx = EvalContext(model=None, benchmark=None, splits=DataSplits(images, images), config=EvalConfig(n_samples=1100),
                      seed=0, classifier=classifier)
    expected = ctx.features("real", 1100)
    assert torch.equal(F.read_channel_groups(classifier, images), expected)
    monkeypatch.setattr(classifier_module, "train_classifier", lambda dataset, root, config=None: (classifier, {}))
    features = F.domain_features(images, "mnist")
    assert features.shape == (1100, 3 * 128) and torch.equal(features, expected)


def test_importing_gvae_bench_stays_light_and_score_is_exported() -> None:
    code = ("import sys, gvae_bench; assert 'torch' not in sys.modules, 'torch imported'; "
            "from gvae_bench import score; assert callable(score) and 'torch' in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
