"""Meehan et al.'s C_T (metrics/copying.py), its k-means and nearest-neighbour helpers, and the three
novelty metrics end to end: a "model" that returns training images copies, fresh real images do not."""

from __future__ import annotations

import itertools
import math

import pytest
import scipy.stats
import torch

from gvae_bench.functional.nearest import assign_cells, kmeans, nearest_neighbours
from gvae_bench.metrics.copying import c_t_statistic, copying_statistic, mann_whitney_z


def _mixture(n: int, generator: torch.Generator, d: int = 8, k: int = 5) -> torch.Tensor:
    """n draws of an equal mixture of k unit Gaussians centred 6 apart on the first k axes."""
    centres = torch.eye(d)[:k] * 6.0
    return centres[torch.randint(0, k, (n,), generator=generator)] + torch.randn(n, d, generator=generator)


def _brute_z(a: list[float], b: list[float]) -> float:
    """Z_U from its definition: U counted over all pairs, the tie-corrected null variance."""
    u = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in itertools.product(a, b))
    m, n = len(a), len(b)
    values = a + b
    ties = [values.count(v) for v in set(values)]
    variance = m * n / 12 * ((m + n + 1) - sum(t ** 3 - t for t in ties) / ((m + n) * (m + n - 1)))
    return (u - m * n / 2) / math.sqrt(variance)


def test_z_score_matches_the_pair_count_and_scipys_normal_approximation() -> None:
    g = torch.Generator().manual_seed(1)
    for a, b in [(torch.rand(30, generator=g), torch.rand(45, generator=g)),
                 ((torch.rand(40, generator=g) * 5).round(), (torch.rand(25, generator=g) * 5).round())]:  # ties
        z = mann_whitney_z(a, b)
        assert z == pytest.approx(_brute_z(a.tolist(), b.tolist()), rel=1e-12)
        p = scipy.stats.mannwhitneyu(a.double().numpy(), b.double().numpy(), alternative="less", method="asymptotic",
                                     use_continuity=False).pvalue
        assert scipy.stats.norm.cdf(z) == pytest.approx(p, rel=1e-9)
    assert mann_whitney_z(torch.zeros(5), torch.ones(7)) < -2.5  # generated closer: negative
    assert mann_whitney_z(torch.ones(4), torch.ones(6)) == 0.0  # all tied


def test_c_t_is_the_test_share_weighted_mean_of_the_used_cells() -> None:
    g = torch.Generator().manual_seed(2)
    gen_d, test_d = torch.rand(100, generator=g), torch.rand(60, generator=g) + 0.2
    gen_c = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)  # cell 2 holds only 20 generated: left out
    test_c = torch.tensor([0] * 10 + [1] * 30 + [2] * 20)
    result = c_t_statistic(gen_d, gen_c, test_d, test_c, n_cells=4)  # cell 3 is empty
    z0 = _brute_z(gen_d[:50].tolist(), test_d[:10].tolist())
    z1 = _brute_z(gen_d[50:80].tolist(), test_d[10:40].tolist())
    w0, w1 = 10 / 60, 30 / 60
    assert result.c_t == pytest.approx((w0 * z0 + w1 * z1) / (w0 + w1), rel=1e-12)
    assert result.stouffer_z == pytest.approx((w0 * z0 + w1 * z1) / math.sqrt(w0 ** 2 + w1 ** 2), rel=1e-12)
    assert result.cells_used == 2 and result.cell_z[2] is None and result.cell_z[3] is None
    assert result.generated_share_used == pytest.approx(0.8)
    assert result.cell_weights == pytest.approx([w0, w1, 20 / 60, 0.0])


def test_copies_fresh_draws_and_far_samples() -> None:
    """Known answers: exact copies of training points give C_T far below 0, fresh draws from the data
    distribution about 0 (a weighted mean of about-N(0, 1) Z-scores), samples spread wider far above 0."""
    g = torch.Generator().manual_seed(3)
    train, test = _mixture(3000, g), _mixture(1000, g)
    copies = train[torch.randperm(3000, generator=g)[:1000]]
    assert copying_statistic(copies, test, train, cells=5).c_t < -10
    fresh = [copying_statistic(_mixture(1000, g), test, train, cells=5).c_t for _ in range(5)]
    assert max(abs(c) for c in fresh) < 3
    assert copying_statistic(_mixture(1000, g) * 1.5, test, train, cells=5).c_t > 10


