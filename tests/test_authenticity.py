"""Alaa et al.'s authenticity (metrics/authenticity.py) against hand-worked and brute-force answers."""

from __future__ import annotations

import pytest
import torch

from gvae_bench.metrics.authenticity import authentic, authenticity


def _brute(samples: torch.Tensor, train: torch.Tensor) -> float:
    """The definition, with full distance matrices and loops."""
    flags = []
    for x in samples.double():
        d = [float((x - t).norm()) for t in train.double()]
        i = min(range(len(d)), key=lambda j: (d[j], j))
        own = min(float((train[i].double() - t).norm()) for j, t in enumerate(train.double()) if j != i)
        flags.append(d[i] > own)
    return sum(flags) / len(flags)


def test_hand_worked_one_dimensional_case() -> None:
    # training points 0, 1, 3: their own nearest-neighbour distances are 1, 1 and 2
    train = torch.tensor([[0.0], [1.0], [3.0]])
    samples = torch.tensor([[0.4], [2.5], [3.1], [-2.0], [0.6], [5.5]])
    # 0.4 -> 0 at 0.4 <= 1; 2.5 -> 3 at 0.5 <= 2; 3.1 -> 3 at 0.1; -2 -> 0 at 2 > 1 (authentic); 0.6 -> 1 at 0.4;
    # 5.5 -> 3 at 2.5 > 2 (authentic)
    assert authenticity(samples, train) == pytest.approx(2 / 6)
    assert authentic(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 1.5])).tolist() == [False, True]  # strict >


def test_matches_the_definition_on_random_sets() -> None:
    g = torch.Generator().manual_seed(0)
    for d in (1, 3, 10):
        train, samples = torch.randn(60, d, generator=g), torch.randn(40, d, generator=g) * 1.2
        assert authenticity(samples, train) == pytest.approx(_brute(samples, train))


def test_copies_score_zero_even_of_duplicated_training_rows() -> None:
    g = torch.Generator().manual_seed(1)
    train = torch.randn(200, 5, generator=g)
    train[100:110] = train[:10]  # duplicates: their own nearest-neighbour distance is 0
    copies = train[torch.randint(0, 200, (300,), generator=g)]
    assert authenticity(copies, train) == 0.0
    assert authenticity(copies.reshape(300, 1, 5), train.reshape(200, 5, 1)) == 0.0  # rows are flattened


def test_fresh_draws_score_what_other_fresh_draws_score_and_far_ones_one() -> None:
    """The real reference's value is the answer for a model that samples the data distribution."""
    g = torch.Generator().manual_seed(2)
    train = torch.randn(2000, 4, generator=g)
    reference, fresh = authenticity(torch.randn(2000, 4, generator=g), train), authenticity(
        torch.randn(2000, 4, generator=g), train)
    assert 0.3 < reference < 0.9 and abs(fresh - reference) < 0.04
    assert authenticity(torch.randn(500, 4, generator=g) + 100.0, train) == 1.0


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least 2 in train"):
        authenticity(torch.randn(3, 2), torch.randn(1, 2))
    with pytest.raises(ValueError, match="same feature dimension"):
        authenticity(torch.randn(3, 2), torch.randn(5, 3))
    with pytest.raises(ValueError, match="finite"):
        authenticity(torch.tensor([[float("nan"), 0.0]]), torch.randn(5, 2))
    with pytest.raises(ValueError, match="one training-neighbour distance per sample"):
        authentic(torch.rand(3), torch.rand(2))


def test_registered_metric_reads_the_context_and_shares_the_neighbour_search(tmp_path) -> None:
    """Through an EvalContext on grid25's raw coordinates: a model returning training points scores 0, the
    reference is the held-out test rows' share computed by the pure function, and the searches are cached."""
    import gvae_bench.metrics  # noqa: F401
    from gvae_bench.benchmarks.mixtures import Grid25
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.metrics._novelty import NoveltySets
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.registry import METRICS

    benchmark = Grid25(tmp_path)
    full = benchmark.load()
    splits = DataSplits(train=full.train[:2000], test=full.test[:600])
    ctx = EvalContext(model=None, benchmark=benchmark, splits=splits, config=EvalConfig(n_samples=300), seed=0)
    ctx._generated = splits.train[torch.randperm(2000, generator=torch.Generator().manual_seed(3))[:300]]
    result = METRICS.get("authenticity")().compute(ctx)
    assert result.value == 0.0 and result.n_generated == 300 and result.n_real == 300
    assert result.reference == pytest.approx(authenticity(NoveltySets(ctx).rows("test"), splits.train))
    assert result.details["n_train"] == 2000 and result.details["feature_space"].startswith("raw coordinates")
    assert "novelty:nn:generated" in ctx._cache and "novelty:nn:test" in ctx._cache
