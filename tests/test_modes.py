from __future__ import annotations

import torch

from gvae_bench.benchmarks.mixtures import Grid25, Ring8
from gvae_bench.metrics.modes import mode_coverage


def test_samples_placed_on_known_modes_are_counted_exactly():
    centres = Ring8.centres()
    # 5 samples on each of modes 0..4, none near 5..7, plus 3 far-off samples
    on_modes = centres[:5].repeat_interleave(5, dim=0) + 0.005  # 0.5 std away from the centre
    far = torch.tensor([[0.0, 0.0], [3.0, 3.0], [0.5, 0.5]])
    result = mode_coverage(torch.cat([on_modes, far]), centres, std=0.01)
    assert result.modes_covered == 5
    assert result.counts == [5, 5, 5, 5, 5, 0, 0, 0]
    assert abs(result.high_quality_fraction - 25 / 28) < 1e-12


def test_threshold_is_three_standard_deviations():
    centres = Grid25.centres()
    inside = centres[:1] + torch.tensor([[0.149, 0.0]])  # 2.98 std of 0.05
    outside = centres[:1] + torch.tensor([[0.151, 0.0]])  # 3.02 std
    assert mode_coverage(inside, centres, 0.05).modes_covered == 1
    assert mode_coverage(outside, centres, 0.05).modes_covered == 0


def test_true_mixture_samples_cover_every_mode():
    bench = Grid25(".", Grid25.Config(n_train=10, n_test=2500))
    result = mode_coverage(bench.load().test, bench.modes, bench.mode_std)
    assert result.modes_covered == 25
    assert result.high_quality_fraction > 0.98  # 1 - P(chi_2 > 9) = 0.989


def test_kl_to_uniform_known_values():
    import math

    from gvae_bench.metrics.modes import kl_to_uniform

    assert kl_to_uniform(torch.full((1000,), 7)) == 0.0
    assert math.isclose(kl_to_uniform(torch.tensor([5, 0, 0, 0])), math.log(4))
    assert math.isclose(kl_to_uniform(torch.tensor([1, 1, 0, 0])), math.log(2))  # half the modes: log 2


def test_stacked_mnist_modes_through_the_runner(tmp_path, data_root):
    import json
    import math

    from tests.conftest import invoke_cli

    out = tmp_path / "results"
    result = invoke_cli("--models", "vae", "--dataset", "stacked_mnist", "--profile", "smoke",
                        "--set", "eval.mode_samples=300", "--data-root", str(data_root), "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads(next(out.glob("runs/stacked_mnist/vae/*/seed0/record.json")).read_text())
    modes, kl = record["metrics"]["modes"], record["metrics"]["mode_kl"]
    # the mode metrics count their own sample size (eval.mode_samples), the others n_samples
    assert modes["n_generated"] == modes["n_real"] == kl["n_generated"] == 300 and 1 <= modes["value"] <= 300
    assert record["metrics"]["kid"]["n_generated"] == 200
    assert "384 features" in record["metrics"]["fid"]["na"]  # 3 digits x 128 features > 200 samples
    # 300 real stacked digits read by even the small smoke classifier fall in well over 100 modes,
    # and an 8-step VAE's blobs in far fewer: its histogram is further from uniform
    assert modes["reference"] > 100 and modes["value"] < modes["reference"]
    assert 0 <= kl["reference"] < kl["value"] <= math.log(1000)
    assert (out / "leaderboards" / "stacked_mnist" / "table_modes.md").is_file()
    assert record["metrics"]["high_quality"]["value"] is None  # a mixture-only metric: n/a here
