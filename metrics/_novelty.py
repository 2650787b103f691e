"""What the novelty metrics (``copying``, ``authenticity``, ``vendi``) share: their feature space,
their sample sets and the nearest-neighbour searches against the training set.

Feature space, one per benchmark and the same for every model on it:

- the benchmark's domain classifier's penultimate features (``EvalContext.features``) where it has a
  classifier;
- the raw coordinates of a points benchmark (``DataSpec.kind == "points"``, the 2-D mixtures), where
  Euclidean distance is the data's own geometry;
- on CT (a benchmark that converts to Hounsfield units and has no classifier): the FRDv1 radiomic
  features of each image in HU (Konz et al. 2024, arXiv:2412.01496; ``metrics/_radiomics.py``, the
  features ``frd`` reads, no pretrained network), each feature z-scored with the mean and population
  standard deviation of the training rows T, features constant in T (or not finite) left out, so that
  no feature's unit outweighs the others; raw voxels would give distances dominated by noise and
  intensity offsets. Images PyRadiomics cannot read, and rows not finite after the z-scoring, are left
  out of their set (counted in ``details``). Extraction costs 0.2-0.7 s an image, so on CT the
  generated set is min(``n_samples``, ``frd_samples``) samples, the ones ``frd`` reads;
- none otherwise (an image folder without class subfolders): the metrics are n/a there.

Sets, all as float64 rows of that space:

- ``train``: every row of the training split the model was trained on (after ``train_limit``), the
  set T a copying model reproduces; a subset would miss copies of the rows left out;
- ``test`` (P_n) and ``held_out``: the test split cut by a permutation seeded from the run's seed
  into P_n, min(``n_samples``, half the test split) rows, and the next min(``n_samples``, the rest)
  rows, fresh real data that stands in for a model's samples in the reference values;
- ``generated``: ``n_samples`` samples of the model (on CT min(``n_samples``, ``frd_samples``)).

Each set's nearest training row (distance and index) is searched once per evaluation and shared.
"""

from __future__ import annotations

from typing import Any

import torch

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import NEEDS_SAMPLES, EvalContext, Metric, NotApplicable
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.functional.nearest import nearest_neighbours
from gvae_bench.metrics._radiomics import extra_missing, radiomic_set

__all__ = ["NO_FEATURE_SPACE", "NoveltyMetric", "NoveltySets", "RADIOMIC_SPACE"]

NO_FEATURE_SPACE = ("a fixed feature space (a domain classifier's features, the coordinates of a points "
                    "benchmark, or a CT benchmark's radiomic features)")
POINTS_SPACE = "raw coordinates (points benchmark, Euclidean)"
RADIOMIC_SPACE = ("FRDv1 radiomic features (frd-score / PyRadiomics) of the images in HU, each z-scored with the "
                  "training rows' mean and population std, Euclidean")


def _points(benchmark: Benchmark) -> bool:
    return benchmark.classifier_dataset is None and benchmark.spec.kind == "points"


def _radiomic(benchmark: Benchmark) -> bool:
    return benchmark.classifier_dataset is None and benchmark.spec.kind != "points" and benchmark.can_convert_hu


class NoveltyMetric(Metric):
    """Base of the novelty metrics: a column of ``table_novelty``, with a real-data reference,
    applicable where there is a feature space (the classifier's, or a points benchmark's own)."""

    higher_is_better = True
    table = "table_novelty"
    needs = frozenset({NEEDS_SAMPLES})
    has_reference = True

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        lacking = super().missing(model, benchmark)
        if _radiomic(benchmark):
            if not lacking and (problem := extra_missing()) is not None:
                lacking.append(problem)
        elif benchmark.classifier_dataset is None and not _points(benchmark):
            lacking = sorted([*lacking, NO_FEATURE_SPACE])
        return lacking

    def uses_classifier(self, benchmark: Benchmark) -> bool:
        return benchmark.classifier_dataset is not None


