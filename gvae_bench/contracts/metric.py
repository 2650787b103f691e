"""The contract of a registered metric and the evaluation context it reads samples from.

A metric is a pure function of tensors (tested against references) plus a thin registered
wrapper, a ``Metric`` subclass, that states what it needs, which direction is better, which
leaderboard it belongs to, and fetches its samples from the ``EvalContext``. A model or benchmark
lacking what a metric needs gets "n/a" with the reason, never a crash.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch

from torch import nn

from gvae_bench.contracts.benchmark import Benchmark, DataSplits
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.profiles import EvalConfig

# What a metric may need: model capabilities and facts about the benchmark.
NEEDS_SAMPLES, NEEDS_ENCODER, NEEDS_RECONSTRUCTION = "sample", "encode", "reconstruct"
NEEDS_IMAGES, NEEDS_KNOWN_MODES, NEEDS_CLASSIFIER = "images", "known_modes", "classifier"
NEEDS_DECODER, NEEDS_ANY_ENCODER = "decoder", "encoder (Gaussian or deterministic)"
NEEDS_HU, NEEDS_CLASSIFIED_MODES = "hounsfield_units", "classifier-read modes"


#: images read by the classifier at a time (as the evaluation context reads them)
FEATURE_BATCH = 1000


def read_channel_groups(classifier: nn.Module, images: torch.Tensor,
                        read: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``read(classifier, group)`` (default: ``classifier.features``) on each group of ``classifier.in_channels``
    channels of ``images`` in turn (1 when it has no ``in_channels``), in batches of ``FEATURE_BATCH`` images, the
    groups' outputs concatenated along dimension 1: Stacked MNIST's three digits, read by MNIST's 1-channel
    classifier, give 3 x 128 features. What ``EvalContext.features`` reads; also ``gvae_bench.functional.read_channel_groups``.

    Args:
        classifier: a domain classifier (``gvae_bench.execution.classifier.DomainClassifier``), in eval mode.
        images: (N, C, H, W) in the harness's range [-1, 1], C a multiple of the classifier's channels.
        read: what to read from each batch (default: the penultimate features).

    Returns:
        (N, groups x features) float32 tensor on the CPU.
    """
    read = read or (lambda model, batch: model.features(batch))
    step = int(getattr(classifier, "in_channels", 1))
    if images.dim() != 4 or images.shape[1] % step:
        raise ValueError(f"the domain classifier reads (N, C, H, W) images {step} channel(s) at a time; "
                         f"got shape {tuple(images.shape)}")
    with torch.no_grad():
        groups = [torch.cat([read(classifier, images[i : i + FEATURE_BATCH, c : c + step].float())
                             for i in range(0, len(images), FEATURE_BATCH)])
                  for c in range(0, images.shape[1], step)]
    return torch.cat(groups, dim=1)



@dataclass
class MetricResult:
    """One metric's value with the sample counts behind it.

    ``reference``: the same quantity on real test data where that makes sense (MS-SSIM's real-data
    row), else None. ``details``: settings that produced the value (bandwidth, pairs, ...).
    """

    value: float
    n_generated: int
    n_real: int
    reference: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class NotApplicable(Exception):
    """Raised by ``Metric.compute`` when the samples at hand leave the metric undefined (e.g. too few images
    with radiomic features); the evaluation records the metric as n/a with this message as the reason."""


#: ``details["reference"]`` of a metric whose reference scores real training against real test samples
REAL_TRAIN_VS_TEST = "real train vs real test"


