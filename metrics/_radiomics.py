"""Radiomic features of CT images (frd-score's FRDv1 extraction through PyRadiomics), and the feature sets of one
evaluation, extracted once: what ``frd`` and, on CT, the novelty metrics (``copying``, ``authenticity``, ``vendi``)
read.

References: [Konz2024] N. Konz, R. Osuala, P. Verma, et al., "FRD (Frechet Radiomic Distance): A Metric Designed
for Medical Image Distribution Comparison in the Age of Deep Learning", arXiv:2412.01496, 2024; the ``frd-score``
package of its authors is version 1 ("FRDv1"). [vanGriethuysen2017] J. J. M. van Griethuysen et al.,
"Computational Radiomics System to Decode the Radiographic Phenotype", Cancer Research 77(21):e104-e107, 2017.

What is extracted (``radiomic_features``; ``metrics/frd.py``'s docstring has the feature list): every image, written
as a float32 NIfTI file with its spacing into a temporary folder (the system's, never the data root; ``frd-score``
reads files), gets the FRDv1 vector, 398 features for a 2D slice and 1014 for a 3D patch. SimpleITK's filters run
on one thread while it does: on two threads the same images gave features that differed in the last bits (up to
1.2e-7) from one thread's, and once between two runs, so the features of a set would not be a function of its images.

Sharing (``radiomic_set``): within one evaluation each sample set (generated, real test, real training; at a given
count) is extracted once and shared by the metrics; the real sets do not depend on the model, so their features are
also kept on disk (``gvae_bench.execution.checkpoints.cache_folder("radiomics")``, one file per content: the SHA-256 of the
images' float32 bytes, their shape, the spacing, the package versions and the thread count) and every model of a benchmark reuses them.
At 0.2-0.7 s an image on one CPU core (64 px slices) that is the difference between extracting a training set once
and once per run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from gvae_bench.atomic import atomic_save
from gvae_bench.execution.checkpoints import UnreadableFileError, cache_folder, safe_load
from gvae_bench.contracts.metric import EvalContext

__all__ = ["INSTALL_HINT", "RadiomicFeatures", "extra_missing", "radiomic_features", "radiomic_set",
           "radiomics_versions"]

log = logging.getLogger(__name__)

#: SimpleITK's thread count during extraction (module docstring); part of the disk cache's key
ITK_THREADS = 1

#: how to get the optional packages the metric needs
INSTALL_HINT = "pip install 'gvae-bench[frd]'"


def extra_missing() -> str | None:
    """None when ``frd-score`` and PyRadiomics import, else what is missing and the command that installs it."""
    try:
        import frd_score.frd  # noqa: F401
        import radiomics.featureextractor  # noqa: F401
    except ImportError as exc:
        return f"the frd extra ({INSTALL_HINT}; {exc.name or exc} does not import)"
    return None


@dataclass
class RadiomicFeatures:
    """Radiomic features of a set of images: ``values`` (n_read, d) float64, one row per image PyRadiomics could
    read, columns named by ``names``; ``failures`` the images it could not, with its reason (a constant image has
    no grey-level range to bin)."""

    values: torch.Tensor
    names: tuple[str, ...]
    failures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many images gave no features."""
        return len(self.failures)


def radiomic_features(images_hu: torch.Tensor, spacing_mm: Sequence[float]) -> RadiomicFeatures:
    """FRDv1 radiomic features (module docstring) of each image, in the image's own units (here HU).

    Args:
        images_hu: (n, 1, H, W) slices or (n, 1, D, H, W) volumes, n >= 1.
        spacing_mm: pixel or voxel size in mm along (x, y) for slices, (x, y, z) for volumes, i.e. (W, H[, D]).

    Returns:
        The features of the images PyRadiomics read, in input order, and how many it could not (each logged).

    Raises:
        ValueError: bad shape, spacing or non-finite values; ImportError: the frd extra is not installed.
    """
    import SimpleITK as sitk
    from frd_score import frd

    images = _spatial(images_hu)
    dims = images.dim() - 1
    if len(spacing_mm) != dims or not all(math.isfinite(s) and s > 0 for s in spacing_mm):
        raise ValueError(f"spacing_mm must hold {dims} positive sizes (x, y{', z' if dims == 3 else ''}) in mm, "
                         f"one per spatial axis of the images; got {tuple(spacing_mm)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images_hu must contain only finite values (found NaN or inf)")
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # its per-image INFO lines and LoG-on-a-slice warnings
    extractor = frd.get_feature_extractor(frd_version=frd.FRD_VERSION_V1, image_dim=dims)
    rows, names, failures = [], None, []
    arrays = images.detach().cpu().numpy().astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="gvae-bench-frd-") as folder, _one_itk_thread():
        for index, array in enumerate(arrays):
            path = Path(folder) / f"{index:06d}.nii.gz"
            image = sitk.GetImageFromArray(array)
            image.SetSpacing(tuple(float(s) for s in spacing_mm))
            sitk.WriteImage(image, str(path))
            try:
                result = frd.process_image_mask_pair((path, None), feature_extractor=extractor,
                                                     frd_version=frd.FRD_VERSION_V1)
            except Exception as exc:  # PyRadiomics raises plain exceptions (ValueError, RuntimeError) per image
                result, reason = None, f"image {index}: {type(exc).__name__}: {exc}"
            else:
                reason = f"image {index}: no region of interest"
            if result is None:
                failures.append(reason)
                log.warning("frd: no radiomic features for %s", reason)
                continue
            if names is None:
                names = tuple(result[1])
            elif tuple(result[1]) != names:
                raise ValueError(f"image {index} gave other radiomic features than the images before it; the "
                                 "images of one set must share their shape and spacing")
            rows.append(result[0])
    values = torch.tensor(rows, dtype=torch.float64) if rows else torch.empty(0, 0, dtype=torch.float64)
    return RadiomicFeatures(values, names or (), failures)


