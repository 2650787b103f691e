"""The feature space of the harness's feature metrics: the penultimate layer of a benchmark's domain classifier.

``domain_features(images, dataset)`` gives the ``FEATURE_DIM`` (128) post-ReLU features per image of the classifier
``gvae_bench.execution.classifier.train_classifier`` returns for ``dataset`` (the pinned one for MNIST and Fashion-MNIST at
the default settings; see that module). These are the features FID, KID, precision/recall, density/coverage,
Vendi, C_T and authenticity read; numbers in this space are comparable only with numbers from the classifier of
the same SHA-256. It is not Inception-v3's space (Heusel et al. 2017 use Inception's 2048 pool features), so no
value here may be compared with an Inception FID from the literature.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gvae_bench.contracts.metric import FEATURE_BATCH, read_channel_groups

if TYPE_CHECKING:
    from gvae_bench.execution.classifier import ClassifierConfig

__all__ = ["FEATURE_BATCH", "domain_classifier", "domain_features", "read_channel_groups"]

def domain_classifier(dataset: str, data_root: Path | str | None = None,
                      config: ClassifierConfig | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The domain classifier of ``dataset`` and its record (``sha256``, ``version``, test accuracy), from
    ``gvae_bench.execution.classifier.train_classifier``: the pinned weights where ``dataset`` has them and ``config`` is
    the default, else the cached (or newly trained) one. ``data_root``: the data folder (default
    ``$GVAE_BENCH_DATA``, else ./data)."""
    from gvae_bench.execution.classifier import train_classifier
    from gvae_bench.paths import resolve_data_root

    return train_classifier(dataset, resolve_data_root(data_root), config)


def domain_features(images: torch.Tensor, dataset: str, data_root: Path | str | None = None,
                    config: ClassifierConfig | None = None) -> torch.Tensor:
    """Penultimate-layer features of ``dataset``'s domain classifier for ``images``.

    phi(x) = ReLU(W h(x) + b), the ``FEATURE_DIM``-unit layer before the classifier's linear head, where h is the
    convolutional trunk (``gvae_bench.execution.classifier.DomainClassifier``); images with more channels than the classifier
    reads are read group by group and the groups' features concatenated (``read_channel_groups``).

    Args:
        images: (N, C, H, W) images in [-1, 1] of the classifier's side (28 px for MNIST).
        dataset: a registered benchmark with a domain classifier (mnist, fashion_mnist, cifar10, ...).
        data_root: the data folder (needed only when the classifier is not pinned and must be trained).
        config: the classifier's training settings (None: the defaults, i.e. the pinned classifier).

    Returns:
        (N, groups x 128) float32 features.
    """
    classifier, _ = domain_classifier(dataset, data_root, config)
    return read_channel_groups(classifier.eval(), images)
