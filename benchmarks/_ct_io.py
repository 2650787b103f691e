"""One CT reader for DICOM series and NIfTI files, built on SimpleITK (GDCM) and pydicom.

What medical-imaging users check first, and what this reader guarantees:

* values in Hounsfield units: SimpleITK applies RescaleSlope and RescaleIntercept when it reads a
  DICOM series (HU = slope * stored value + intercept); NIfTI CT files are taken as HU already
  (scl_slope/scl_inter applied by the reader);
* slices ordered by ImagePositionPatient along the slice normal (GDCM's ordering), never by file
  name or InstanceNumber;
* voxel spacing from PixelSpacing and the slice positions (DICOM) or from the header (NIfTI), and
  one canonical orientation (LPS, DICOM's patient axes) for both formats;
* a folder holding several series is split by SeriesInstanceUID, each series read on its own and
  the choice logged; uneven slice spacing (a missing or duplicated slice) raises an error naming
  the series; files that are not DICOM images are skipped with a warning naming them; a series
  whose Modality is not CT, or a 4D NIfTI, is refused with a clear error.

Volumes carry geometry only: arrays are (z, y, x), spacing (z, y, x) in mm; no DICOM field that
could identify a patient is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from gvae_bench.errors import UserError

log = logging.getLogger(__name__)

CANONICAL_ORIENTATION = "LPS"
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass
class CTVolume:
    """A CT volume in HU, (z, y, x) float32, with its voxel spacing (z, y, x) in mm.

    ``name`` is a label for logs (the file or folder name), never written into results.
    """

    hu: np.ndarray
    spacing: tuple[float, float, float]
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]


def _to_volume(image: sitk.Image, name: str) -> CTVolume:
    if image.GetDimension() != 3:
        raise UserError(f"{name}: a CT volume must be 3D, got a {image.GetDimension()}D image; pass one 3D volume per file")
    image = sitk.DICOMOrient(image, CANONICAL_ORIENTATION)
    hu = sitk.GetArrayFromImage(image).astype(np.float32)  # (z, y, x)
    sx, sy, sz = image.GetSpacing()
    return CTVolume(hu=hu, spacing=(float(sz), float(sy), float(sx)), name=name)


def read_nifti(path: Path) -> CTVolume:
    """A NIfTI CT file (values in HU), reoriented to LPS."""
    path = Path(path)
    image = sitk.ReadImage(str(path))
    if image.GetDimension() == 4:
        raise UserError(f"{path.name}: a 4D NIfTI (e.g. a time series) is not a CT volume; pass a 3D volume")
    return _to_volume(sitk.Cast(image, sitk.sitkFloat32), path.name)


def _readable_dicom(path: Path) -> pydicom.Dataset | None:
    try:
        header = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # corrupt or not DICOM at all
        log.warning("skipping %s: not a readable DICOM file (%s)", path, type(exc).__name__)
        return None
    if "Rows" not in header or "Columns" not in header:
        log.warning("skipping %s: a DICOM file without an image (no Rows/Columns)", path)
        return None
    return header


def read_dicom_folder(folder: Path, spacing_tolerance: float = 0.01) -> list[CTVolume]:
    """Every CT series in ``folder`` (one level, the layout of a series export), one volume each."""
    folder = Path(folder)
    headers = {p: h for p in sorted(folder.iterdir()) if p.is_file() and (h := _readable_dicom(p)) is not None}
    by_series: dict[str, list[Path]] = {}
    for path, header in headers.items():
        by_series.setdefault(str(header.get("SeriesInstanceUID", "")), []).append(path)
    if len(by_series) > 1:
        log.info("%s holds %d series; each is read as its own volume", folder, len(by_series))
    volumes = []
    for index, (uid, files) in enumerate(sorted(by_series.items())):
        label = f"{folder.name}/series{index}"
        modality = str(headers[files[0]].get("Modality", ""))
        if modality != "CT":
            raise UserError(f"{label}: Modality is {modality or 'missing'}, not CT; the CT benchmarks read CT series only")
        ordered = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) or [str(f) for f in files]
        _check_even_spacing(ordered, label, spacing_tolerance)
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(ordered)
        volumes.append(_to_volume(sitk.Cast(reader.Execute(), sitk.sitkFloat32), label))
    return volumes


def _check_even_spacing(files: list[str], label: str, tolerance: float) -> None:
    """Positions along the slice normal must step evenly; a gap or repeat means a missing or
    duplicated slice."""
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    orientation = np.array(headers[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.sort([float(np.dot(normal, np.array(h.ImagePositionPatient, dtype=float))) for h in headers])
    steps = np.diff(positions)
    if len(steps) == 0:
        return
    median = float(np.median(steps))
    if median <= 0 or np.any(np.abs(steps - median) > tolerance * max(median, 1e-6)):
        raise UserError(
            f"{label}: uneven slice spacing along the slice normal (steps {np.round(steps, 3).tolist()} mm; "
            f"median {median:.3f} mm): a slice is missing or duplicated; fix or remove the series"
        )


def read_ct_folder(root: Path) -> list[CTVolume]:
    """Every NIfTI file and DICOM series under ``root`` (recursively), in a stable order."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"CT data folder {root} does not exist; pass --data-root pointing at a folder of NIfTI files or DICOM series")
    volumes: list[CTVolume] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.endswith(NIFTI_SUFFIXES):
            volumes.append(read_nifti(path))
    dicom_dirs = sorted({p.parent for p in root.rglob("*") if p.is_file() and not p.name.endswith(NIFTI_SUFFIXES)})
    for folder in dicom_dirs:
        volumes.extend(read_dicom_folder(folder))
    if not volumes:
        raise UserError(f"no NIfTI files (*.nii, *.nii.gz) or DICOM series found under {root}")
    return volumes
