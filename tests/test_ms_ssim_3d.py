"""Known-answer tests for 3-D MS-SSIM on volumes (gvae_bench/functional/ms_ssim.py with (N, C, D, H, W) input).

References checked against:
* a float64 brute-force reference written here: at every valid voxel the SSIM statistics are explicit weighted sums
  over the full k x k x k Gaussian window (no separable filtering, no convolution), and 2x2x2 pooling is a reshape
  and a block mean;
* MONAI's ``compute_ms_ssim`` and ``MultiScaleSSIMMetric`` with ``spatial_dims=3`` (a non-separable conv3d with an
  outer-product kernel; float32), with matched taps, sigma and weights;
* the 2-D implementation itself: a volume that is constant along depth has the MS-SSIM of its 2-D slice;
* the registered metric end to end on the ``ct_folder`` benchmark in 3-D mode (16^3 patches of the shared head CT).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from gvae_bench.contracts.benchmark import Benchmark, DataSpec, DataSplits
from gvae_bench.functional.ms_ssim import (
    STANDARD_MS_SSIM_BETAS,
    MSSSIMSettings,
    mean_pairwise_ms_ssim,
    ms_ssim,
)
from gvae_bench.metrics.ms_ssim import MSSSIM, SMALL_IMAGE_SETTINGS, settings_for
from tests.conftest import _data_root

THREE = SMALL_IMAGE_SETTINGS  # 3 scales, 7 taps, sigma 1.5: 28^3 .. 175^3 volumes (and 32^3, 64^3 CT patches)
TWO = settings_for(16)  # 2 scales, 7 taps, sigma 1.5: 14^3 .. 27^3 volumes (16^3 CT patches)


# ---------------------------------------------------------------- helpers


def _smooth_volumes(n: int, channels: int, shape: tuple[int, int, int], seed: int, sigma: float = 1.5) -> torch.Tensor:
    """Blurred noise rescaled to [0, 1] per volume (float64): smooth, structured content."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((n, channels, *shape)), sigma=(0, 0, sigma, sigma, sigma), mode="reflect")
    lo = x.min(axis=(1, 2, 3, 4), keepdims=True)
    hi = x.max(axis=(1, 2, 3, 4), keepdims=True)
    return torch.from_numpy((x - lo) / (hi - lo))


