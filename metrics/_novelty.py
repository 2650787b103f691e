"""What the novelty metrics (``copying``, ``authenticity``, ``vendi``) share: their feature space,
their sample sets and the nearest-neighbour searches against the training set.

Feature space: the benchmark's domain classifier's penultimate features (``EvalContext.features``)
where it has a classifier; the raw coordinates of a points benchmark (``DataSpec.kind ==
"points"``, the 2-D mixtures), where Euclidean distance is the data's own geometry; none otherwise
(CT: no trained feature space, and raw voxels give distances dominated by noise and intensity
offsets): the metrics are n/a there.

Sets, all as float64 rows of that space:

- ``train``: every row of the training split the model was trained on (after ``train_limit``), the
  set T a copying model reproduces; a subset would miss copies of the rows left out;
- ``test`` (P_n) and ``held_out``: the test split cut by a permutation seeded from the run's seed
  into P_n, min(``n_samples``, half the test split) rows, and the next min(``n_samples``, the rest)
  rows, fresh real data that stands in for a model's samples in the reference values;
- ``generated``: ``n_samples`` samples of the model.

Each set's nearest training row (distance and index) is searched once per evaluation and shared.
"""

from __future__ import annotations

from typing import Any

import torch

from gvae_bench.contracts.benchmark import Benchmark
from gvae_bench.contracts.metric import NEEDS_SAMPLES, EvalContext, Metric
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.metrics._nearest import nearest_neighbours

__all__ = ["NO_FEATURE_SPACE", "NoveltyMetric", "NoveltySets"]

NO_FEATURE_SPACE = ("a fixed feature space (a domain classifier's features, or the coordinates of a points "
                    "benchmark)")
POINTS_SPACE = "raw coordinates (points benchmark, Euclidean)"


def _points(benchmark: Benchmark) -> bool:
    return benchmark.classifier_dataset is None and benchmark.spec.kind == "points"


class NoveltyMetric(Metric):
    """Base of the novelty metrics: a column of ``table_novelty``, with a real-data reference,
    applicable where there is a feature space (the classifier's, or a points benchmark's own)."""

    higher_is_better = True
    table = "table_novelty"
    needs = frozenset({NEEDS_SAMPLES})
    has_reference = True

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        lacking = super().missing(model, benchmark)
        if benchmark.classifier_dataset is None and not _points(benchmark):
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

    def _space(self, which: str, n: int) -> torch.Tensor:
        ctx = self.ctx
        if ctx.benchmark.classifier_dataset is not None:
            return ctx.features(which, n).double()
        sets = {"generated": ctx.generated, "real": ctx.real_test, "train": ctx.real_train}
        return sets[which](n).flatten(1).double()

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
            return self.ctx.cached("novelty:generated", lambda: self._space("generated", self.n))
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
        space = self.ctx.classifier_details if self.ctx.benchmark.classifier_dataset is not None \
            else {"feature_space": POINTS_SPACE}
        return {**space, "n_train": len(self.ctx.splits.train), "n_test": self.n_test, "n_held_out": self.n_held_out}
