"""The contracts between the core and its plugins: what a model, a benchmark and a metric are.

Plugins (the built-in ones in ``gvae_bench.models``, ``gvae_bench.benchmarks`` and
``gvae_bench.metrics``, and outside ones) import these; the core reaches plugins only through the
registry (``gvae_bench.registry``), never by importing them.

The public contract is exactly ``__all__`` below: a plugin imports these names from
``gvae_bench.contracts`` (docs/plugins.md, "Overview", lists them with the few other public names a
plugin may use); the modules behind them may move.
"""

from gvae_bench.contracts.benchmark import (
    BatchTransform, Benchmark, BenchmarkConfig, DataSpec, DataSplits, DrawnDataConfig, binarize,
)
from gvae_bench.contracts.family import NetworkFamily, family_for, register_family
from gvae_bench.contracts.metric import (
    NEEDS_ANY_ENCODER, NEEDS_CLASSIFIED_MODES, NEEDS_CLASSIFIER, NEEDS_DECODER, NEEDS_ENCODER, NEEDS_HU,
    NEEDS_IMAGES, NEEDS_KNOWN_MODES, NEEDS_RECONSTRUCTION, NEEDS_SAMPLES, EvalContext, Metric, MetricResult,
)
from gvae_bench.contracts.model import (
    BatchSource, GaussianEncoderMixin, GenerativeModel, GeneratorMixin, ModelConfig, adam,
)

__all__ = [
    "BatchSource", "BatchTransform", "Benchmark", "BenchmarkConfig", "DataSpec", "DataSplits", "DrawnDataConfig",
    "EvalContext", "GaussianEncoderMixin", "GenerativeModel", "GeneratorMixin", "Metric", "MetricResult",
    "ModelConfig", "NetworkFamily", "NEEDS_ANY_ENCODER", "NEEDS_CLASSIFIED_MODES", "NEEDS_CLASSIFIER",
    "NEEDS_DECODER", "NEEDS_ENCODER", "NEEDS_HU", "NEEDS_IMAGES", "NEEDS_KNOWN_MODES", "NEEDS_RECONSTRUCTION",
    "NEEDS_SAMPLES", "adam", "binarize", "family_for", "register_family",
]
