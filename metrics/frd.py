"""Frechet Radiomics Distance (FRD) between generated and real CT images, as pure functions plus a registered wrapper.

References
----------
[Konz2024] N. Konz, R. Osuala, P. Verma, et al., "FRD (Frechet Radiomic Distance): A Metric Designed for Medical
Image Distribution Comparison in the Age of Deep Learning", arXiv:2412.01496, 2024 (Medical Image Analysis, 2026).
The ``frd-score`` package of its authors is version 1 ("FRDv1") of the metric.
[vanGriethuysen2017] J. J. M. van Griethuysen et al., "Computational Radiomics System to Decode the Radiographic
Phenotype", Cancer Research 77(21):e104-e107, 2017 (PyRadiomics, which computes the features).

What is computed
----------------
Every image gets a vector of radiomic features, computed by PyRadiomics with the FRDv1 extraction settings that
``frd-score`` ships (``frd_score/configs/extraction_{2d,3d}.yaml``) and through ``frd-score``'s own per-image function
(``frd_score.frd.process_image_mask_pair``: the whole image as the region of interest, one corner voxel left out):

* images: the original and its wavelet decompositions (4 in 2D: LL, LH, HL, HH; 8 in 3D) and, in 3D, Laplacian of
  Gaussian images at sigma = 2, 3, 4, 5 mm (PyRadiomics skips LoG on a single slice, which it sees as 1 voxel thick);
* on each, 77 features: 18 first-order, 22 GLCM, 16 GLRLM, 16 GLSZM, 5 NGTDM; plus 13 numeric diagnostics (the
  original and resampled image's mean, minimum, maximum; the mask's voxel counts): 398 features for a 2D slice and
  1014 for a 3D patch;
* settings: resampled with B-splines to 2 mm pixels in-plane (2 mm voxels in 3D) from the spacing the image carries,
  intensities normalised per image (z-score times 100, shifted by 300 for the first-order features), grey levels
  binned 5 wide.

Then, with D1 the reference set (the real test images) and D2 the other set (generated or real training images),
as FRDv1 does it: images whose features hold a NaN are dropped; each feature is z-scored with D1's mean and
population standard deviation, ``z = (x - mean_D1) / std_D1``, in both sets; a feature that is not finite in some
row after that (constant in D1) is dropped; and the Frechet distance between Gaussians fitted to the two sets is

    FRD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2})

(``metrics/fid.py``'s ``frechet_distance``: unbiased covariances). ``frd-score``'s ``compute_frd`` reports
``ln FRD`` for v1; both are given (``RadiomicDistance.value`` and ``.log_value``). No pretrained network is involved.

``frd-score`` reads images from files only, so ``radiomic_features`` (``metrics/_radiomics.py``, which also keeps the
real sets' features on disk, keyed by their content) writes each image as a float32 NIfTI file with its spacing
into a temporary folder (the system's, never the data root) that is removed afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gvae_bench.metrics._radiomics import (INSTALL_HINT, RadiomicFeatures, extra_missing, radiomic_features,
                                           radiomic_set, radiomics_versions)
from gvae_bench.functional import as_rows
from gvae_bench.functional.fid import frechet_distance, too_few_for_covariance

__all__ = ["INSTALL_HINT", "RadiomicDistance", "RadiomicFeatures", "extra_missing", "frechet_radiomics_distance",
           "radiomic_features", "radiomic_set"]


@dataclass
class RadiomicDistance:
    """An FRD and what it was computed on: rows and features that entered it, out of those given."""

    value: float
    n_reference: int
    n_other: int
    n_features: int
    n_features_given: int

    @property
    def log_value(self) -> float | None:
        """ln FRD, the number ``frd-score``'s ``compute_frd`` reports for v1 (None at FRD = 0)."""
        return math.log(self.value) if self.value > 0 else None


