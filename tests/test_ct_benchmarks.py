"""CT benchmarks end to end: every model on the shared real volume in 2D and 3D (smoke), the
Pancreas-CT layouts, the split by patient and the preprocessing cache."""

from __future__ import annotations

import json

import pytest
import torch

from gvae_bench.benchmarks.ct import CTConfig, CTFolder, PancreasCT
from tests.conftest import invoke_cli
from tests.test_ct_io import write_series

MODELS = "vae,wgan_gp,gvae,vae_gan,alpha_gan"


def test_every_model_trains_on_ct_slices_and_patches(tmp_path, data_root):
    out = tmp_path / "results"
    for extra in ((), ("--set", "benchmark.mode=3d", "--set", "benchmark.size=16", "--set", "benchmark.patches_per_volume=16")):
        result = invoke_cli("--models", MODELS, "--dataset", "ct_folder", "--profile", "smoke",
                            "--data-root", str(data_root / "CT"), "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in out.glob("runs/ct_folder/*/*/seed0/record.json")]
    assert len(records) == 10 and all(r["status"] == "finished" for r in records)
    families = {(r["model"], r["config"]["network_family"]) for r in records}
    assert families == {(m, f) for m in MODELS.split(",") for f in ("resnet", "conv3d")}
    for record in records:
        assert record["metrics"]["mmd"]["value"] is not None
        assert record["data"]["split"]["kind"].startswith("single volume")  # the split is in the run record
        assert 0 <= record["metrics"]["hu_wasserstein"]["value"] <= 400  # within the 400 HU window
        assert 0 <= record["metrics"]["tissue_tv"]["value"] <= 1
        # the reference row: real training images against real test images, on the same scales
        assert 0 <= record["metrics"]["hu_wasserstein"]["reference"] <= 400
        assert 0 <= record["metrics"]["tissue_tv"]["reference"] <= 1
        assert 0 <= record["metrics"]["ms_ssim"]["value"] <= 1  # 2D on slices, 3D on volumes
    assert (out / "leaderboards" / "ct_folder" / "table4.md").is_file()


def test_window_maps_hu_to_minus_one_one_and_back():
    cfg = CTConfig()
    hu = torch.tensor([-2000.0, -160.0, 40.0, 240.0, 3000.0])
    windowed = torch.from_numpy(cfg.window(hu.numpy()))
    assert windowed.tolist() == [-1.0, -1.0, 0.0, 1.0, 1.0]
    assert cfg.unwindow(windowed).tolist() == [-160.0, -160.0, 40.0, 240.0, 240.0]


def test_shared_volume_split_is_by_slab_and_cached_outside_the_data_root(data_root):
    first = CTFolder(data_root / "CT").load()
    again = CTFolder(data_root / "CT").load()
    assert first.info["split"]["kind"].startswith("single volume") and again.info["cache"] == "hit"
    assert first.train.shape[1:] == (1, 64, 64) and torch.equal(first.train, again.train)
    assert first.train.min() >= -1 and first.train.max() <= 1
    assert not any(data_root.rglob("*.pt"))  # the cache is never inside the data root


def test_pancreas_ct_missing_names_both_layouts(tmp_path):
    result = invoke_cli("--models", "vae", "--dataset", "pancreas_ct", "--profile", "smoke", "--data-root", str(tmp_path),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Pancreas-CT" in result.stderr and "Task07_Pancreas" in result.stderr and "NBIA" in result.stderr


def test_pancreas_ct_in_the_tcia_layout_splits_by_patient(tmp_path):
    for patient in range(4):
        write_series(tmp_path / "Pancreas-CT" / f"PANCREAS_{patient + 1:04d}" / "study" / "series", n=8, seed=patient)
    splits = PancreasCT(tmp_path, CTConfig(min_body_fraction=0.0, test_fraction=0.25)).load()
    split = splits.info["split"]
    assert split["kind"] == "by patient (volume)"
    assert len(split["test_volumes"]) == 1 and len(split["train_volumes"]) == 3
    assert not set(split["test_volumes"]) & set(split["train_volumes"])
    assert len(splits.train) == 24 and len(splits.test) == 8  # 8 slices per patient, never mixed
    assert "PANCREAS" not in json.dumps(splits.info)  # geometry only, no names


def test_exported_nifti_opens_with_the_training_spacing(tmp_path, data_root):
    import nibabel as nib

    out = tmp_path / "results"
    args = ("--models", "vae", "--dataset", "ct_folder", "--profile", "smoke", "--data-root", str(data_root / "CT"),
            "--out", str(out), "--set", "benchmark.mode=3d", "--set", "benchmark.size=16",
            "--set", "benchmark.patches_per_volume=16", "--set", "benchmark.spacing_mm=2.0")
    assert invoke_cli(*args).returncode == 0
    run_dir = next(out.glob("runs/ct_folder/vae/*/seed0"))
    result = invoke_cli("export-nifti", str(run_dir), "-n", "2", "--data-root", str(data_root / "CT"))
    assert result.returncode == 0, result.stderr
    paths = sorted((run_dir / "nifti").glob("*.nii.gz"))
    assert len(paths) == 2
    image = nib.load(paths[0])
    assert image.shape == (16, 16, 16)
    assert image.header.get_zooms() == pytest.approx((2.0, 2.0, 2.0))
    data = image.get_fdata()
    assert -160.0 - 1e-3 <= data.min() and data.max() <= 240.0 + 1e-3  # HU inside the abdominal window


def _write_decathlon_volume(path, seed: int) -> None:
    """A 48^3 abdomen-like NIfTI at 1 mm: air outside a soft-tissue cylinder with a fat rim and a bone spot."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:48, :48, :48]
    radius = np.hypot(y - 24, x - 24)
    hu = np.full((48, 48, 48), -1000.0)
    hu[radius < 20] = -100.0  # fat
    hu[radius < 16] = 40.0  # soft tissue
    hu[(np.hypot(y - 30, x - 24) < 3)] = 700.0  # bone
    hu += rng.normal(0, 10, hu.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(hu.astype(np.int16).transpose(2, 1, 0), np.diag([1.0, 1.0, 1.0, 1.0])), path)


@pytest.mark.slow
def test_every_model_trains_on_pancreas_ct_slices_and_patches(tmp_path):
    for patient in range(4):
        _write_decathlon_volume(tmp_path / "Task07_Pancreas" / "imagesTr" / f"pancreas_{patient:03d}.nii.gz", patient)
    out = tmp_path / "results"
    for extra in ((), ("--set", "benchmark.mode=3d", "--set", "benchmark.size=16", "--set", "benchmark.patches_per_volume=8")):
        result = invoke_cli("--models", MODELS, "--dataset", "pancreas_ct", "--profile", "smoke", "--data-root", str(tmp_path),
                            "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in out.glob("runs/pancreas_ct/*/*/seed0/record.json")]
    assert len(records) == 10 and all(r["status"] == "finished" for r in records)
    assert {(r["model"], r["config"]["network_family"]) for r in records} == {
        (m, f) for m in MODELS.split(",") for f in ("resnet", "conv3d")}
    for record in records:
        assert 0 <= record["metrics"]["hu_wasserstein"]["value"] <= 400
        assert record["data"]["split"]["kind"] == "by patient (volume)"