class NoveltySets:
    """The sample sets of one evaluation in the novelty metrics' feature space (see the module
    docstring), each computed once per ``EvalContext`` and shared through its cache."""

    def __init__(self, ctx: EvalContext) -> None:
        self.ctx = ctx
        self.n = ctx.config.n_samples
        n_test = len(ctx.splits.test)
        if n_test < 2:
            raise ValueError(f"the novelty metrics need at least 2 test rows (P_n and held-out data); got {n_test}.")
        self.n_test = min(self.n, n_test // 2)
        self.n_held_out = min(self.n, n_test - self.n_test)
        self.radiomic = _radiomic(ctx.benchmark)
        self.n_generated = min(self.n, ctx.config.frd_samples) if self.radiomic else self.n

    def _space(self, which: str, n: int) -> torch.Tensor:
        ctx = self.ctx
        if ctx.benchmark.classifier_dataset is not None:
            return ctx.features(which, n).double()
        if self.radiomic:
            return self._radiomic_rows(which, n)
        return ctx.samples(which, n).flatten(1).double()

    def _standardisation(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The radiomic space's z-scoring from T: mean, population std and the features kept."""
        def fit() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            train = radiomic_set(self.ctx, "train", len(self.ctx.splits.train)).values.double()
            train = train[torch.isfinite(train).all(dim=1)] if train.numel() else train
            if len(train) < 2:
                raise NotApplicable(f"PyRadiomics gave finite features for {len(train)} training images (at least "
                                    "2 needed to z-score the radiomic space)")
            mean, std = train.mean(dim=0), train.std(dim=0, correction=0)
            keep = std > 0
            if not bool(keep.any()):
                raise NotApplicable("no radiomic feature varies across the training images")
            return mean, std, keep
        return self.ctx.cached("novelty:radiomic_standardisation", fit)

    def _radiomic_rows(self, which: str, n: int) -> torch.Tensor:
        features = radiomic_set(self.ctx, which, n)
        if len(features.values) == 0:
            raise NotApplicable(f"PyRadiomics read none of the {which} images: {'; '.join(features.failures[:3])}")
        mean, std, keep = self._standardisation()
        rows = ((features.values.double() - mean) / std)[:, keep]
        finite = torch.isfinite(rows).all(dim=1)
        left_out: dict[str, int] = self.ctx.cached("novelty:radiomic_left_out", dict)
        left_out[which] = features.failed + int((~finite).sum())
        return rows[finite]

    def train_rows(self) -> torch.Tensor:
        """T: every training row."""
        return self.ctx.cached("novelty:train", lambda: self._space("train", len(self.ctx.splits.train)))

    def _test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        def split() -> tuple[torch.Tensor, torch.Tensor]:
            rows = self._space("real", len(self.ctx.splits.test))
            order = torch.randperm(len(rows), generator=self.ctx.generator("novelty_test_split"))
            return rows[order[:self.n_test]], rows[order[self.n_test:self.n_test + self.n_held_out]]
        return self.ctx.cached("novelty:test_split", split)

    def test_rows(self) -> torch.Tensor:
        """P_n: the test rows every model is compared with."""
        return self._test_split()[0]

    def rows(self, which: str) -> torch.Tensor:
        """The rows of ``generated``, ``test`` (P_n) or ``held_out``."""
        if which == "generated":
            return self.ctx.cached("novelty:generated", lambda: self._space("generated", self.n_generated))
        if which == "test":
            return self._test_split()[0]
        if which == "held_out":
            return self._test_split()[1]
        raise ValueError(f"unknown novelty set {which!r}; one of generated, test, held_out")

    def to_train(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's distance to its nearest training row, and that row's index."""
        return self.ctx.cached(f"novelty:nn:{which}", lambda: nearest_neighbours(self.rows(which), self.train_rows()))

    def train_own_distance(self, indices: torch.Tensor) -> torch.Tensor:
        """For training rows ``indices``: the distance to their nearest other training row (each row
        searched once per evaluation)."""
        known: dict[int, float] = self.ctx.cached("novelty:train_own", dict)
        wanted = sorted({int(i) for i in indices.tolist()} - known.keys())
        if wanted:
            index = torch.tensor(wanted, dtype=torch.int64)
            train = self.train_rows()
            distances = nearest_neighbours(train[index], train, exclude=index)[0]
            known.update(zip(wanted, distances.tolist()))
        return torch.tensor([known[int(i)] for i in indices.tolist()], dtype=torch.float64)

    def details(self) -> dict[str, Any]:
        """The feature space and the sizes of T, P_n and the held-out rows."""
        if self.ctx.benchmark.classifier_dataset is not None:
            space = self.ctx.classifier_details
        elif self.radiomic:
            space = {"feature_space": RADIOMIC_SPACE, "radiomic_features": int(self._standardisation()[2].sum()),
                     "images_left_out": dict(self.ctx.cached("novelty:radiomic_left_out", dict))}
        else:
            space = {"feature_space": POINTS_SPACE}
        return {**space, "n_train": len(self.ctx.splits.train), "n_test": self.n_test, "n_held_out": self.n_held_out}

    def real_rows(self, n: int) -> torch.Tensor:
        """``n`` real test rows as ``EvalContext.real_test`` draws them (the seeded subset), in this space."""
        return self.ctx.cached(f"novelty:real:{n}", lambda: self._space("real", n))