@contextmanager
def _one_itk_thread() -> Iterator[None]:
    """SimpleITK's default thread count set to ``ITK_THREADS`` inside the block, the caller's restored after."""
    import SimpleITK as sitk

    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(ITK_THREADS)
    try:
        yield
    finally:
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)


def _spatial(images: torch.Tensor) -> torch.Tensor:
    """(n, 1, H, W) or (n, 1, D, H, W) ``images`` without their channel axis; other shapes refused."""
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images_hu must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() not in (4, 5) or images.shape[1] != 1 or images.shape[0] == 0:
        raise ValueError("images_hu must be n >= 1 single-channel slices (n, 1, H, W) or volumes (n, 1, D, H, W); "
                         f"got shape {tuple(images.shape)}")
    return images[:, 0]


def radiomics_versions() -> dict[str, str]:
    """Versions of the packages that computed the features."""
    import frd_score
    import radiomics

    return {"frd_score": frd_score.__version__, "radiomics": str(radiomics.__version__)}


def radiomic_set(ctx: EvalContext, which: str, n: int) -> RadiomicFeatures:
    """The radiomic features of ``n`` samples of the evaluation's set ``which`` (``generated``, ``real`` test or
    ``train``, as ``EvalContext`` draws them: the real sets' seeded subsets, all rows when ``n`` reaches their
    size), in HU through the benchmark's window and at its sample spacing; extracted once per evaluation, the real
    sets once per content (module docstring)."""
    images = ctx.samples(which, n)

    def extract() -> RadiomicFeatures:
        hu = ctx.benchmark.to_hu(images)
        spacing = tuple(float(s) for s in ctx.benchmark.sample_spacing_mm())
        if which == "generated":
            return radiomic_features(hu, spacing)
        return _on_disk(hu, spacing)

    return ctx.cached(f"radiomics:{which}:{len(images)}", extract)


def _on_disk(images_hu: torch.Tensor, spacing_mm: tuple[float, ...]) -> RadiomicFeatures:
    """``radiomic_features`` of real images through the disk cache keyed by their content; a cache file that
    cannot be read is made again, one that holds anything but tensors and plain data is refused."""
    contiguous = images_hu.detach().cpu().float().contiguous()
    digest = hashlib.sha256(contiguous.numpy().tobytes())
    digest.update(json.dumps({"shape": list(contiguous.shape), "spacing_mm": list(spacing_mm),
                              "versions": radiomics_versions(), "itk_threads": ITK_THREADS}, sort_keys=True).encode())
    path = cache_folder("radiomics") / f"{digest.hexdigest()[:20]}.pt"
    if path.is_file():
        try:
            stored = safe_load(path)
        except UnreadableFileError as exc:
            log.warning("%s; the radiomic features are extracted again", exc)
        else:
            log.info("radiomic features of %d real images from the cache %s", len(contiguous), path)
            return RadiomicFeatures(stored["values"], tuple(stored["names"]), list(stored["failures"]))
    features = radiomic_features(images_hu, spacing_mm)
    try:
        atomic_save(path, lambda buffer: torch.save({"values": features.values, "names": list(features.names),
                                                     "failures": list(features.failures)}, buffer))
    except OSError as exc:  # a full or read-only cache costs time, never the evaluation
        log.warning("radiomic features not cached at %s (%s: %s)", path, type(exc).__name__, exc)
    return features