def test_copies_of_part_of_the_training_set_show_in_their_cells() -> None:
    """A model that copies in one region and is fresh elsewhere: that region's cells are far below 0."""
    g = torch.Generator().manual_seed(4)
    train, test = _mixture(3000, g), _mixture(1000, g)
    fresh = _mixture(1000, g)
    centres = kmeans(train.double(), 5)
    copied_cell = int(assign_cells(train[:1].double(), centres))
    in_cell = assign_cells(train.double(), centres) == copied_cell
    fresh_cells = assign_cells(fresh.double(), centres)
    mixed = torch.cat([fresh[fresh_cells != copied_cell], train[in_cell][:200]])
    result = copying_statistic(mixed, test, train, cells=5)
    assert result.cell_z[copied_cell] < -8
    assert all(abs(z) < 4 for j, z in enumerate(result.cell_z) if j != copied_cell)


def test_nearest_neighbours_match_brute_force_with_and_without_self() -> None:
    g = torch.Generator().manual_seed(5)
    reference, queries = torch.randn(300, 4, generator=g, dtype=torch.float64), torch.randn(50, 4, generator=g,
                                                                                              dtype=torch.float64)
    full = torch.cdist(queries, reference)
    distance, index = nearest_neighbours(queries, reference)
    assert torch.equal(index, full.argmin(dim=1)) and torch.allclose(distance, full.min(dim=1).values)
    own = torch.arange(0, 300, 7)
    distance, index = nearest_neighbours(reference[own], reference, exclude=own)
    inner = torch.cdist(reference[own], reference)
    inner[torch.arange(len(own)), own] = math.inf
    assert torch.equal(index, inner.argmin(dim=1)) and torch.allclose(distance, inner.min(dim=1).values)
    assert nearest_neighbours(reference[:3], reference)[0].tolist() == [0.0, 0.0, 0.0]  # exact: a copy is 0 away


def test_near_ties_are_decided_by_exact_distances() -> None:
    """Rows 1e-7 apart at norm 1e3: the matrix-product form cannot order them (its rounding is about 1e-10 in
    squared distance, their squared distances differ by 1e-12); the exact distances can. Ties go to the first."""
    v = torch.full((1, 16), 250.0, dtype=torch.float64)
    e = torch.zeros(1, 16, dtype=torch.float64)
    e[0, 0] = 1e-6
    reference = torch.cat([v + 2 * e, v + e, v - 3 * e, v + e])
    distance, index = nearest_neighbours(v + 1.1 * e, reference)
    assert int(index) == 1 and float(distance) == pytest.approx(0.1e-6, rel=1e-6)
    distance, index = nearest_neighbours(reference[1:2], reference, exclude=torch.tensor([1]))
    assert int(index) == 3 and float(distance) == 0.0


def test_kmeans_recovers_separated_blobs_and_is_seeded() -> None:
    g = torch.Generator().manual_seed(6)
    blobs = torch.arange(4).repeat_interleave(50)
    x = (torch.eye(3) * 20)[torch.tensor([0, 1, 2, 0])][blobs] + torch.randn(200, 3, generator=g)
    x[150:] = -x[150:]  # the fourth blob on the negative first axis
    x = x.double()
    labels = assign_cells(x, kmeans(x, 4, seed=0))
    assert len(set(labels.tolist())) == 4
    assert all(len(set(labels[blobs == b].tolist())) == 1 for b in range(4))  # each blob one cell
    assert torch.equal(kmeans(x, 4, seed=0), kmeans(x, 4, seed=0))


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no cell holds more than 20 generated samples"):
        copying_statistic(torch.randn(10, 2), torch.randn(30, 2), torch.randn(40, 2), cells=2)
    with pytest.raises(ValueError, match="same feature dimension"):
        copying_statistic(torch.randn(30, 3), torch.randn(30, 2), torch.randn(40, 2), cells=2)
    with pytest.raises(ValueError, match="at least k = 5 rows"):
        kmeans(torch.randn(3, 2, dtype=torch.float64), 5)
    with pytest.raises(ValueError, match=r"cell indices in \[0, 2\)"):
        c_t_statistic(torch.rand(3), torch.tensor([0, 1, 2]), torch.rand(2), torch.tensor([0, 1]), n_cells=2)


# --- end to end: the registered metrics on MNIST features, a model that copies and one that does not


class _RowsModel:
    """A "model" whose samples are rows of a fixed tensor, drawn at random (with the torch seed)."""

    can_sample, can_encode, can_reconstruct, can_decode, can_encode_point = True, False, False, False, False

    def __init__(self, rows: torch.Tensor) -> None:
        self.rows = rows

    def eval(self) -> "_RowsModel":
        return self

    def sample_in_batches(self, n: int) -> torch.Tensor:
        return self.rows[torch.randint(len(self.rows), (n,))]


