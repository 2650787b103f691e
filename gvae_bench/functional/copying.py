"""Meehan, Chaudhuri and Dasgupta's data-copying statistic C_T, as pure tensor functions.

References
----------
[Meehan2020] C. Meehan, K. Chaudhuri, S. Dasgupta, "A Non-Parametric Test to Detect Data-Copying in Generative
Models", AISTATS 2020. https://arxiv.org/abs/2004.05675 (Sec. 3: the Z_U test and its cell-wise form C_T).
[MannWhitney1947] H. B. Mann, D. R. Whitney, "On a Test of Whether one of Two Random Variables is Stochastically
Larger than the Other", Annals of Mathematical Statistics 18(1), 1947.

The three samples
-----------------
T, the training set the model learnt from; P_n, n held-out test samples (never in T); Q_m, m generated samples.
Each sample x has a distance to the training set, d(x, T) = min_{t in T} ||x - t|| (Euclidean, in a feature
space). A model that copies puts its samples closer to T than fresh data from the distribution is; one that
underfits puts them farther.

Conventions: distances as in ``gvae_bench/functional/prdc.py`` (float64, exact: a copy is 0 from its training row); cells are
the Voronoi cells of k centres fitted to T by seeded k-means (``gvae_bench/functional/nearest.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import scipy.stats
import torch

from gvae_bench.functional.nearest import assign_cells, kmeans, nearest_neighbours
from gvae_bench.functional._rows import paired_rows

__all__ = ["CopyingResult", "mann_whitney_z", "c_t_statistic", "fit_cells", "copying_statistic"]

#: Meehan et al.'s cell threshold tau = 20 / m: a cell enters C_T when more than 20 generated samples fall in it
MIN_GENERATED_PER_CELL = 20
#: k-means is fitted to at most this many training rows (a seeded subset); every row is then assigned
KMEANS_ROWS = 10_000


@dataclass
class CopyingResult:
    """C_T and the cells behind it.

    ``c_t``: the statistic; ``cell_z``: Z_U of each cell (None where the cell is left out);
    ``cell_weights``: P_n(pi), the share of test samples in each cell; ``cells_used``: |Pi_tau|;
    ``stouffer_z``: sum pi_j Z_j / sqrt(sum pi_j^2) over the used cells, which is standard normal
    when no cell differs (a significance reading of the same cells); ``generated_share_used``: the
    share of generated samples that lie in used cells.
    """

    c_t: float
    cell_z: list[float | None]
    cell_weights: list[float]
    cells_used: int
    stouffer_z: float
    generated_share_used: float


def mann_whitney_z(generated: torch.Tensor, test: torch.Tensor) -> float:
    """Z-scored Mann-Whitney U of two sets of values: negative when ``generated`` tends to be smaller.

    Maths ([Meehan2020] Sec. 3, Z_U; [MannWhitney1947]): with m generated values a_i and n test values b_j,

        U   = sum_{i,j} ( 1[a_i > b_j] + 1/2 1[a_i = b_j] )       (scipy.stats.mannwhitneyu's statistic for a)
        Z_U = (U - m n / 2) / sigma,   sigma^2 = m n / 12 ( (N + 1) - sum_t (t^3 - t) / (N (N - 1)) ),  N = m + n

    where t runs over the sizes of groups of tied values (the tie-corrected null variance; it is the plain
    m n (N + 1) / 12 when nothing ties). Under H0 (both sets from one distribution) Z_U is about N(0, 1); Z_U << 0
    means generated values are smaller (closer to the training set: copying). No continuity correction. When every
    value ties (sigma = 0) U = m n / 2 and Z_U is 0.

    Args:
        generated: (m,) values, m >= 1.
        test: (n,) values, n >= 1.

    Returns:
        Z_U as a Python float.
    """
    a, b = generated.detach().double().cpu().flatten(), test.detach().double().cpu().flatten()
    m, n = a.numel(), b.numel()
    if m < 1 or n < 1:
        raise ValueError(f"mann_whitney_z needs at least one value in each set; got {m} generated and {n} test.")
    u = float(scipy.stats.mannwhitneyu(a.numpy(), b.numpy(), alternative="two-sided", method="asymptotic").statistic)
    total = m + n
    ties = torch.unique(torch.cat([a, b]), return_counts=True)[1].double()
    tie_term = float((ties ** 3 - ties).sum()) / (total * (total - 1)) if total > 1 else 0.0
    variance = m * n / 12.0 * ((total + 1) - tie_term)
    if variance <= 0.0:
        return 0.0
    return (u - m * n / 2.0) / math.sqrt(variance)


def c_t_statistic(generated_distance: torch.Tensor, generated_cells: torch.Tensor, test_distance: torch.Tensor,
                  test_cells: torch.Tensor, n_cells: int,
                  min_generated: int = MIN_GENERATED_PER_CELL) -> CopyingResult:
    """C_T from each sample's distance to the training set and its cell.

    Maths ([Meehan2020] Sec. 3; the authors' code, casey-meehan/data-copying, computes the same): for each cell
    pi_j of the partition, Z_j = Z_U(distances of the generated samples in pi_j, distances of the test samples in
    pi_j) (``mann_whitney_z``), and with P_n(pi_j) the share of the n test samples in pi_j,

        C_T = sum_{j in Pi_tau} P_n(pi_j) Z_j / sum_{j in Pi_tau} P_n(pi_j)

    over Pi_tau, the cells holding more than ``min_generated`` generated samples (Meehan et al.'s tau = 20 / m;
    a cell with too few generated samples gives no reliable Z) and at least one test sample (a cell without test
    samples has weight 0 and no Z). C_T is a weighted average of Z-scores: about 0 when generated samples are as
    far from the training set as fresh data, well below 0 (copying) when they are closer, well above 0
    (underfitting) when farther. Its size grows with the sample counts (about sqrt(m n / (m + n)) per cell at a
    fixed effect), so compare values at the same counts.

    Args:
        generated_distance: (m,) d(x, T) of the generated samples.
        generated_cells: (m,) cell index of each generated sample, in [0, n_cells).
        test_distance: (n,) d(x, T) of the test samples.
        test_cells: (n,) cell index of each test sample, in [0, n_cells).
        n_cells: the number of cells k.
        min_generated: a cell is used when it holds more than this many generated samples.

    Returns:
        A ``CopyingResult``.

    Raises:
        ValueError: if the lengths disagree, a cell index is out of range, or no cell qualifies.
    """
    if generated_distance.shape != generated_cells.shape or test_distance.shape != test_cells.shape:
        raise ValueError("each distance needs its cell: generated_distance/generated_cells and "
                         "test_distance/test_cells must have equal shapes; got "
                         f"{tuple(generated_distance.shape)}/{tuple(generated_cells.shape)} and "
                         f"{tuple(test_distance.shape)}/{tuple(test_cells.shape)}.")
    for name, cells in (("generated_cells", generated_cells), ("test_cells", test_cells)):
        if cells.numel() and (int(cells.min()) < 0 or int(cells.max()) >= n_cells):
            raise ValueError(f"{name} must hold cell indices in [0, {n_cells}); "
                             f"got {int(cells.min())}..{int(cells.max())}.")
    m, n = generated_distance.numel(), test_distance.numel()
    if m < 1 or n < 1:
        raise ValueError(f"C_T needs generated and test samples; got {m} generated and {n} test.")
    gen_counts = torch.bincount(generated_cells.cpu(), minlength=n_cells)
    test_counts = torch.bincount(test_cells.cpu(), minlength=n_cells)
    weights = (test_counts.double() / n).tolist()
    cell_z: list[float | None] = []
    for j in range(n_cells):
        if int(gen_counts[j]) > min_generated and int(test_counts[j]) > 0:
            cell_z.append(mann_whitney_z(generated_distance[generated_cells == j], test_distance[test_cells == j]))
        else:
            cell_z.append(None)
    used = [j for j in range(n_cells) if cell_z[j] is not None]
    if not used:
        raise ValueError(f"no cell holds more than {min_generated} generated samples and a test sample "
                         f"({m} generated in {n_cells} cells); draw more samples or use fewer cells.")
    weight_sum = sum(weights[j] for j in used)
    weighted = sum(weights[j] * cell_z[j] for j in used)  # type: ignore[operator]
    stouffer = weighted / math.sqrt(sum(weights[j] ** 2 for j in used))
    generated_used = sum(int(gen_counts[j]) for j in used)
    return CopyingResult(c_t=float(weighted / weight_sum), cell_z=cell_z, cell_weights=weights, cells_used=len(used),
                         stouffer_z=float(stouffer), generated_share_used=generated_used / m)


def fit_cells(train: torch.Tensor, cells: int, seed: int = 0, max_rows: int = KMEANS_ROWS) -> torch.Tensor:
    """The centres of the partition: k-means (``gvae_bench/functional/nearest.py``, k-means++ start seeded by ``seed``) of
    the training rows, or of a random subset of ``max_rows`` of them (drawn with the same seed) when there are
    more. Meehan et al. fit k-means to the whole embedded training set; any fixed partition of the space gives
    a valid test (Z_U compares distances within a cell), and 10,000 rows place 50 centres where the data is at
    a fraction of the cost of 60,000.

    Args:
        train: (N, d) float64 training rows, N >= cells.
        cells: number of centres k (>= 1).

    Returns:
        (k, d) float64 centres.
    """
    if train.shape[0] > max_rows:
        train = train[torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]]
    return kmeans(train, cells, seed=seed)


def copying_statistic(generated: torch.Tensor, test: torch.Tensor, train: torch.Tensor, cells: int,
                      seed: int = 0, min_generated: int = MIN_GENERATED_PER_CELL) -> CopyingResult:
    """Meehan et al.'s C_T of generated samples against held-out test samples, with training set ``train``.

    The cells are the Voronoi cells of ``cells`` k-means centres of the training rows (``fit_cells``, seeded by
    ``seed``; the authors' experiments also fit k-means to the embedded training set); every sample's distance
    to the training set is its exact Euclidean distance to its nearest training row (over all N rows). Then
    ``c_t_statistic``. Costs O((m + n) N d) time, in blocks of bounded memory.

    Args:
        generated: (m, ...) generated samples (flattened to rows).
        test: (n, ...) test samples drawn from the data distribution and not in ``train``.
        train: (N, ...) the training set, N >= cells.
        cells: number of k-means cells k (>= 1).
        seed: seed of the k-means++ start.
        min_generated: a cell is used when it holds more than this many generated samples.

    Returns:
        A ``CopyingResult``.
    """
    g, t = paired_rows(generated, train, ("generated", "train"), (1, 1), "C_T compares samples with a training set")
    p, _ = paired_rows(test, train, ("test", "train"), (1, 1), "C_T compares samples with a training set")
    centres = fit_cells(t, cells, seed=seed)
    return c_t_statistic(nearest_neighbours(g, t)[0], assign_cells(g, centres),
                         nearest_neighbours(p, t)[0], assign_cells(p, centres), cells, min_generated)
