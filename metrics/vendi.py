"""The Vendi score (Friedman and Dieng 2023): the effective number of distinct samples, as a pure function.

Reference
---------
[Friedman2023] D. Friedman, A. B. Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
Transactions on Machine Learning Research, 2023. https://arxiv.org/abs/2210.02410
"""

from __future__ import annotations

import math

import torch

from gvae_bench.metrics._samples import as_rows

__all__ = ["vendi_score"]


def vendi_score(samples: torch.Tensor) -> float:
    """Vendi score of ``samples`` with the cosine-similarity kernel on their (uncentred) rows.

    Maths ([Friedman2023], Def. 3.1): for n samples and a positive semi-definite kernel k with k(x, x) = 1,
    K_ij = k(x_i, x_j) and lambda_1..lambda_n the eigenvalues of K / n (they sum to 1),

        VS = exp( - sum_i lambda_i log lambda_i )          (0 log 0 = 0)

    the exponential of the Shannon entropy of the eigenvalues. It is 1 when all samples are the same and n when
    they are mutually orthogonal (k = 0 between distinct samples); k groups of identical samples that are
    orthogonal to each other score k when the groups are equal in size.

    Kernel: cosine similarity, k(x, y) = x.y / (||x|| ||y||), on the rows as given (not centred), as the
    ``vendi-score`` package's ``score_X`` does for embeddings; a row of zeros is kept as zeros (similarity 0,
    also with itself), as that package's normalisation leaves it, so the eigenvalues then sum to the share of
    nonzero rows. Computation in float64: with X the row-normalised (n, d) matrix, the nonzero eigenvalues of
    K / n = X X^T / n are those of X^T X / n, so the smaller of the two matrices goes to ``torch.linalg.eigvalsh``
    (O(n d min(n, d)) time, O(min(n, d)^2) memory); eigenvalues below 0 (rounding) are clamped to 0.

    Args:
        samples: (n, ...) samples, flattened to (n, d) rows; n >= 1, finite.

    Returns:
        The Vendi score, in [1, n] when no row is zero, as a Python float.
    """
    x = as_rows(samples, "samples").to(torch.float64)
    if x.shape[0] < 1:
        raise ValueError(f"vendi_score needs at least 1 sample; got shape {tuple(samples.shape)}.")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples must contain only finite values (found NaN or inf).")
    n = x.shape[0]
    norms = x.norm(dim=1, keepdim=True)
    x = torch.where(norms > 0, x / norms.clamp_min(torch.finfo(torch.float64).tiny), torch.zeros_like(x))
    gram = (x @ x.T) if n <= x.shape[1] else (x.T @ x)
    eigenvalues = torch.linalg.eigvalsh(gram / n).clamp_min(0.0)
    positive = eigenvalues[eigenvalues > 0]
    entropy = float(-(positive * positive.log()).sum())
    return math.exp(entropy)


# --- registered wrapper -----------------------------------------------------------------------

from gvae_bench.registry import METRICS  # noqa: E402
from gvae_bench.contracts.benchmark import Benchmark  # noqa: E402
from gvae_bench.contracts.metric import EvalContext, MetricResult  # noqa: E402
from gvae_bench.contracts.model import GenerativeModel  # noqa: E402
from gvae_bench.metrics._novelty import NoveltyMetric, NoveltySets  # noqa: E402

#: why the points benchmarks get no Vendi score
LOW_RANK_POINTS = ("a feature space of more than 2 dimensions (the cosine kernel on 2-D points has rank <= 2, "
                   "so Vendi <= 2)")


@METRICS.register("vendi")
class Vendi(NoveltyMetric):
    """Vendi score (Friedman and Dieng 2023), cosine kernel on the benchmark's features: effective number of samples.

    ``n_samples`` generated samples against a ``reference`` of as many real test samples (the
    seeded subset the other feature metrics use), in the domain classifier's penultimate features
    (post-ReLU, so every similarity is >= 0), cosine similarity on the uncentred features. Higher is
    more diverse; a collapsed model falls towards 1. The score depends on n, so compare values at
    the same ``n_samples``. Not computed on the 2-D points benchmarks: the cosine kernel of 2-D
    coordinates has rank <= 2, so it could never exceed 2 there (their ``modes`` column counts modes).
    On CT: the cosine similarity of the z-scored radiomic features (``metrics/_novelty.py``; centred,
    so a similarity can be negative, and the kernel matrix is still positive semi-definite with a unit
    diagonal), min(``n_samples``, ``frd_samples``) generated images against the seeded subset of as
    many real test images (all of them when the test split is smaller: compare models at equal counts).
    """

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        lacking = super().missing(model, benchmark)
        if benchmark.classifier_dataset is None and benchmark.spec.kind == "points":
            lacking = sorted([*lacking, LOW_RANK_POINTS])
        return lacking

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        if ctx.benchmark.classifier_dataset is not None:
            fake, real = ctx.features("generated", n), ctx.features("real", n)
            space = {**ctx.classifier_details, "kernel": "cosine similarity, uncentred features"}
        else:  # CT's radiomic space (metrics/_novelty.py)
            sets = NoveltySets(ctx)
            fake, real = sets.rows("generated"), sets.real_rows(n)
            space = {**sets.details(), "kernel": "cosine similarity of the z-scored radiomic features"}
        zero_rows = int((fake.abs().sum(dim=1) == 0).sum())
        return MetricResult(vendi_score(fake), n_generated=len(fake), n_real=len(real), reference=vendi_score(real),
                            details={**space, "generated_zero_feature_rows": zero_rows,
                                     "reference": "real test samples in the place of the generated ones"})
