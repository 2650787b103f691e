"""Frechet distance between Gaussians fitted to two feature sets (the quantity behind "FID"), as a pure function.

References
----------
[Heusel2017] M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, "GANs Trained by a Two Time-Scale
Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017. https://arxiv.org/abs/1706.08500
[DowsonLandau1982] D. C. Dowson, B. V. Landau, "The Frechet distance between multivariate normal distributions",
Journal of Multivariate Analysis 12(3):450-455, 1982 (the closed form used below).

Feature space
-------------
The distance is computed in whatever feature space the caller passes. Heusel et al. use the 2048-d pool features of
an ImageNet Inception-v3 network; this harness passes features of its own trained classifier instead, so the numbers
here are NOT Inception FIDs and must never be compared with FIDs reported elsewhere.
"""

from __future__ import annotations

import math

import torch

from gvae_bench.functional._rows import paired_rows

__all__ = ["frechet_distance", "too_few_for_covariance"]


def _mean_and_covariance(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean and unbiased (1 / (n - 1)) sample covariance of the rows of ``x`` (float64), symmetrised."""
    mu = x.mean(dim=0)
    xc = x - mu
    cov = (xc.T @ xc) / (x.shape[0] - 1)
    return mu, 0.5 * (cov + cov.T)


def _psd_sqrt(s: torch.Tensor) -> torch.Tensor:
    """Symmetric PSD square root of a symmetric matrix via eigh, negative eigenvalues (rounding) clamped to 0."""
    evals, evecs = torch.linalg.eigh(s)
    return (evecs * evals.clamp_min(0.0).sqrt()) @ evecs.T


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet (2-Wasserstein squared) distance between Gaussians fitted to two feature sets.

    Maths (Dowson and Landau 1982; used as FID by Heusel et al. 2017)::

        d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})

    where ``mu`` is the sample mean and ``S`` the unbiased sample covariance, ``S = 1/(n-1) sum_i (x_i - mu)(x_i -
    mu)^T`` (the same normalisation as ``numpy.cov``, which the reference FID code uses), of each feature set.

    Feature space: the distance is computed in whatever space ``features_a`` / ``features_b`` live in. The harness
    passes features of its own trained classifier, not Inception-v3 pool features, so its values must never be
    compared with Inception FIDs from the literature.

    Computation, all in float64 on the inputs' device:

    * ``R_a = S_a^{1/2}`` and ``R_b = S_b^{1/2}``, the symmetric PSD square roots, from ``torch.linalg.eigh`` with
      eigenvalues below 0 (rounding of a PSD matrix) clamped to 0;
    * ``Tr((S_a S_b)^{1/2}) = sum of the singular values of R_a R_b`` (its nuclear norm). Reason: ``S_a S_b`` is
      similar to ``R_a S_b R_a = (R_a R_b)(R_a R_b)^T``, a symmetric PSD matrix whose eigenvalues are the squared
      singular values of ``R_a R_b``; so this is the trace of ``(sqrt(S_a) S_b sqrt(S_a))^{1/2}`` from its
      eigenvalues, but taken from singular values (``torch.linalg.svdvals``), which have absolute error about
      eps * ||S|| instead of the sqrt(eps) * ||S|| that square-rooting tiny eigenvalues of ``R_a S_b R_a`` gives.
      It needs no matrix inverse, so singular covariances (n <= d, or constant features) are fine.

    The exact quantity is >= 0; a result that is negative only through rounding is returned as 0.0.

    Args:
        features_a: first feature set, shape (n_a, d) with n_a >= 2 (an (n, ...) tensor is flattened to (n, d); a
            1-D tensor is read as n samples of dimension 1). Any floating or integer dtype; cast to float64.
        features_b: second feature set, shape (n_b, d) with n_b >= 2, the same d and device as ``features_a``.

    Returns:
        The Frechet distance d^2 as a Python float (symmetric in its arguments up to rounding).

    Raises:
        ValueError: if either set has fewer than 2 rows, the feature dimensions or devices differ, or either set
            contains NaN/inf.
    """
    a, b = paired_rows(features_a, features_b, ("features_a", "features_b"), (2, 2),
                       "at least 2 samples each to estimate a covariance, which divides by n - 1")
    mu_a, s_a = _mean_and_covariance(a)
    mu_b, s_b = _mean_and_covariance(b)
    diff = mu_a - mu_b
    mean_term = diff @ diff
    trace_sqrt = torch.linalg.svdvals(_psd_sqrt(s_a) @ _psd_sqrt(s_b)).sum()
    value = float((mean_term + torch.trace(s_a) + torch.trace(s_b) - 2.0 * trace_sqrt).item())
    if not math.isfinite(value):
        raise ValueError(f"frechet_distance overflowed to {value}; rescale the features (they are too large).")
    return max(value, 0.0)


def too_few_for_covariance(n_a: int, n_b: int, d: int, what: str = "FID") -> str | None:
    """Why a Frechet distance of ``d``-dimensional features from ``n_a`` and ``n_b`` samples is not reported, or
    None when it is.

    The sample covariance of n rows has rank at most n - 1, so with n <= d it is singular: it spans only an
    (n - 1)-dimensional subspace of the d feature dimensions, and the trace term Tr(S_a + S_b - 2 (S_a S_b)^{1/2})
    then measures the noise of the estimate more than the distributions (the Frechet distance is biased upwards
    at finite n, Chong and Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them",
    CVPR 2020, and the bias grows as n approaches d). The harness reports FID and FRD only when both sets have
    more samples than feature dimensions (n > d), and "n/a" with this reason otherwise.

    Args:
        n_a, n_b: the two sample counts.
        d: the feature dimension.
        what: the metric's name, for the message.

    Returns:
        None when min(n_a, n_b) > d, else a one-line reason.
    """
    n = min(n_a, n_b)
    if n > d:
        return None
    return (f"{what} fits a {d}-dimensional covariance, which needs more samples than dimensions (a covariance of n "
            f"samples has rank at most n - 1); got {n_a} and {n_b} samples for {d} features")
