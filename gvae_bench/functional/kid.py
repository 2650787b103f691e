"""Kernel distance ("KID") with the cubic polynomial kernel, averaged over random subsets, as a pure function.

Reference
---------
[Binkowski2018] M. Binkowski, D. J. Sutherland, M. Arbel, A. Gretton, "Demystifying MMD GANs", ICLR 2018.
https://arxiv.org/abs/1801.01401 (Sec. 4: the Kernel Inception Distance, KID). The unbiased MMD^2 estimator is the
one of Gretton et al. 2012, "A Kernel Two-Sample Test", JMLR 13:723-773, Lemma 6.

Feature space
-------------
"KID" here means the kernel distance in the caller's feature space. Binkowski et al. use Inception-v3 pool features;
this harness passes features of its own trained classifier, so the values must not be compared with Inception KIDs
reported elsewhere.
"""

from __future__ import annotations

import torch

from gvae_bench.functional._rows import paired_rows

__all__ = ["KID_SUBSETS", "KID_SUBSET_SIZE", "kernel_inception_distance"]

#: the harness's KID protocol: the mean over this many random subsets ...
KID_SUBSETS = 100
#: ... of this many rows of each set (fewer when a set is smaller), as Binkowski et al.'s reference code
KID_SUBSET_SIZE = 1000


def _cubic_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x_i, y_j) = (x_i . y_j / d + 1)^3 for all pairs of rows, float64 in and out."""
    d = x.shape[1]
    return (x @ y.T).div_(d).add_(1.0).pow_(3)


def _unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 (Gretton et al. 2012, Lemma 6) with the cubic kernel, for two sets of m rows each."""
    m = x.shape[0]
    k_xx = _cubic_kernel(x, x)
    k_yy = _cubic_kernel(y, y)
    k_xy = _cubic_kernel(x, y)
    within = (k_xx.sum() - torch.diagonal(k_xx).sum()) + (k_yy.sum() - torch.diagonal(k_yy).sum())
    return within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m)


def kernel_inception_distance(
    features_a: torch.Tensor,
    features_b: torch.Tensor,
    n_subsets: int = 100,
    subset_size: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[float, float]:
    """Kernel distance ("KID", Binkowski et al. 2018) between two feature sets: subset-averaged unbiased MMD^2.

    "KID" here means the kernel distance in the caller's feature space; the harness passes features of its own
    trained classifier, not Inception-v3 features, so values are not comparable with published (Inception) KIDs.

    Kernel (Binkowski et al. 2018, Sec. 4), with d the feature dimension::

        k(x, y) = (x . y / d + 1)^3

    Estimator: for each of ``n_subsets`` repetitions, draw m = min(subset_size, n_a, n_b) rows without replacement
    from each set (independently per set and per repetition) and compute the unbiased MMD^2 (Gretton et al. 2012,
    Lemma 6, with equal set sizes m)::

        MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j)

    The result is the mean of the n_subsets values and their standard deviation (population form, divisor
    n_subsets, so it is 0.0 for n_subsets = 1; it measures the spread of the subset estimates, not the standard
    error of their mean). MMD^2_u is unbiased, so the mean can be slightly negative when the distributions match.

    Sample counts below the feature dimension: unlike FID, which fits a d x d covariance (singular for n <= d),
    this estimator fits nothing. Each term is an average of kernel values over distinct pairs of independent
    rows, so E[MMD^2_u] = MMD^2 exactly for every m >= 2 whatever d is (Gretton et al. 2012, Lemma 6); only its
    variance grows as m falls. The harness therefore reports KID at any m >= 2 (tests/test_kid.py checks the
    subset mean against the exact MMD^2 of two discrete distributions at m = 20 < d = 128).

    Computation: float64 on the inputs' device; each subset forms three m x m kernel matrices (O(m^2) memory, about
    24 MB for m = 1000). Subset indices come from ``torch.randperm`` with ``generator`` (on the generator's device;
    torch's global RNG when None: pass a seeded generator for reproducible results).

    Args:
        features_a: first feature set, shape (n_a, d), n_a >= 2 ((n, ...) is flattened to (n, d); 1-D is n x 1).
        features_b: second feature set, shape (n_b, d), n_b >= 2, the same d and device as ``features_a``.
        n_subsets: number of random subsets (>= 1).
        subset_size: rows per subset (>= 2); capped at min(n_a, n_b).
        generator: torch.Generator for the subset draws.

    Returns:
        (mean, std) of the subset estimates, as Python floats.

    Raises:
        ValueError: on fewer than 2 rows in either set, mismatched feature dimensions or devices, n_subsets < 1,
            subset_size < 2, or NaN/inf in the inputs.
    """
    a, b = paired_rows(features_a, features_b, ("features_a", "features_b"), (2, 2),
                       "at least 2 samples each: the unbiased estimator divides by m(m-1)")
    n_a, n_b = a.shape[0], b.shape[0]
    if isinstance(n_subsets, bool) or not isinstance(n_subsets, int) or n_subsets < 1:
        raise ValueError(f"n_subsets must be an integer >= 1, got {n_subsets!r}.")
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(
            f"subset_size must be an integer >= 2 (the unbiased estimator needs 2 samples per set), "
            f"got {subset_size!r}."
        )
    m = min(subset_size, n_a, n_b)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    estimates = torch.empty(n_subsets, dtype=torch.float64, device=a.device)
    for s in range(n_subsets):
        idx_a = torch.randperm(n_a, generator=generator, device=gen_device)[:m].to(a.device)
        idx_b = torch.randperm(n_b, generator=generator, device=gen_device)[:m].to(b.device)
        estimates[s] = _unbiased_mmd2(a[idx_a], b[idx_b])
    mean = estimates.mean()
    std = ((estimates - mean) ** 2).mean().sqrt()
    return float(mean.item()), float(std.item())
