"""k-NN precision / recall and density / coverage of generated samples, as pure tensor functions.

References
----------
[Kynkaanniemi2019] T. Kynkaanniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, "Improved Precision and Recall Metric
for Assessing Generative Models", NeurIPS 2019. https://arxiv.org/abs/1904.06991
[Naeem2020] M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo, "Reliable Fidelity and Diversity Metrics for Generative
Models", ICML 2020. https://arxiv.org/abs/2002.09797

Conventions used throughout this module
---------------------------------------
* Distances are Euclidean, computed in float64 by ``torch.cdist`` with
  ``compute_mode="donot_use_mm_for_euclid_dist"`` (sqrt of the summed squared differences, not the
  ``||a||^2 + ||b||^2 - 2 a.b`` expansion): identical points are exactly 0 apart and d(a, b) == d(b, a) bitwise, so
  duplicates and points exactly on a ball's boundary are decided consistently. This costs more time than the
  matrix-product form (roughly 5-10x on CPU for d in the hundreds) but no more memory.
* Distances are formed in row blocks of ``block_size`` query rows against all rows of the other set, so the extra
  memory is O(block_size * n).
* NND_k(x_i) is the distance from x_i to its k-th nearest neighbour in its own set, excluding x_i itself (by index:
  an exact duplicate of x_i elsewhere in the set counts as a neighbour at distance 0, and ties count with
  multiplicity).
* A sample y lies in the ball B(x_i, NND_k(x_i)) when ||y - x_i|| <= NND_k(x_i) (closed ball).
"""

from __future__ import annotations

import torch

from gvae_bench.functional._rows import as_rows, paired_rows

__all__ = ["PRECISION_RECALL_K", "DENSITY_COVERAGE_K", "precision_recall", "density_coverage"]

#: the neighbour rank of the registered precision and recall (Kynkaanniemi et al. 2019 use k = 3)
PRECISION_RECALL_K = 3
#: the neighbour rank of the registered density and coverage (Naeem et al. 2020 use k = 5)
DENSITY_COVERAGE_K = 5

_CDIST_MODE = "donot_use_mm_for_euclid_dist"