@dataclass
class EvalContext:
    """What metrics read: the trained model, the benchmark, its data and the sample counts.

    Generated samples are drawn once (as many as the largest request) and shared by every metric;
    real test samples are a seeded random subset, the same for every model at a given seed.
    ``classifier`` is the benchmark's domain classifier (``gvae_bench.execution.classifier``), built by the
    evaluation and handed in when a metric that needs it will run; ``classifier_record`` is its
    cache record (key, test accuracy), which the feature-space metrics cite.
    """

    model: GenerativeModel
    benchmark: Benchmark
    splits: DataSplits
    config: EvalConfig
    seed: int
    classifier: nn.Module | None = None
    classifier_record: dict[str, Any] | None = None
    _generated: torch.Tensor | None = None
    _features: dict[str, torch.Tensor] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per context: for work several metrics share (the ELBO terms)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def generated(self, n: int) -> torch.Tensor:
        """``n`` samples from the model (CPU, float32, in the data's range)."""
        if self._generated is None or len(self._generated) < n:
            torch.manual_seed(self.seed + 1_000_003)
            self._generated = self.model.sample_in_batches(max(n, self.config.n_samples))
        return self._generated[:n]

    def _seeded_subset(self, data: torch.Tensor, n: int, purpose: str) -> torch.Tensor:
        """``n`` rows of ``data``, a random subset seeded by the run's seed and ``purpose`` (all if
        n >= len(data))."""
        if n >= len(data):
            return data
        order = torch.randperm(len(data), generator=self.generator(purpose))
        return data[order[:n]]

    def real_test(self, n: int) -> torch.Tensor:
        """``n`` test samples, a random subset seeded by the run's seed (all if n >= test size)."""
        return self._seeded_subset(self.splits.test, n, "real_test")

    def real_train(self, n: int) -> torch.Tensor:
        """``n`` training samples, a random subset seeded by the run's seed (all if n >= train size):
        a stand-in for a model that reproduces the training distribution exactly, scored against
        ``real_test`` for the metrics' real-data reference values."""
        return self._seeded_subset(self.splits.train, n, "real_train")

    def samples(self, which: str, n: int) -> torch.Tensor:
        """``n`` samples of the set named ``which``: generated, real (test) or train."""
        sets = {"generated": self.generated, "real": self.real_test, "train": self.real_train}
        if which not in sets:
            raise ValueError(f"unknown sample set {which!r}; one of {sorted(sets)}")
        return sets[which](n)

    def _classifier_on(self, which: str, n: int) -> tuple[nn.Module, torch.Tensor]:
        if self.classifier is None:
            raise RuntimeError("this metric reads the domain classifier, but the evaluation context was given none")
        return self.classifier, self.samples(which, n)

    def features(self, which: str, n: int) -> torch.Tensor:
        """Penultimate-layer features of the benchmark's domain classifier for ``n`` generated
        (``which="generated"``), real test (``"real"``) or real training (``"train"``) samples.
        Samples with more channels than the classifier reads (Stacked MNIST's three digits, read by
        MNIST's 1-channel classifier) are read group by group and the groups' features concatenated."""
        key = f"{which}:{n}"
        if key not in self._features:
            self._features[key] = read_channel_groups(*self._classifier_on(which, n))
        return self._features[key]

    def predicted_classes(self, which: str, n: int) -> torch.Tensor:
        """The domain classifier's argmax class for each channel group (as in ``features``) of ``n``
        generated, real test or real training samples, shape (n, groups)."""
        key = f"classes:{which}:{n}"
        if key not in self._features:
            self._features[key] = read_channel_groups(*self._classifier_on(which, n),
                                                      read=lambda model, images: model(images).argmax(dim=1, keepdim=True))
        return self._features[key]

    @property
    def classifier_details(self) -> dict[str, Any]:
        """Which classifier made the features: its version (``<dataset>-v<N>`` when pinned), the
        SHA-256 of its weights file, its cache key (unpinned only) and test accuracy."""
        record = self.classifier_record or {}
        return {"feature_space": f"{self.benchmark.classifier_dataset} classifier penultimate layer",
                "classifier_version": record.get("version"), "classifier_sha256": record.get("sha256"),
                "classifier_key": record.get("key"), "classifier_test_accuracy": record.get("test_accuracy")}

    def generator(self, purpose: str) -> torch.Generator:
        """A CPU generator seeded from the run's seed and ``purpose`` (stable across processes)."""
        digest = int(hashlib.sha256(f"{self.seed}:{purpose}".encode()).hexdigest()[:15], 16)
        return torch.Generator().manual_seed(digest)


class Metric(ABC):
    """Base of a registered metric."""

    registered_name: ClassVar[str]
    higher_is_better: ClassVar[bool] = False
    table: ClassVar[str | tuple[str, ...]] = "table4"  # the leaderboard(s) the metric is a column of
    needs: ClassVar[frozenset[str]] = frozenset({NEEDS_SAMPLES})
    #: True when ``compute`` always gives a ``reference``: a finished run's value recorded without
    #: one (evaluated before the metric had it) is evaluated again by ``rescore`` to add it.
    has_reference: ClassVar[bool] = False
    #: False for a metric whose best value is a target rather than an end of its scale (C_T of
    #: ``copying``: about 0 is fresh data, far below copies, far above underfits): the leaderboard
    #: shows its mean and interval without bold or rank letters, and the comparisons test for a
    #: difference ("A higher", "B higher") without calling either side better
    ranked: ClassVar[bool] = True

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        """What this metric needs that the model or benchmark lacks (empty: it applies)."""
        have = set()
        if model.can_sample:
            have.add(NEEDS_SAMPLES)
        if model.can_encode:
            have.add(NEEDS_ENCODER)
        if model.can_reconstruct:
            have.add(NEEDS_RECONSTRUCTION)
        if model.can_decode:
            have.add(NEEDS_DECODER)
        if model.can_encode or model.can_encode_point:
            have.add(NEEDS_ANY_ENCODER)
        if benchmark.spec.kind == "image":
            have.add(NEEDS_IMAGES)
        if benchmark.modes is not None:
            have.add(NEEDS_KNOWN_MODES)
        if benchmark.classifier_dataset is not None:
            have.add(NEEDS_CLASSIFIER)
            if benchmark.n_modes is not None:
                have.add(NEEDS_CLASSIFIED_MODES)
        if benchmark.can_convert_hu:
            have.add(NEEDS_HU)
        return sorted(self.needs - have)

    def uses_classifier(self, benchmark: Benchmark) -> bool:
        """Whether ``compute`` reads the domain classifier on ``benchmark``: the evaluation builds
        the classifier only when an applicable metric says so. By default, when the metric needs
        it; a metric that reads it on some benchmarks and a fixed space on others says which."""
        return NEEDS_CLASSIFIER in self.needs

    @abstractmethod
    def compute(self, ctx: EvalContext) -> MetricResult:
        """Evaluate on the context's samples."""