@pytest.fixture(scope="module")
def mnist_small(data_root):
    """MNIST cut small (2000 training images, the training set T; 1000 test images) and a tiny classifier."""
    from gvae_bench.benchmarks.torchvision_images import MNIST
    from gvae_bench.execution.classifier import ClassifierConfig
    from gvae_bench.contracts.benchmark import DataSplits

    benchmark = MNIST(data_root)
    full = benchmark.load()
    splits = DataSplits(train=full.train[:2000], test=full.test[:1000])
    unseen = full.train[2000:3000]  # real digits in neither T nor the test split: fresh draws
    return benchmark, splits, unseen, ClassifierConfig(epochs=1, width=8, train_limit=2000, batch_size=32)


def _evaluate(model, mnist_small, n: int = 400) -> dict:
    import gvae_bench.metrics  # noqa: F401  (registers the metrics)
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig

    benchmark, splits, _, classifier = mnist_small
    return evaluate(model, benchmark, splits, EvalConfig(n_samples=n), seed=0, classifier=classifier,
                    only={"copying", "authenticity", "vendi"})


def test_a_model_returning_training_images_copies_and_fresh_images_do_not(mnist_small, tmp_path):
    """Through the evaluation (which builds the classifier for these metrics alone) and the leaderboard:
    training images as samples give C_T far below 0 and authenticity 0; unseen real digits give C_T near 0
    and about the real reference's authenticity; both references are held-out real data."""
    _, splits, unseen, _ = mnist_small
    copier, fresh = _evaluate(_RowsModel(splits.train), mnist_small), _evaluate(_RowsModel(unseen), mnist_small)
    for results in (copier, fresh):
        assert results["copying"]["n_generated"] == 400 and results["copying"]["n_real"] == 400
        details = results["copying"]["details"]
        assert details["n_train"] == 2000 and details["n_test"] == 400 and details["n_held_out"] == 400
        assert details["cells"] == 2 and details["classifier_key"] is not None
        assert abs(results["copying"]["reference"]) < 3
        assert results["copying"]["table"] == "table_novelty" and results["copying"]["higher_is_better"] is True
    assert copier["copying"]["value"] < -10 and abs(fresh["copying"]["value"]) < 3
    assert copier["authenticity"]["value"] == 0.0
    reference = fresh["authenticity"]["reference"]
    assert 0.2 < reference < 0.9 and abs(fresh["authenticity"]["value"] - reference) < 0.1
    assert copier["authenticity"]["reference"] == reference  # the same P_n and T for every model of a seed
    assert 1 < copier["vendi"]["value"] and abs(copier["vendi"]["reference"] - fresh["vendi"]["reference"]) < 1e-9

    from gvae_bench.results.leaderboard import write_leaderboards
    from gvae_bench.execution.records import write_record

    for model, results in (("copier", copier), ("fresh", fresh)):
        write_record(tmp_path / "runs" / "mnist" / model / "x" / "seed0",
                     {"model": model, "benchmark": "mnist", "profile": "quick", "seed": 0, "status": "finished",
                      "config_hash": "abc", "git": {"commit": "0123456789abcdef", "dirty": False}, "metrics": results})
    write_leaderboards(tmp_path, "mnist")
    text = (tmp_path / "leaderboards" / "mnist" / "table_novelty.md").read_text()
    assert "Novelty and diversity" in text
    assert "| model | latent | profile | config | seeds | authenticity ↑ | copying (≈ target) | vendi ↑ |" in text
    row = next(line for line in text.splitlines() if line.startswith("| copier |"))
    cells = row.split(" | ")
    assert cells[5].startswith("**0 (n=1")
    assert cells[6].startswith(f"{copier['copying']['value']:.4g} (n=1")  # not ranked: never bold
    reference_row = next(line for line in text.splitlines() if line.startswith("| *real data (test set)* (reference)"))
    assert f"{fresh['copying']['reference']:.4g} (n=1" in reference_row


def test_ring8_uses_raw_coordinates(tmp_path):
    """On a points benchmark the space is the raw coordinates (no classifier is built); a model that
    returns its training points copies (CT's radiomic space: tests/test_novelty_ct.py)."""
    import gvae_bench.metrics  # noqa: F401
    from gvae_bench.benchmarks.mixtures import Ring8
    from gvae_bench.contracts.benchmark import DataSplits
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.registry import METRICS

    benchmark = Ring8(tmp_path)
    full = benchmark.load()
    splits = DataSplits(train=full.train[:3000], test=full.test[:1000])
    results = evaluate(_RowsModel(splits.train), benchmark, splits, EvalConfig(n_samples=500), seed=0,
                       only={"copying", "authenticity", "vendi"})
    assert results["copying"]["details"]["feature_space"].startswith("raw coordinates")
    assert results["copying"]["value"] < -10 and abs(results["copying"]["reference"]) < 3
    assert results["authenticity"]["value"] == 0.0
    assert results["vendi"]["value"] is None and "rank <= 2" in results["vendi"]["na"]
    for name in ("copying", "authenticity", "vendi"):
        assert not METRICS.get(name)().uses_classifier(benchmark)