def _validated_pair(
    real: torch.Tensor, fake: torch.Tensor, k: int, block_size: int, k_below_fake: bool, caller: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten, check and cast (real, fake) to float64; ``k_below_fake`` also requires k < number of fake rows."""
    r, f = as_rows(real, "real"), as_rows(fake, "fake")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    n, m = r.shape[0], f.shape[0]
    if k >= n:
        raise ValueError(
            f"{caller}: k must be smaller than the number of real samples (each needs k neighbours besides itself); "
            f"got k={k} with {n} real sample(s). Use k <= {n - 1} or pass more real samples."
        )
    if m < 1:
        raise ValueError(f"{caller}: fake must hold at least 1 sample, got shape {tuple(fake.shape)}.")
    if k_below_fake and k >= m:
        raise ValueError(
            f"{caller}: k must be smaller than the number of fake samples (recall uses k-NN balls around fake "
            f"samples); got k={k} with {m} fake sample(s). Use k <= {m - 1} or pass more fake samples."
        )
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}.")
    return paired_rows(real, fake, ("real", "fake"), (1, 1), caller)


def _knn_radii(x: torch.Tensor, k: int, block_size: int) -> torch.Tensor:
    """NND_k(x_i) for every row of x: distance to the k-th nearest other row (self excluded by index)."""
    n = x.shape[0]
    radii = torch.empty(n, dtype=torch.float64, device=x.device)
    for i0 in range(0, n, block_size):
        i1 = min(i0 + block_size, n)
        dist = torch.cdist(x[i0:i1], x, compute_mode=_CDIST_MODE)
        rows = torch.arange(i1 - i0, device=x.device)
        dist[rows, rows + i0] = float("inf")
        radii[i0:i1] = torch.kthvalue(dist, k, dim=1).values
        del dist
    return radii


def _ball_membership(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """For balls B(centres_i, radii_i): how many balls hold each query (int64, per query) and, per centre, whether
    its ball holds at least one query (bool)."""
    counts = torch.empty(queries.shape[0], dtype=torch.int64, device=queries.device)
    covered = torch.zeros(centres.shape[0], dtype=torch.bool, device=queries.device)
    for j0 in range(0, queries.shape[0], block_size):
        j1 = min(j0 + block_size, queries.shape[0])
        inside = torch.cdist(queries[j0:j1], centres, compute_mode=_CDIST_MODE) <= radii[None, :]
        counts[j0:j1] = inside.sum(dim=1)
        covered |= inside.any(dim=0)
        del inside
    return counts, covered


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, block_size: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall of Kynkaanniemi et al. 2019 (k-NN manifold estimates).

    Maths, for real samples x_1..x_N and fake samples y_1..y_M::

        precision = 1/M sum_j 1[ exists i: ||y_j - x_i|| <= NND_k(x_i) ]    (NND_k within the real set)
        recall    = 1/N sum_i 1[ exists j: ||x_i - y_j|| <= NND_k(y_j) ]    (NND_k within the fake set)

    where NND_k(x_i) is the distance from x_i to its k-th nearest neighbour in its own set, x_i itself excluded
    (Kynkaanniemi et al. 2019, Sec. 2, Eq. 1-2; they use k = 3 on VGG-16 features). Precision is the share of fake
    samples inside the union of real k-NN balls; recall the share of real samples inside the union of fake k-NN
    balls. A sample on a ball's boundary counts as inside. Distances are Euclidean in float64 (see the module
    docstring), in blocks of ``block_size`` rows, so the extra memory is O(block_size * max(N, M)).

    Args:
        real: real samples, shape (N, ...) flattened to (N, d) (1-D is N x 1); N > k.
        fake: generated samples, shape (M, ...) with the same flattened d and device; M > k.
        k: neighbour rank for the ball radii (>= 1).
        block_size: query rows per distance block (>= 1).

    Returns:
        (precision, recall), each in [0, 1], as Python floats.

    Raises:
        ValueError: if k < 1, k >= N or k >= M, the flattened dimensions or devices differ, block_size < 1, or the
            inputs contain NaN/inf.
    """
    r, f = _validated_pair(real, fake, k, block_size, k_below_fake=True, caller="precision_recall")
    fake_counts, _ = _ball_membership(f, r, _knn_radii(r, k, block_size), block_size)
    real_counts, _ = _ball_membership(r, f, _knn_radii(f, k, block_size), block_size)
    precision = (fake_counts > 0).to(torch.float64).mean()
    recall = (real_counts > 0).to(torch.float64).mean()
    return float(precision.item()), float(recall.item())


def density_coverage(
    real: torch.Tensor, fake: torch.Tensor, k: int = 5, block_size: int = 1024
) -> tuple[float, float]:
    """Density and coverage of Naeem et al. 2020 (k-NN balls around real samples only).

    Maths, for real samples x_1..x_N and fake samples y_1..y_M (Naeem et al. 2020, Sec. 3.2, Eq. 3-4)::

        density  = 1/(k M) sum_{j=1..M} sum_{i=1..N} 1[ ||y_j - x_i|| <= NND_k(x_i) ]
        coverage = 1/N     sum_{i=1..N} 1[ exists j: ||y_j - x_i|| <= NND_k(x_i) ]

    with NND_k(x_i) the distance from x_i to its k-th nearest real neighbour, x_i itself excluded (Naeem et al. use
    k = 5). Density is not bounded by 1: its expectation is 1 when real and fake are independent samples of the same
    distribution, and when fake is an exact copy of real (no ties) it equals (k + 1) / k, since each real ball then
    holds its own centre and its k neighbours. Coverage is in [0, 1]. A sample on a ball's boundary counts as inside.
    Distances are Euclidean in float64 (see the module docstring), in blocks of ``block_size`` rows, so the extra
    memory is O(block_size * max(N, M)).

    Args:
        real: real samples, shape (N, ...) flattened to (N, d) (1-D is N x 1); N > k.
        fake: generated samples, shape (M, ...) with M >= 1, the same flattened d and device.
        k: neighbour rank for the ball radii (>= 1).
        block_size: query rows per distance block (>= 1).

    Returns:
        (density, coverage) as Python floats.

    Raises:
        ValueError: if k < 1 or k >= N, fake is empty, the flattened dimensions or devices differ, block_size < 1,
            or the inputs contain NaN/inf.
    """
    r, f = _validated_pair(real, fake, k, block_size, k_below_fake=False, caller="density_coverage")
    counts, covered = _ball_membership(f, r, _knn_radii(r, k, block_size), block_size)
    density = counts.sum().to(torch.float64) / (k * f.shape[0])
    coverage = covered.to(torch.float64).mean()
    return float(density.item()), float(coverage.item())
