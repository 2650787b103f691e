"""The registered ``copying`` metric: Meehan et al.'s data-copying statistic C_T (AISTATS 2020) in the benchmark's
feature space, a thin adapter over ``gvae_bench.functional.copying``."""

from __future__ import annotations

from gvae_bench.contracts.metric import EvalContext, MetricResult, NotApplicable
from gvae_bench.functional.copying import (KMEANS_ROWS, MIN_GENERATED_PER_CELL, CopyingResult, c_t_statistic,
                                           copying_statistic, fit_cells, mann_whitney_z)
from gvae_bench.functional.nearest import assign_cells
from gvae_bench.metrics._novelty import NoveltyMetric, NoveltySets
from gvae_bench.registry import METRICS

__all__ = ["CopyingResult", "DataCopying", "c_t_statistic", "copying_statistic", "fit_cells", "mann_whitney_z"]


@METRICS.register("copying")
class DataCopying(NoveltyMetric):
    """Data copying C_T (Meehan et al. 2020): about 0 like fresh data, << 0 copies the training set, >> 0 underfits.

    Feature space: the domain classifier's penultimate features, or a points benchmark's raw
    coordinates (``metrics/_novelty.py``). T: every row of the training split the model was trained
    on. P_n: n = min(``n_samples``, half the test split) test rows. Q_m: ``n_samples`` generated
    samples. Cells: k = min(50, max(1, n // 200)) (the authors used 50 cells for 10,000 test images;
    this keeps about 200 test samples per cell), k-means fitted to at most 10,000 rows of T, seed 0;
    cells with more than 20 generated samples enter C_T. ``reference``: C_T of the held-out test
    rows (min(``n_samples``, the rest of the test split), fresh real data) in the place of the
    generated samples, against the same P_n and T: about 0, with its spread at these counts.

    Not ranked (``ranked = False``): C_T near 0 (the reference row) is the sought value, far below
    0 copying, far above 0 samples farther from the training data than fresh data are
    (underfitting, which ``fid``, ``precision`` and ``mmd`` measure), so the leaderboard shows its
    mean and interval without bold or rank letters, and the comparisons say which row is higher.
    ``higher_is_better`` True is stored for the comparisons' sign only.
    """

    ranked = False

    def compute(self, ctx: EvalContext) -> MetricResult:
        sets = NoveltySets(ctx)
        test = sets.test_rows()
        k = min(50, max(1, len(test) // 200))
        centres = ctx.cached(f"copying:centres:{k}", lambda: fit_cells(sets.train_rows(), k, seed=0))

        def statistic(which: str) -> CopyingResult:
            rows, (distance, _) = sets.rows(which), sets.to_train(which)
            test_distance = sets.to_train("test")[0]
            return c_t_statistic(distance, assign_cells(rows, centres), test_distance,
                                 assign_cells(test, centres), k)

        try:
            model = statistic("generated")
        except ValueError as exc:  # too few samples for one cell above the threshold (a smoke-sized evaluation)
            raise NotApplicable(f"C_T is undefined at these sample counts: {exc}") from None
        try:
            reference, reference_na = statistic("held_out"), None
        except ValueError as exc:  # a test split too small for its held-out rows (the shared head CT's 20 slices)
            reference, reference_na = None, f"C_T of the held-out rows is undefined at these sample counts: {exc}"
        return MetricResult(model.c_t, n_generated=len(sets.rows("generated")), n_real=len(test),
                            reference=None if reference is None else reference.c_t,
                            details={**sets.details(), "cells": k, "kmeans_seed": 0,
                                     "kmeans_rows": min(KMEANS_ROWS, len(ctx.splits.train)),
                                     "min_generated_per_cell": MIN_GENERATED_PER_CELL,
                                     "cells_used": model.cells_used, "stouffer_z": model.stouffer_z,
                                     "generated_share_in_used_cells": model.generated_share_used,
                                     "min_cell_z": min(z for z in model.cell_z if z is not None),
                                     **({"reference_cells_used": reference.cells_used} if reference is not None
                                        else {"reference_na": reference_na}),
                                     "reference": "held-out real test rows (not P_n) in the place of the samples"})
