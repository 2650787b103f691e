"""Nearest neighbours of query rows in a reference set, and a seeded k-means partition.

Shared by the novelty functions (``copying``, ``authenticity``) and their registered metrics. Distances are Euclidean in float64 and
exact, as in ``gvae_bench/functional/prdc.py``: each reported distance is sqrt(sum_k (q_k - r_k)^2) of the
differences, so an exact copy of a reference row is exactly 0 from it and ties are decided
consistently. The search is fast: candidates come from the matrix-product form
||q||^2 + ||r||^2 - 2 q.r (about 3x faster than differences on a CPU), every reference row within
a rounding margin of the best is kept, and the neighbour is chosen among them by exact distance.
"""

from __future__ import annotations

import torch

__all__ = ["nearest_neighbours", "kmeans", "assign_cells"]

#: distance-matrix entries formed at once (float64: 32 MiB)
_BLOCK_ENTRIES = 1 << 22
#: candidates lie within this share of ||q||^2 + max ||r||^2 of the best squared distance of the
#: matrix-product form, whose rounding error is about d * 2^-52 of that scale (1e-13 at d = 512)
_MARGIN = 1e-9


def _rows_per_block(n_reference: int) -> int:
    return max(1, _BLOCK_ENTRIES // max(n_reference, 1))


def _exact(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise exact Euclidean distances between paired rows of ``a`` and ``b``."""
    return (a - b).pow(2).sum(dim=1).sqrt()


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor,
                       exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query row, the exact distance to its nearest reference row and that row's index.

    ``exclude``: one reference index per query row that the query may not take as its neighbour
    (its own index, when the queries are reference rows). Ties go to the lowest index. Distances
    are formed in blocks of at most 2^22 entries, so the extra memory is 32 MiB whatever the sizes.

    Args:
        queries: (m, d) float64 rows.
        reference: (N, d) float64 rows on the same device, N >= 1 (N >= 2 with ``exclude``).
        exclude: optional (m,) int64 indices into ``reference``.

    Returns:
        (distances (m,) float64, indices (m,) int64).
    """
    if reference.shape[0] < (2 if exclude is not None else 1):
        raise ValueError(f"need at least {2 if exclude is not None else 1} reference rows to find a neighbour "
                         f"{'other than the row itself ' if exclude is not None else ''}; got {reference.shape[0]}.")
    m, n_ref = queries.shape[0], reference.shape[0]
    distances = torch.empty(m, dtype=torch.float64, device=queries.device)
    indices = torch.empty(m, dtype=torch.int64, device=queries.device)
    ref_sq = reference.pow(2).sum(dim=1)
    scale = float(ref_sq.max())
    step = _rows_per_block(n_ref)
    for i0 in range(0, m, step):
        i1 = min(i0 + step, m)
        q = queries[i0:i1]
        q_sq = q.pow(2).sum(dim=1)
        squared = q_sq[:, None] + ref_sq[None, :] - 2.0 * (q @ reference.T)
        if exclude is not None:
            squared[torch.arange(i1 - i0, device=q.device), exclude[i0:i1]] = float("inf")
        best = squared.min(dim=1).values
        rows, cols = torch.nonzero(squared <= (best + _MARGIN * (q_sq + scale))[:, None], as_tuple=True)
        del squared
        exact = _exact(q[rows], reference[cols])
        block_best = torch.full((i1 - i0,), float("inf"), dtype=torch.float64, device=q.device)
        block_best.scatter_reduce_(0, rows, exact, reduce="amin")
        first = torch.full((i1 - i0,), n_ref, dtype=torch.int64, device=q.device)
        at_best = exact == block_best[rows]
        first.scatter_reduce_(0, rows[at_best], cols[at_best], reduce="amin")
        distances[i0:i1], indices[i0:i1] = block_best, first
    return distances, indices


def assign_cells(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """The index of the nearest centre of each row (its Voronoi cell), ties to the lowest index."""
    return nearest_neighbours(x, centres)[1]


def kmeans(x: torch.Tensor, k: int, seed: int = 0, max_iter: int = 100, tol: float = 1e-4) -> torch.Tensor:
    """``k`` centres of the rows of ``x`` by Lloyd's k-means from a k-means++ start, seeded.

    k-means++ (Arthur and Vassilvitskii 2007): the first centre is a uniformly drawn row, each
    next one a row drawn with probability proportional to its squared distance to the nearest
    centre so far. Lloyd's iterations then move each centre to the mean of its cell until no
    assignment changes, the centres' summed squared shift in an iteration falls below ``tol``
    times the mean per-coordinate variance of ``x`` (scikit-learn's rule and default), or
    ``max_iter`` iterations. A cell left empty gets the row farthest from its centre.
    Deterministic for a given ``x``, ``k`` and ``seed`` (a CPU generator).

    Args:
        x: (N, d) float64 rows, N >= k.
        k: number of centres (>= 1).
        seed: seed of the k-means++ draws.

    Returns:
        (k, d) float64 centres.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    n = x.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k = {k} rows to place {k} centres; got {n}.")
    generator = torch.Generator().manual_seed(seed)
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest_sq = nearest_neighbours(x, x[chosen])[0] ** 2
    for _ in range(1, k):
        total = float(nearest_sq.sum())
        if total > 0:
            pick = int(torch.multinomial((nearest_sq / total).cpu(), 1, generator=generator))
        else:  # every row sits on a centre already: take the first unchosen row
            taken = set(chosen)
            pick = next(i for i in range(n) if i not in taken)
        chosen.append(pick)
        nearest_sq = torch.minimum(nearest_sq, nearest_neighbours(x, x[pick:pick + 1])[0] ** 2)
    centres = x[chosen].clone()
    labels = assign_cells(x, centres)
    threshold = tol * float(x.var(dim=0, unbiased=False).mean()) if n > 1 else 0.0
    for _ in range(max_iter):
        previous = centres.clone()
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None].to(x.dtype)
        if not bool(filled.all()):
            own = (x - centres[labels]).norm(dim=1)
            for empty in torch.nonzero(~filled).flatten().tolist():
                farthest = int(own.argmax())
                centres[empty], own[farthest] = x[farthest], -1.0
        new_labels = assign_cells(x, centres)
        if torch.equal(new_labels, labels) or float((centres - previous).pow(2).sum()) < threshold:
            break
        labels = new_labels
    return centres
