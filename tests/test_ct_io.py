"""The CT reader on DICOM series written here with pydicom (known HU, order and geometry, and each
bad case) and on the shared real NIfTI volume."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from gvae_bench.benchmarks._ct_io import read_ct_folder, read_dicom_folder, read_nifti
from gvae_bench.errors import UserError

SLOPE, INTERCEPT = 2.0, -1024.0
PIXEL_SPACING, SLICE_STEP = 0.7, 2.5


def _stored(k: int) -> np.ndarray:
    """Stored values of slice k: a ramp plus 100 * k, so HU tell the slice apart."""
    return (np.arange(48, dtype=np.int16).reshape(6, 8) + 100 * k).astype(np.int16)


def write_series(folder: Path, n: int = 5, modality: str = "CT", skip: int | None = None, seed: int = 0) -> str:
    """A CT series whose file names and InstanceNumbers are shuffled against the slice positions."""
    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    rng = random.Random(seed)
    instance_numbers = list(range(1, n + 1))
    rng.shuffle(instance_numbers)
    for k in range(n):
        if k == skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = modality, series, study
        ds.PatientName, ds.PatientID = "Doe^Jane", "SECRET-123"
        ds.InstanceNumber = instance_numbers[k]
        ds.ImagePositionPatient = [-10.0, -20.0, 30.0 + SLICE_STEP * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [PIXEL_SPACING, PIXEL_SPACING]
        ds.SliceThickness = SLICE_STEP
        ds.RescaleSlope, ds.RescaleIntercept = SLOPE, INTERCEPT
        ds.Rows, ds.Columns = 6, 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = _stored(k).tobytes()
        ds.save_as(folder / f"img_{rng.randrange(10**6):06d}_{k}.dcm", enforce_file_format=True)
    return series


def test_dicom_series_comes_back_in_hu_in_position_order_with_its_spacing(tmp_path):
    write_series(tmp_path / "series")
    (volume,) = read_dicom_folder(tmp_path / "series")
    assert volume.shape == (5, 6, 8)
    assert volume.spacing == pytest.approx((SLICE_STEP, PIXEL_SPACING, PIXEL_SPACING))
    for k in range(5):  # LPS: index 0 is the most inferior slice
        np.testing.assert_allclose(volume.hu[k], SLOPE * _stored(k) + INTERCEPT)
    assert "Doe" not in repr(volume) and "SECRET" not in repr(volume)


def test_two_series_in_one_folder_are_told_apart(tmp_path, caplog):
    write_series(tmp_path / "mixed", n=5, seed=1)
    write_series(tmp_path / "mixed", n=3, seed=2)
    with caplog.at_level(logging.INFO):
        volumes = read_dicom_folder(tmp_path / "mixed")
    assert sorted(v.shape[0] for v in volumes) == [3, 5]
    assert "holds 2 series" in caplog.text


def test_missing_slice_is_reported(tmp_path):
    write_series(tmp_path / "gap", n=6, skip=3)
    with pytest.raises(UserError, match="uneven slice spacing"):
        read_dicom_folder(tmp_path / "gap")


def test_non_ct_modality_is_refused(tmp_path):
    write_series(tmp_path / "mr", modality="MR")
    with pytest.raises(UserError, match="Modality is MR, not CT"):
        read_dicom_folder(tmp_path / "mr")


def test_corrupt_file_is_skipped_with_a_warning_naming_it(tmp_path, caplog):
    write_series(tmp_path / "series")
    (tmp_path / "series" / "broken.dcm").write_bytes(b"not a dicom file at all")
    with caplog.at_level(logging.WARNING):
        (volume,) = read_dicom_folder(tmp_path / "series")
    assert volume.shape == (5, 6, 8) and "broken.dcm" in caplog.text


def test_shared_nifti_volume_has_its_spacing_and_plausible_hu(data_root):
    volume = read_nifti(data_root / "CT" / "promed-ct-0051.nii.gz")
    assert sorted(volume.shape) == [108, 256, 256]
    assert sorted(volume.spacing) == pytest.approx([0.957, 0.957, 1.5], abs=1e-3)
    assert volume.hu.min() <= -950  # air
    assert np.percentile(volume.hu, 99.9) > 300  # bone


def test_4d_nifti_is_refused(tmp_path):
    path = tmp_path / "series4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), dtype=np.int16), np.eye(4)), path)
    with pytest.raises(UserError, match="4D NIfTI"):
        read_nifti(path)


def test_ct_folder_reads_nifti_and_dicom_together(tmp_path):
    write_series(tmp_path / "patient_a" / "ct")
    nib.save(nib.Nifti1Image(np.full((5, 4, 3), -1000, dtype=np.int16), np.diag([0.8, 0.8, 2.0, 1.0])),
             tmp_path / "patient_b.nii.gz")
    volumes = read_ct_folder(tmp_path)
    assert sorted(v.shape for v in volumes) == [(3, 4, 5), (5, 6, 8)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no NIfTI files"):
        read_ct_folder(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        read_ct_folder(tmp_path / "missing")