def frechet_radiomics_distance(reference: torch.Tensor, other: torch.Tensor) -> RadiomicDistance:
    """FRDv1 between two sets of radiomic features, ``reference`` (D1) and ``other`` (D2) (module docstring).

    Rows holding a NaN are dropped from each set; every feature is z-scored with the mean and population standard
    deviation (1/n) of D1's rows, in both sets; features that are then not finite anywhere (constant in D1, or
    infinite) are dropped; the value is ``frechet_distance`` between the z-scored sets (>= 0, 0 for equal sets).

    Args:
        reference: (n_1, d) features of the reference set, n_1 >= 2 rows after dropping NaN rows.
        other: (n_2, d) features of the other set, n_2 >= 2 rows after dropping NaN rows.

    Raises:
        ValueError: fewer than 2 rows left in a set, different feature counts, or no feature left.
    """
    d1, d2 = as_rows(reference, "reference").double(), as_rows(other, "other").double()
    if d1.shape[1] != d2.shape[1]:
        raise ValueError(f"reference and other must have the same features; got {d1.shape[1]} and {d2.shape[1]}")
    d1, d2 = d1[~d1.isnan().any(dim=1)], d2[~d2.isnan().any(dim=1)]
    if len(d1) < 2 or len(d2) < 2:
        raise ValueError(f"need at least 2 images with radiomic features (no NaN) in each set to fit a Gaussian; "
                         f"got {len(d1)} in reference and {len(d2)} in other")
    mean, std = d1.mean(dim=0), d1.std(dim=0, correction=0)
    z1, z2 = (d1 - mean) / std, (d2 - mean) / std
    keep = torch.isfinite(z1).all(dim=0) & torch.isfinite(z2).all(dim=0)
    if not bool(keep.any()):
        raise ValueError(f"none of the {d1.shape[1]} radiomic features varies across the reference set")
    value = frechet_distance(z1[:, keep], z2[:, keep])
    return RadiomicDistance(value, n_reference=len(d1), n_other=len(d2), n_features=int(keep.sum()),
                            n_features_given=d1.shape[1])


# --- registered wrapper -----------------------------------------------------------------------

from gvae_bench.contracts.benchmark import Benchmark  # noqa: E402
from gvae_bench.contracts.metric import (NEEDS_HU, NEEDS_SAMPLES, REAL_TRAIN_VS_TEST, EvalContext, Metric,  # noqa: E402
                                         MetricResult, NotApplicable)
from gvae_bench.contracts.model import GenerativeModel  # noqa: E402
from gvae_bench.registry import METRICS  # noqa: E402


@METRICS.register("frd")
class FrechetRadiomicsDistance(Metric):
    """FRD (Konz et al. 2024) of generated against real test CT images in HU, within the benchmark's window.

    ``frd_samples`` generated images and as many real test images (all of them when the test set is smaller) are
    mapped back to HU through the benchmark's window (values it clipped stay at its edges) and carry the benchmark's
    pixel or voxel spacing. ``reference``: the FRD of as many real training images against the same test images.
    The test images are D1, whose statistics z-score every set, so value and reference share one scale.
    n/a when either set has no more images than radiomic features (``too_few_for_covariance``): their
    covariance would be singular.
    """

    higher_is_better = False
    needs = frozenset({NEEDS_SAMPLES, NEEDS_HU})
    has_reference = True

    def missing(self, model: GenerativeModel, benchmark: Benchmark) -> list[str]:
        """The base class's answer; where the metric would otherwise run, also the frd extra when it is absent."""
        lacking = super().missing(model, benchmark)
        if not lacking and (problem := extra_missing()) is not None:
            lacking.append(problem)
        return lacking

    def compute(self, ctx: EvalContext) -> MetricResult:
        n = ctx.config.frd_samples
        spacing = tuple(ctx.benchmark.sample_spacing_mm())
        sets = {which: radiomic_set(ctx, which, n) for which in ("real", "generated", "train")}
        for which, features in sets.items():
            if len(features.values) < 2:
                raise NotApplicable(f"PyRadiomics read {len(features.values)} of the {which} images (at least 2 "
                                    f"needed): {'; '.join(features.failures[:3])}")
        try:
            fake = frechet_radiomics_distance(sets["real"].values, sets["generated"].values)
            train = frechet_radiomics_distance(sets["real"].values, sets["train"].values)
        except ValueError as exc:  # the features left no Gaussian to fit (NaN rows, no varying feature)
            raise NotApplicable(str(exc)) from exc
        for distance in (fake, train):  # a covariance of fewer rows than features is singular (issue 34 item 8)
            problem = too_few_for_covariance(distance.n_other, distance.n_reference, distance.n_features, "FRD")
            if problem is not None:
                raise NotApplicable(f"{problem} (raise eval.frd_samples above {distance.n_features})")
        floor, ceiling = (float(v) for v in ctx.benchmark.to_hu(torch.tensor([-1.0, 1.0])))
        return MetricResult(fake.value, n_generated=fake.n_other, n_real=fake.n_reference, reference=train.value,
                            details={"reference": REAL_TRAIN_VS_TEST, "n_train": train.n_other,
                                     "log_value": fake.log_value, "log_reference": train.log_value,
                                     "features": fake.n_features, "features_reference": train.n_features,
                                     "features_extracted": fake.n_features_given,
                                     "unreadable_images": {k: v.failed for k, v in sets.items()},
                                     "window_hu": [floor, ceiling], "spacing_mm": list(spacing),
                                     "extraction": "frd-score FRDv1 (PyRadiomics), resampled to 2 mm",
                                     "versions": radiomics_versions()})
