"""The registered ``mmd`` metric: unbiased squared MMD with a Gaussian kernel (Gretton et al. 2012), a thin adapter
over ``gvae_bench.functional.mmd``, where the estimator, the kernel and the bandwidth rule are defined."""

from __future__ import annotations

import torch

from gvae_bench.contracts.metric import NEEDS_SAMPLES, REAL_TRAIN_VS_TEST, EvalContext, Metric, MetricResult
from gvae_bench.functional.mmd import (BANDWIDTH_SEED, gaussian_kernel_mmd2_unbiased, harness_bandwidth,
                                       median_heuristic_bandwidth)
from gvae_bench.registry import METRICS

__all__ = ["BANDWIDTH_SEED", "MMD", "gaussian_kernel_mmd2_unbiased", "median_heuristic_bandwidth"]


@METRICS.register("mmd")
class MMD(Metric):
    """Squared MMD, Gaussian kernel, median-heuristic bandwidth on real test data, unbiased (Gretton et al. 2012).

    ``n_samples`` generated samples against as many real test samples (flattened, in the data's
    range). The bandwidth h is the median squared distance between 1000 test samples drawn with a
    fixed seed, the same for every model and every run of a benchmark (``harness_bandwidth`` of the
    whole test split). ``reference`` is the same estimator between as many real training samples
    and the test samples: the score of a model that reproduces the training distribution exactly.
    """

    higher_is_better = False
    needs = frozenset({NEEDS_SAMPLES})

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.n_samples
        real = ctx.real_test(n).flatten(1)
        fake = ctx.generated(n).flatten(1)
        bandwidth = harness_bandwidth(ctx.splits.test)
        block = ctx.config.mmd_block_size
        value = gaussian_kernel_mmd2_unbiased(fake, real, bandwidth, block)
        train = ctx.splits.train
        order = torch.randperm(len(train), generator=ctx.generator("mmd_reference"))[: len(real)]
        reference = gaussian_kernel_mmd2_unbiased(train[order].flatten(1), real, bandwidth, block)
        return MetricResult(value, n_generated=len(fake), n_real=len(real), reference=reference,
                            details={"bandwidth": bandwidth, "kernel": "exp(-||a-b||^2 / h)",
                                     "bandwidth_rule": "median squared distance, 1000 real test samples, seed 0",
                                     "estimator": "unbiased MMD^2_u", "reference": REAL_TRAIN_VS_TEST})
