"""The Frechet Radiomics Distance (metrics/frd.py): its normalisation and distance on features with a closed-form
answer, on images (identical sets, smooth against noisy textures), agreement with frd-score's own ``compute_frd``
on the same files, n/a (never a crash) without the extra or on images PyRadiomics cannot read, and a smoke run."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gvae_bench.metrics.frd import (INSTALL_HINT, FrechetRadiomicsDistance, frechet_radiomics_distance,
                                    radiomic_features)
from tests.conftest import invoke_cli


def _images(kind: str, n: int, seed: int, size: int = 32, dims: int = 2) -> torch.Tensor:
    """(n, 1, size, ...) HU images: ``smooth`` (white noise blurred by a 7-tap box, rescaled) or ``noisy`` (white
    noise), both mean 40 HU and standard deviation 60 HU; the two differ in texture, not in their histograms' moments."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, *(size,) * dims, generator=g, dtype=torch.float64)
    if kind == "smooth":
        pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
        x = pool(x, 7, stride=1, padding=3, count_include_pad=False)
    x = (x - x.mean(dim=tuple(range(1, x.dim())), keepdim=True)) / x.std(dim=tuple(range(1, x.dim())), keepdim=True)
    return 40.0 + 60.0 * x


def test_normalisation_and_distance_on_features_with_a_known_answer() -> None:
    # column 0 varies; column 1 is constant in the reference (dropped); the last reference row holds a NaN (dropped)
    reference = torch.tensor([[0.0, 5.0], [2.0, 5.0], [float("nan"), 5.0]])
    other = torch.tensor([[2.0, 1.0], [4.0, 9.0]])
    # z-scored by the reference's mean 1 and population std 1: reference [-1, 1], other [1, 3]; means 0 and 2,
    # unbiased variances 2 and 2: FRD = (0 - 2)^2 + (2 + 2 - 2 sqrt(2 * 2)) = 4
    result = frechet_radiomics_distance(reference, other)
    assert result.value == pytest.approx(4.0, abs=1e-12)
    assert (result.n_reference, result.n_other, result.n_features, result.n_features_given) == (2, 2, 1, 2)
    assert result.log_value == pytest.approx(math.log(4.0))
    assert frechet_radiomics_distance(other, other).value == pytest.approx(0.0, abs=1e-12)


def test_distance_refuses_what_it_cannot_fit() -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        frechet_radiomics_distance(torch.tensor([[1.0, 2.0], [float("nan"), 1.0]]), torch.ones(3, 2))
    with pytest.raises(ValueError, match="same features"):
        frechet_radiomics_distance(torch.ones(3, 2), torch.ones(3, 4))
    with pytest.raises(ValueError, match="varies"):
        frechet_radiomics_distance(torch.ones(3, 2), torch.randn(3, 2))