def _pair(n: int, channels: int, shape: tuple[int, int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two related but different volume batches: smooth content and a noisy, shifted copy."""
    a = _smooth_volumes(n, channels, shape, seed)
    noise = torch.from_numpy(np.random.default_rng(seed + 1).random(a.shape))
    b = (0.7 * torch.roll(a, shifts=(1, 0, -1), dims=(2, 3, 4)) + 0.3 * noise).clamp(0, 1)
    return a, b


def _brute_force_ms_ssim(a: np.ndarray, b: np.ndarray, settings: MSSSIMSettings) -> np.ndarray:
    """Float64 3-D MS-SSIM by explicit window sums.

    For every valid window position p (a k x k x k block fully inside the volume) and channel:
    mu_a(p) = sum_q W(q) a(p + q) with the full 3-D window W(q) = g(q_z) g(q_y) g(q_x) / (sum g)^3,
    g(t) = exp(-t^2 / (2 sigma^2)); likewise for b, a^2, b^2, ab. Then the SSIM formulas of Wang et al. 2004
    (K1 = 0.01, K2 = 0.03), means over channels and positions, 2x2x2 block means between scales (odd sides
    floored), and the relu-normalised weighted product of Wang et al. 2003.
    """
    k, sigma = settings.kernel_size, settings.sigma
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    window = g[:, None, None] * g[None, :, None] * g[None, None, :]
    window /= window.sum()
    c1, c2 = (0.01 * settings.data_range) ** 2, (0.03 * settings.data_range) ** 2

    def local_mean(x: np.ndarray) -> np.ndarray:
        blocks = sliding_window_view(x, (k, k, k), axis=(2, 3, 4))  # (N, C, D', H', W', k, k, k)
        return np.einsum("ncdhwijl,ijl->ncdhw", blocks, window)

    def pool(x: np.ndarray) -> np.ndarray:
        n, c, d, h, w = x.shape
        x = x[:, :, : d // 2 * 2, : h // 2 * 2, : w // 2 * 2]
        return x.reshape(n, c, d // 2, 2, h // 2, 2, w // 2, 2).mean(axis=(3, 5, 7))

    result = np.ones(a.shape[0])
    for j, beta in enumerate(settings.betas):
        mu_a, mu_b = local_mean(a), local_mean(b)
        var_a = np.maximum(local_mean(a * a) - mu_a**2, 0.0)
        var_b = np.maximum(local_mean(b * b) - mu_b**2, 0.0)
        cov = local_mean(a * b) - mu_a * mu_b
        cs = (2 * cov + c2) / (var_a + var_b + c2)
        if j == settings.num_scales - 1:
            lum = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
            value = (lum * cs).reshape(a.shape[0], -1).mean(axis=1)
        else:
            value = cs.reshape(a.shape[0], -1).mean(axis=1)
            a, b = pool(a), pool(b)
        result *= np.maximum(value, 0.0) ** beta
    return result


# ---------------------------------------------------------------- settings per volume size


def test_settings_rule_for_volume_sides() -> None:
    assert settings_for(64) is THREE and settings_for(32) is THREE and settings_for(28) is THREE
    for side in (14, 16, 27):
        s = settings_for(side)
        assert (s.num_scales, s.kernel_size, s.sigma) == (2, 7, 1.5)
        first2 = STANDARD_MS_SSIM_BETAS[:2]
        assert s.betas == pytest.approx(tuple(b / sum(first2) for b in first2), rel=1e-15)
    for side in (7, 13):
        assert settings_for(side).betas == (1.0,) and settings_for(side).kernel_size == 7
    assert settings_for(6) is None and settings_for(1) is None
    assert settings_for(176).num_scales == 5 and settings_for(176).kernel_size == 11
    for side in range(7, 200):  # the chosen setting always fits, and one more scale of it would not (below 176)
        s = settings_for(side)
        assert side >= s.min_image_size()
        if s.kernel_size == 7 and s.num_scales < 3:
            assert side < 7 * 2**s.num_scales


# ---------------------------------------------------------------- (a) identical volumes


def test_identical_volumes_give_one() -> None:
    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.rand(3, 1, 16, 16, 16, generator=g), TWO),
        (_smooth_volumes(2, 2, (28, 30, 29), seed=1).float(), THREE),
        (torch.full((2, 1, 16, 16, 16), 0.5), TWO),
        (torch.rand(2, 1, 9, 8, 7, generator=g), settings_for(7)),
    ]
    for x, settings in cases:
        out = ms_ssim(x, x.clone(), settings)
        assert out.shape == (x.shape[0],) and out.dtype == torch.float32
        torch.testing.assert_close(out, torch.ones_like(out), atol=1e-5, rtol=0)
        out64 = ms_ssim(x.double(), x.double(), settings)
        torch.testing.assert_close(out64, torch.ones_like(out64), atol=1e-12, rtol=0)


# ---------------------------------------------------------------- (b) brute-force float64 reference


@pytest.mark.parametrize(
    "shape,settings",
    [
        ((16, 16, 16), TWO),  # the 16^3 CT patch setting
        ((15, 17, 14), TWO),  # anisotropic, odd sides floored by the pooling
        ((28, 28, 28), THREE),  # the 32^3 / 64^3 setting at its smallest size
        ((9, 10, 8), MSSSIMSettings(kernel_size=7, sigma=1.5, betas=(1.0,))),  # single-scale SSIM
        ((20, 20, 20), MSSSIMSettings(kernel_size=5, sigma=0.8, betas=(0.3, 0.7))),  # other taps and sigma
    ],
)
def test_matches_brute_force_reference(shape: tuple[int, int, int], settings: MSSSIMSettings) -> None:
    channels = 2 if shape[0] < 20 else 1
    a, b = _pair(3, channels, shape, seed=sum(shape))
    noise_a = torch.from_numpy(np.random.default_rng(5).random((3, channels, *shape)))
    noise_b = 0.5 * noise_a + 0.5 * torch.from_numpy(np.random.default_rng(6).random((3, channels, *shape)))
    for x, y in ((a, b), (noise_a, noise_b)):
        expected = _brute_force_ms_ssim(x.numpy(), y.numpy(), settings)
        assert 0.05 < expected.min() and expected.max() < 0.99  # non-trivial values, not clamped
        got64 = ms_ssim(x, y, settings)
        np.testing.assert_allclose(got64.numpy(), expected, rtol=1e-10, atol=1e-12)
        got32 = ms_ssim(x.float(), y.float(), settings)
        assert got32.dtype == torch.float32
        np.testing.assert_allclose(got32.double().numpy(), expected, rtol=0, atol=1e-4)


def test_volume_constant_along_depth_has_the_ms_ssim_of_its_slice() -> None:
    """One code path: if a(z, y, x) = f(y, x) for every z, the depth filter and depth pooling leave f's 2-D
    statistics unchanged and every valid depth position repeats them, so 3-D MS-SSIM = 2-D MS-SSIM of the slice."""
    g = torch.Generator().manual_seed(3)
    f = torch.rand(4, 2, 30, 28, generator=g, dtype=torch.float64)
    h = (0.6 * f + 0.4 * torch.rand(4, 2, 30, 28, generator=g, dtype=torch.float64))
    a = f.unsqueeze(2).expand(4, 2, 28, 30, 28).contiguous()
    b = h.unsqueeze(2).expand(4, 2, 28, 30, 28).contiguous()
    torch.testing.assert_close(ms_ssim(a, b, THREE), ms_ssim(f, h, THREE), atol=1e-12, rtol=0)


# ---------------------------------------------------------------- (c) MONAI


MONAI_CASES = [((16, 16, 16), TWO), ((32, 32, 32), THREE), ((30, 28, 29), THREE)]


def _monai_kwargs(settings: MSSSIMSettings) -> dict:
    return dict(spatial_dims=3, data_range=settings.data_range, kernel_type="gaussian",
                kernel_size=settings.kernel_size, kernel_sigma=settings.sigma, weights=settings.betas)


def _monai_inputs(shape: tuple[int, int, int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    a, b = _pair(4, 1, shape, seed=7)
    noise_a = torch.from_numpy(np.random.default_rng(8).random((4, 1, *shape)))
    noise_b = 0.6 * noise_a + 0.4 * torch.from_numpy(np.random.default_rng(9).random((4, 1, *shape)))
    return [(a, b), (noise_a, noise_b)]


@pytest.mark.parametrize("shape,settings", MONAI_CASES)
def test_matches_monai_ms_ssim_3d(shape: tuple[int, int, int], settings: MSSSIMSettings) -> None:
    """MONAI as shipped. It computes in float32 (inputs, window and weights), and its window sums to 1 only up to
    float32 rounding, which the E[x^2] - mu^2 cancellation amplifies: measured differences are up to 2.4e-5 (float32
    here) and 1.6e-5 (float64 here). A change of sigma by 0.1 moves every value by > 4e-4, so 3e-5 still tells
    settings apart; the float64 test below shows the definitions agree to 2e-8."""
    pytest.importorskip("monai")
    from monai.metrics import MultiScaleSSIMMetric
    from monai.metrics.regression import compute_ms_ssim

    kwargs = _monai_kwargs(settings)
    metric = MultiScaleSSIMMetric(reduction="none", **kwargs)
    for x, y in _monai_inputs(shape):
        ours64 = ms_ssim(x, y, settings)
        assert float(ours64.max()) < 0.99 and float(ours64.min()) > 0.05
        theirs = compute_ms_ssim(x, y, **kwargs).flatten()
        torch.testing.assert_close(metric(x, y).flatten(), theirs, atol=0, rtol=0)  # the class wraps the function
        torch.testing.assert_close(ours64, theirs.double(), atol=3e-5, rtol=0)
        torch.testing.assert_close(ms_ssim(x.float(), y.float(), settings), theirs.float(), atol=3e-5, rtol=0)
        other_sigma = MSSSIMSettings(kernel_size=settings.kernel_size, sigma=settings.sigma - 0.1, betas=settings.betas)
        assert float((ms_ssim(x, y, other_sigma) - theirs.double()).abs().min()) > 4e-4


@pytest.mark.parametrize("shape,settings", MONAI_CASES)
def test_matches_monai_ms_ssim_3d_in_float64(shape: tuple[int, int, int], settings: MSSSIMSettings,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """MONAI's own compute_ms_ssim run in float64: its float32 cast of the inputs is lifted and its Gaussian window is
    built with float64 as the default dtype. Only its float32 weights (betas) remain: measured 5e-9, allowed 2e-8."""
    regression = pytest.importorskip("monai.metrics.regression")
    if not (hasattr(regression, "convert_data_type") and hasattr(regression, "_gaussian_kernel")):
        pytest.skip("MONAI's internals changed: no float64 route through compute_ms_ssim")
    build_window = regression._gaussian_kernel

    def window_in_float64(*args: object, **kwargs: object) -> torch.Tensor:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return build_window(*args, **kwargs)
        finally:
            torch.set_default_dtype(previous)

    def cast_to_float64(data: object, output_type: object = None, dtype: object = None,
                        **_: object) -> tuple[torch.Tensor, None, None]:
        return torch.as_tensor(data, dtype=torch.float64), None, None

    monkeypatch.setattr(regression, "convert_data_type", cast_to_float64)
    monkeypatch.setattr(regression, "_gaussian_kernel", window_in_float64)
    for x, y in _monai_inputs(shape):
        theirs = regression.compute_ms_ssim(x, y, **_monai_kwargs(settings)).flatten()
        assert theirs.dtype == torch.float64
        torch.testing.assert_close(ms_ssim(x, y, settings), theirs, atol=2e-8, rtol=0)


# ---------------------------------------------------------------- validation


def test_too_small_volumes_raise() -> None:
    x = torch.rand(2, 1, 16, 16, 13)
    with pytest.raises(ValueError, match=r"volumes of 16 x 16 x 13 voxels are too small.*7 \* 2\^1 = 14 voxels"):
        ms_ssim(x, x, TWO)
    with pytest.raises(ValueError, match=r"\(N, C, D, H, W\)"):
        ms_ssim(torch.rand(1, 1, 1, 16, 16, 16), torch.rand(1, 1, 1, 16, 16, 16), TWO)
    with pytest.raises(ValueError, match="same shape"):
        ms_ssim(torch.rand(2, 1, 16, 16, 16), torch.rand(2, 1, 16, 16), TWO)


def test_pairwise_value_range_maps_each_batch_like_a_premapped_set() -> None:
    g = torch.Generator().manual_seed(4)
    volumes = torch.rand(12, 1, 16, 16, 16, generator=g) * 2 - 1
    premapped = ((volumes + 1) / 2).clamp(0, 1)
    v1 = mean_pairwise_ms_ssim(premapped, 40, TWO, torch.Generator().manual_seed(0), batch_size=7)
    v2 = mean_pairwise_ms_ssim(volumes, 40, TWO, torch.Generator().manual_seed(0), batch_size=7,
                               value_range=(-1.0, 1.0))
    assert v1 == v2
    assert 0 < v1 < 0.5  # independent noise volumes are far from each other
    with pytest.raises(ValueError, match="value_range"):
        mean_pairwise_ms_ssim(volumes, 4, TWO, torch.Generator().manual_seed(0), value_range=(1.0, 1.0))


# ---------------------------------------------------------------- (d) the registered metric on volume benchmarks


class _TinyVolumes(Benchmark):
    """A volume benchmark whose side is too small for one 7-tap window."""

    registered_name = "tiny_volumes"

    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(1, 5, 5, 5), kind="volume")

    def _load(self) -> DataSplits:
        return DataSplits(torch.zeros(4, 1, 5, 5, 5), torch.zeros(4, 1, 5, 5, 5))


def test_metric_is_na_on_volumes_too_small_for_one_window() -> None:
    from gvae_bench.models.vae import VAE, VAEConfig

    benchmark = _TinyVolumes(Path("."))
    spec16 = DataSpec(shape=(1, 16, 16, 16), kind="volume")
    model = VAE(VAEConfig(width=4, latent_dim=8), spec16)  # any sampling model: missing() reads the benchmark
    lacking = MSSSIM().missing(model, benchmark)
    assert len(lacking) == 1 and "voxel side >= 7" in lacking[0] and "(5, 5, 5)" in lacking[0]
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig

    entry = evaluate(model, benchmark, benchmark.load(), EvalConfig(), seed=0, only={"ms_ssim"})["ms_ssim"]
    assert entry["value"] is None and "voxel side >= 7" in entry["na"]
    assert MSSSIM().missing(model, _Volumes16(Path("."))) == []  # a 16^3 volume benchmark: applies


class _Volumes16(_TinyVolumes):
    @property
    def spec(self) -> DataSpec:
        return DataSpec(shape=(1, 16, 16, 16), kind="volume")


def _ct_root() -> Path:
    root = _data_root() / "CT"
    if not root.is_dir() or not any(root.glob("*.nii*")):
        pytest.skip(f"no CT volume under {root}; set GVAE_BENCH_DATA to a folder holding CT/*.nii.gz")
    return root


def test_metric_runs_end_to_end_on_ct_patches() -> None:
    from gvae_bench.benchmarks.ct import CTConfig, CTFolder
    from gvae_bench.execution.evaluation import evaluate
    from gvae_bench.profiles import EvalConfig
    from gvae_bench.models.vae import VAE, VAEConfig

    benchmark = CTFolder(_ct_root(), CTConfig(mode="3d", size=16, patches_per_volume=16))
    splits = benchmark.load()
    assert benchmark.spec.kind == "volume" and splits.test.shape[1:] == (1, 16, 16, 16)
    torch.manual_seed(0)
    model = VAE(VAEConfig(width=4, latent_dim=8), benchmark.spec)  # untrained: the metric only needs samples
    results = evaluate(model, benchmark, splits, EvalConfig(n_samples=16, ms_ssim_pairs=30), seed=0, only={"ms_ssim"})
    entry = results["ms_ssim"]
    assert entry["value"] is not None, entry.get("na")
    assert 0.0 <= entry["value"] <= 1.0 and 0.0 <= entry["reference"] <= 1.0
    assert entry["details"]["spatial_dims"] == 3 and entry["details"]["scales"] == 2
    assert entry["n_generated"] == 16 and entry["n_real"] == min(16, len(splits.test))
    # the reference is the documented function on the same real test patches, mapped from [-1, 1] to [0, 1]
    from gvae_bench.contracts.metric import EvalContext

    ctx = EvalContext(model=model, benchmark=benchmark, splits=splits, config=EvalConfig(n_samples=16), seed=0)
    real = ((ctx.real_test(16) + 1) / 2).clamp(0, 1)
    expected = mean_pairwise_ms_ssim(real, 30, TWO, ctx.generator("ms_ssim_real"))
    assert entry["reference"] == pytest.approx(expected, abs=1e-6)
    assert not math.isclose(entry["reference"], 1.0, abs_tol=1e-3)  # distinct real patches are not identical
