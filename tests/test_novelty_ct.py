"""The novelty metrics on CT (``metrics/_novelty.py``'s radiomic space, ``metrics/_radiomics.py``'s shared
features), on slices of the shared head CT, against cases whose answers are known:

* a "model" that returns training slices copies them: every generated image is 0 from its training row, so
  C_T is the Mann-Whitney Z of m zero distances against the n test distances (all ties at the bottom), far
  below 0, and authenticity is exactly 0;
* a "model" that returns one slice m times has Vendi score exactly 1 (Friedman and Dieng's closed case);
* without the frd extra the three read n/a with its install command; the real sets' features are extracted
  once and read back from the disk cache by the next evaluation, and a corrupt cache file is extracted again.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

from tests.test_copying import _RowsModel

NOVELTY = ("copying", "authenticity", "vendi")
M = 24  # generated images: above copying's 20 per cell, few enough for PyRadiomics' 0.2-0.7 s an image


class _OneSlice(_RowsModel):
    """Returns the first of its rows, ``n`` times."""

    def sample_in_batches(self, n: int) -> torch.Tensor:
        return self.rows[:1].repeat(n, 1, 1, 1)


@pytest.fixture(scope="module")
def ct_small():
    pytest.importorskip("frd_score", reason="the frd extra (pip install 'gvae-bench[frd]') computes the radiomics")
    from tests.conftest import _data_root
    from gvae_bench.benchmarks.ct import CTFolder
    from gvae_bench.contracts.benchmark import DataSplits

    root = _data_root() / "CT"
    if not any(root.glob("*.nii*")):
        pytest.skip(f"no CT volume under {root}; set GVAE_BENCH_DATA to a folder holding CT/*.nii.gz")
    benchmark = CTFolder(root)
    full = benchmark.load()
    return benchmark, DataSplits(train=full.train[:30], test=full.test[:20])


def _evaluate(model, ct_small, only=NOVELTY) -> dict:
    import gvae_bench.metrics  # noqa: F401  (registers the metrics)
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig

    benchmark, splits = ct_small
    return evaluate(model, benchmark, splits, EvalConfig(n_samples=5000, frd_samples=M), seed=0, only=set(only))


def test_training_slices_as_samples_copy_and_one_slice_has_vendi_one(ct_small) -> None:
    _, splits = ct_small
    copier = _evaluate(_RowsModel(splits.train), ct_small)
    for name in NOVELTY:
        entry = copier[name]
        assert entry["value"] is not None, entry.get("na")
        assert entry["n_generated"] == M  # on CT min(n_samples, frd_samples), the images frd reads
        assert entry["details"]["feature_space"].startswith("FRDv1 radiomic features")
        assert entry["details"]["n_train"] == 30 and entry["details"]["n_test"] == 10
        assert 0 < entry["details"]["radiomic_features"] <= 398  # those that vary across the training slices
    copying = copier["copying"]
    # all m generated distances are 0, below every test distance: U = 0, and with the m-way tie at 0 the
    # tie-corrected Z = -(m n / 2) / sqrt(m n / 12 * ((N + 1) - (m^3 - m) / (N (N - 1)))), N = m + n
    n, total = 10, M + 10
    expected = -(M * n / 2) / math.sqrt(M * n / 12 * ((total + 1) - (M ** 3 - M) / (total * (total - 1))))
    assert copying["value"] == pytest.approx(expected, rel=1e-9) and copying["value"] < -3
    assert copying["reference"] is None and "held-out rows is undefined" in copying["details"]["reference_na"]
    assert copier["authenticity"]["value"] == 0.0 and 0 < copier["authenticity"]["reference"] <= 1
    assert copier["vendi"]["value"] > 1.5  # distinct slices
    one = _evaluate(_OneSlice(splits.train), ct_small, only=("vendi",))
    assert one["vendi"]["value"] == pytest.approx(1.0, abs=1e-9)
    assert one["vendi"]["reference"] == pytest.approx(copier["vendi"]["reference"], rel=1e-12)  # same real rows


def test_without_the_extra_the_novelty_metrics_name_the_install_command(monkeypatch, ct_small) -> None:
    from gvae_bench.registry import METRICS
    import gvae_bench.metrics  # noqa: F401

    benchmark, splits = ct_small
    model = _RowsModel(splits.train)
    assert all(METRICS.get(name)().missing(model, benchmark) == [] for name in NOVELTY)
    assert not any(METRICS.get(name)().uses_classifier(benchmark) for name in NOVELTY)
    monkeypatch.setitem(sys.modules, "frd_score", None)  # import frd_score now raises ImportError
    monkeypatch.setitem(sys.modules, "frd_score.frd", None)
    results = _evaluate(model, ct_small)
    for name in NOVELTY:
        assert results[name]["value"] is None and "pip install 'gvae-bench[frd]'" in results[name]["na"]


def test_real_features_come_back_from_the_disk_cache_and_a_corrupt_file_is_made_again(ct_small, tmp_path,
                                                                                      monkeypatch) -> None:
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.metrics import _radiomics
    from gvae_bench.profiles import EvalConfig

    monkeypatch.setenv("GVAE_BENCH_CACHE", str(tmp_path / "cache"))
    benchmark, splits = ct_small
    small = type(splits)(train=splits.train[:4], test=splits.test[:4])
    calls = []
    extract = _radiomics.radiomic_features
    monkeypatch.setattr(_radiomics, "radiomic_features", lambda images, spacing: calls.append(len(images))
                        or extract(images, spacing))

    def features():
        ctx = EvalContext(model=_RowsModel(small.train), benchmark=benchmark, splits=small,
                          config=EvalConfig(n_samples=4, frd_samples=4), seed=0)
        return _radiomics.radiomic_set(ctx, "train", 4)

    first = features()
    [cache_file] = (tmp_path / "cache" / "radiomics").glob("*.pt")
    second = features()
    assert calls == [4] and torch.equal(first.values, second.values) and first.names == second.names
    cache_file.write_bytes(b"not a torch file")
    third = features()
    assert calls == [4, 4] and torch.equal(third.values, first.values)