def test_features_refuse_bad_images_and_spacing() -> None:
    with pytest.raises(ValueError, match="spacing_mm must hold 2"):
        radiomic_features(torch.zeros(2, 1, 8, 8), (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="single-channel"):
        radiomic_features(torch.zeros(2, 3, 8, 8), (1.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        radiomic_features(torch.full((2, 1, 8, 8), float("nan")), (1.0, 1.0))


@pytest.fixture(scope="module")
def textures() -> dict[str, torch.Tensor]:
    """Radiomic features of 5 smooth, 5 other smooth and 5 noisy 32 px slices at 2 mm (no resampling)."""
    sets = {"smooth": _images("smooth", 5, 0), "smooth_again": _images("smooth", 5, 1), "noisy": _images("noisy", 5, 2)}
    features = {name: radiomic_features(images, (2.0, 2.0)) for name, images in sets.items()}
    assert all(f.failed == 0 and f.values.shape == (5, 398) for f in features.values())  # 5 image types x 77 + 13
    return {**{f"{k}_images": v for k, v in sets.items()}, **{k: v.values for k, v in features.items()}}


def test_identical_sets_are_at_zero(textures) -> None:
    again = radiomic_features(textures["smooth_images"], (2.0, 2.0)).values
    assert torch.equal(again, textures["smooth"])  # the extraction is deterministic
    assert frechet_radiomics_distance(textures["smooth"], again).value == pytest.approx(0.0, abs=1e-6)


def test_features_do_not_depend_on_the_callers_itk_threads(textures) -> None:
    import SimpleITK as sitk

    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    try:
        for threads in (2, 1):  # two threads gave other last bits than one before extraction ran on one
            sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(threads)
            again = radiomic_features(textures["smooth_images"], (2.0, 2.0)).values
            assert torch.equal(again, textures["smooth"])
            assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == threads  # the caller's setting is kept
    finally:
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)


def test_noisy_textures_are_far_from_smooth_ones(textures) -> None:
    same_kind = frechet_radiomics_distance(textures["smooth"], textures["smooth_again"]).value
    other_kind = frechet_radiomics_distance(textures["smooth"], textures["noisy"]).value
    assert other_kind > 100 * same_kind > 0


def _write(images: torch.Tensor, folder: Path, spacing: tuple[float, ...]) -> str:
    import SimpleITK as sitk

    folder.mkdir()
    for index, array in enumerate(images[:, 0].numpy().astype(np.float32)):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing)
        sitk.WriteImage(image, str(folder / f"{index:03d}.nii.gz"))
    return str(folder)


@pytest.mark.parametrize("dims", [2, 3])
def test_agrees_with_frd_score_compute_frd_on_the_same_files(dims: int, textures, tmp_path: Path) -> None:
    from frd_score import compute_frd

    if dims == 2:
        spacing, first, second = (2.0, 2.0), textures["smooth_images"], textures["noisy_images"]
        mine = frechet_radiomics_distance(textures["smooth"], textures["noisy"])
    else:
        spacing, first, second = (2.0, 2.0, 2.0), _images("smooth", 2, 3, 16, 3), _images("noisy", 2, 4, 16, 3)
        a, b = radiomic_features(first, spacing).values, radiomic_features(second, spacing).values
        assert a.shape == (2, 1014)  # 13 image types (original, 4 LoG, 8 wavelet) x 77 + 13
        mine = frechet_radiomics_distance(a, b)
    # the package's v1: D1 (the first path) z-scores both sets, and it returns ln FRD
    theirs = compute_frd([_write(first, tmp_path / "a", spacing), _write(second, tmp_path / "b", spacing)],
                         num_workers=1)
    assert mine.log_value == pytest.approx(float(theirs), rel=1e-5)


def _vae_for(benchmark):
    from gvae_bench.models.vae import VAE, VAEConfig

    torch.manual_seed(0)
    return VAE(VAEConfig(width=4, latent_dim=8), benchmark.spec)  # untrained: the metric only needs samples


@pytest.fixture(scope="module")
def ct_slices():
    from tests.conftest import _data_root
    from gvae_bench.benchmarks.ct import CTFolder

    root = _data_root() / "CT"
    if not any(root.glob("*.nii*")):
        pytest.skip(f"no CT volume under {root}; set GVAE_BENCH_DATA to a folder holding CT/*.nii.gz")
    return CTFolder(root)


def test_without_the_extra_it_is_na_with_the_install_command(monkeypatch, ct_slices) -> None:
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig

    model = _vae_for(ct_slices)
    assert FrechetRadiomicsDistance().missing(model, ct_slices) == []
    monkeypatch.setitem(sys.modules, "frd_score", None)  # import frd_score now raises ImportError
    monkeypatch.setitem(sys.modules, "frd_score.frd", None)
    lacking = FrechetRadiomicsDistance().missing(model, ct_slices)
    assert len(lacking) == 1 and INSTALL_HINT in lacking[0]
    entry = evaluate(model, ct_slices, ct_slices.load(), EvalConfig(n_samples=4, frd_samples=4), seed=0,
                     only={"frd"})["frd"]
    assert entry["value"] is None and "pip install 'gvae-bench[frd]'" in entry["na"]


def test_constant_generated_images_are_na_not_a_crash(ct_slices) -> None:
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig

    model = _vae_for(ct_slices)
    model.sample_in_batches = lambda n, batch_size=1000: torch.full((n, 1, 64, 64), -1.0)  # all at the window floor
    entry = evaluate(model, ct_slices, ct_slices.load(), EvalConfig(n_samples=4, frd_samples=3), seed=0,
                     only={"frd"})["frd"]
    assert entry["value"] is None and "PyRadiomics read 0 of the generated images" in entry["na"]


def test_smoke_run_on_ct_slices_records_frd_as_na_below_the_feature_count(tmp_path: Path, data_root: Path) -> None:
    """The smoke profile's 3 images per set are far fewer than the ~400 radiomic features: a singular covariance,
    so the cell is n/a with that reason (issue 34 item 8), not a number."""
    out = tmp_path / "results"
    result = invoke_cli("--models", "vae", "--dataset", "ct_folder", "--profile", "smoke", "--data-root",
                        str(data_root / "CT"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    [record_file] = out.glob("runs/ct_folder/vae/*/seed0/record.json")
    record = json.loads(record_file.read_text())
    frd = record["metrics"]["frd"]
    assert frd["value"] is None and frd["higher_is_better"] is False
    assert "FRD fits a" in frd["na"] and "got 3 and 3 samples" in frd["na"] and "eval.frd_samples" in frd["na"]


def _context_with_radiomic_rows(monkeypatch, ct_slices, n: int, d: int):
    """An evaluation context whose three radiomic sets are ``n`` Gaussian rows of ``d`` features (no PyRadiomics):
    real and train N(0, I), generated N(1, I) (every feature's mean shifted by 1)."""
    import gvae_bench.metrics.frd as frd_module
    from gvae_bench.contracts.metric import EvalContext
    from gvae_bench.profiles import EvalConfig

    def fake_set(ctx, which, count):
        g = torch.Generator().manual_seed({"real": 0, "train": 1, "generated": 2}[which])
        rows = torch.randn(n, d, generator=g, dtype=torch.float64) + (1.0 if which == "generated" else 0.0)
        return frd_module.RadiomicFeatures(rows, tuple(f"f{i}" for i in range(d)))

    monkeypatch.setattr(frd_module, "radiomic_set", fake_set)
    monkeypatch.setattr(frd_module, "radiomics_versions", lambda: {})
    return EvalContext(model=None, benchmark=ct_slices, splits=None, config=EvalConfig(frd_samples=n), seed=0)


def test_registered_frd_needs_more_images_than_features(monkeypatch, ct_slices) -> None:
    """n <= d features: n/a with the counts; n > d: the Frechet distance of the z-scored sets, which for a mean
    shift of 1 in each of d unit-variance features is about d (||mu_1 - mu_2||^2 = d, equal covariances)."""
    from gvae_bench.contracts.metric import NotApplicable

    with pytest.raises(NotApplicable, match=r"got 10 and 10 samples for 10 features"):
        FrechetRadiomicsDistance().compute(_context_with_radiomic_rows(monkeypatch, ct_slices, n=10, d=10))
    result = FrechetRadiomicsDistance().compute(_context_with_radiomic_rows(monkeypatch, ct_slices, n=2000, d=10))
    assert result.n_generated == result.n_real == 2000 and result.details["features"] == 10
    assert result.value == pytest.approx(10.0, rel=0.05) and result.reference < 0.1
