"""Alaa et al.'s authenticity: the share of generated samples that are not copies of a training sample.

Reference
---------
[Alaa2022] A. M. Alaa, B. van Breugel, E. Saveliev, M. van der Schaar, "How Faithful is your Synthetic Data?
Sample-level Metrics for Evaluating and Auditing Generative Models", ICML 2022. https://arxiv.org/abs/2102.08921
(the authenticity component of the (alpha-precision, beta-recall, authenticity) metric).

Distances as in ``gvae_bench/functional/prdc.py`` (Euclidean, float64, exact: a copy is 0 from its training row).
"""

from __future__ import annotations

import torch

from gvae_bench.functional.nearest import nearest_neighbours
from gvae_bench.functional._rows import paired_rows

__all__ = ["authentic", "authenticity"]


def authentic(distance_to_train: torch.Tensor, nearest_train_own_distance: torch.Tensor) -> torch.Tensor:
    """Per sample, whether it is authentic: farther from its nearest training sample than that
    training sample is from its own nearest training neighbour (``authenticity`` gives the maths).

    Args:
        distance_to_train: (m,) d(x_j, X_{i*(j)}), each sample's distance to its nearest training sample.
        nearest_train_own_distance: (m,) d(X_{i*(j)}, X_{-i*(j)}), that training sample's distance to its nearest
            other training sample.

    Returns:
        (m,) bool: A_j.
    """
    if distance_to_train.shape != nearest_train_own_distance.shape:
        raise ValueError("authentic needs one training-neighbour distance per sample; got shapes "
                         f"{tuple(distance_to_train.shape)} and {tuple(nearest_train_own_distance.shape)}.")
    return distance_to_train > nearest_train_own_distance


def authenticity(samples: torch.Tensor, train: torch.Tensor) -> float:
    """Share of ``samples`` that are authentic with respect to the training set ``train``.

    Maths ([Alaa2022], authenticity): for each sample x_j, let i*(j) = argmin_i ||x_j - X_i|| be its nearest
    training sample and d_{i*} = min_{i != i*} ||X_{i*} - X_i|| the distance from that training sample to its own
    nearest other training sample. Then

        A_j = 1[ ||x_j - X_{i*(j)}|| > d_{i*(j)} ],      authenticity = (1/m) sum_j A_j

    A sample closer to a training sample than the training data's own nearest-neighbour spacing there is
    counted a copy (A_j = 0); an exact copy always is, even of a duplicated training row. Authenticity is the
    estimate of 1 - lambda in Alaa et al.'s mixture P_g = lambda (copies of training samples) + (1 - lambda)
    (new samples). Fresh data from the data distribution is not 1: it scores what real held-out data scores
    (the reference of the registered metric), which depends on the distribution and on N.

    Ties on the nearest training sample go to the lowest index. O(m N d) time for N training rows, in blocks of
    bounded memory.

    Args:
        samples: (m, ...) samples (flattened to rows), m >= 1.
        train: (N, ...) training samples, N >= 2, the same flattened dimension and device.

    Returns:
        The share of authentic samples in [0, 1], as a Python float.
    """
    x, t = paired_rows(samples, train, ("samples", "train"), (1, 2),
                       "each training neighbour needs a neighbour of its own within the training set")
    distance, nearest = nearest_neighbours(x, t)
    unique, inverse = torch.unique(nearest, return_inverse=True)
    own = nearest_neighbours(t[unique], t, exclude=unique)[0][inverse]
    return float(authentic(distance, own).double().mean())
