"""The Vendi score (Friedman and Dieng 2023): the effective number of distinct samples, as a pure function.

Reference
---------
[Friedman2023] D. Friedman, A. B. Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine Learning",
Transactions on Machine Learning Research, 2023. https://arxiv.org/abs/2210.02410
"""

from __future__ import annotations

import math

import torch

from gvae_bench.functional._rows import as_rows

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
