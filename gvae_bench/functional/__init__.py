"""The metrics of gvae-bench as plain functions on tensors: one function per metric, each documented with its
formula and its paper, each tested against an independent reference (tests/test_*.py, tests/test_functional.py).

The registered ``Metric`` classes (``gvae_bench/metrics``) are thin adapters over these functions: they fetch the
samples of a run from its ``EvalContext`` and call them; ``gvae_bench.score`` calls them on two sets of images.

=====================  ==========================================  ============================================
function               what                                        paper
=====================  ==========================================  ============================================
``mmd2``               unbiased MMD^2, Gaussian kernel, the        Gretton et al. 2012, JMLR 13
                       harness's bandwidth rule (``harness_
                       bandwidth``)
``ms_ssim``,           MS-SSIM of image pairs; mean over random    Wang et al. 2003; Odena et al. 2017
``ms_ssim_diversity``  pairs of one set (diversity)
``frechet_distance``   FID on given features                       Heusel et al. 2017; Dowson and Landau 1982
``kernel_inception_    KID: subset-averaged unbiased cubic-kernel  Binkowski et al. 2018
distance``             MMD^2 on given features
``precision_recall``   k-NN precision and recall                   Kynkaanniemi et al. 2019
``density_coverage``   density and coverage                        Naeem et al. 2020
``vendi_score``        effective number of distinct samples        Friedman and Dieng 2023
``copying_statistic``  data-copying C_T                            Meehan et al. 2020
``authenticity``       share of samples that are not copies        Alaa et al. 2022
``domain_features``    the domain classifier's features            (the harness's own pinned classifiers)
=====================  ==========================================  ============================================

Importing this package imports torch; ``import gvae_bench`` alone does not.
"""

from __future__ import annotations

from gvae_bench.functional._rows import as_rows
from gvae_bench.functional.authenticity import authentic, authenticity
from gvae_bench.functional.copying import CopyingResult, c_t_statistic, copying_statistic, mann_whitney_z
from gvae_bench.functional.features import domain_classifier, domain_features, read_channel_groups
from gvae_bench.functional.fid import frechet_distance, too_few_for_covariance
from gvae_bench.functional.kid import kernel_inception_distance
from gvae_bench.functional.mmd import (gaussian_kernel_mmd2_unbiased, harness_bandwidth, median_heuristic_bandwidth,
                                       mmd2)
from gvae_bench.functional.ms_ssim import mean_pairwise_ms_ssim, ms_ssim, ms_ssim_diversity
from gvae_bench.functional.ms_ssim_settings import MSSSIMSettings, settings_for
from gvae_bench.functional.prdc import density_coverage, precision_recall
from gvae_bench.functional.vendi import vendi_score

__all__ = [
    "CopyingResult", "MSSSIMSettings", "as_rows", "authentic", "authenticity", "c_t_statistic", "copying_statistic",
    "density_coverage", "domain_classifier", "domain_features", "frechet_distance", "gaussian_kernel_mmd2_unbiased",
    "harness_bandwidth", "kernel_inception_distance", "mann_whitney_z", "mean_pairwise_ms_ssim",
    "median_heuristic_bandwidth", "mmd2", "ms_ssim", "ms_ssim_diversity", "precision_recall", "read_channel_groups",
    "settings_for", "too_few_for_covariance", "vendi_score",
]
