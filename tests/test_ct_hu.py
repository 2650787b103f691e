from __future__ import annotations

import pytest
import torch

from gvae_bench.metrics.ct_hu import classes_in_window, tissue_shares, total_variation, wasserstein_1d


def test_wasserstein_of_a_shift_is_the_shift():
    a = torch.randn(50_000, generator=torch.Generator().manual_seed(0)) * 100
    assert wasserstein_1d(a, a) == 0.0
    assert wasserstein_1d(a, a + 37.0) == pytest.approx(37.0, abs=1e-6)


def test_wasserstein_between_two_point_masses_and_a_mixture():
    # half at -100 and half at 100 against all at 0: every unit of mass moves 100
    mixture = torch.cat([torch.full((500,), -100.0), torch.full((500,), 100.0)])
    assert wasserstein_1d(mixture, torch.zeros(1000)) == pytest.approx(100.0, abs=0.1)  # quantile-grid error


def test_classes_the_window_clips_away_merge_with_their_neighbour():
    # abdominal window [-160, 240]: air (< -200) comes back as -160, inside fat's range
    assert classes_in_window(-160.0, 240.0) == {
        "air_or_fat": (-float("inf"), -30.0), "soft_tissue": (-30.0, 150.0), "bone_or_contrast": (150.0, float("inf"))}
    # a lung window [-1350, 150] keeps air and fat apart; bone (>= 150) sits at the ceiling, still its own class
    assert list(classes_in_window(-1350.0, 150.0)) == ["air", "fat", "soft_tissue", "bone_or_contrast"]
    # a brain window [0, 80]: air and fat wholly below it, bone wholly above: one class is left
    assert classes_in_window(0.0, 80.0) == {"air_or_fat_or_soft_tissue_or_bone_or_contrast": (-float("inf"), float("inf"))}


def test_windowed_air_is_not_counted_as_fat():
    air_clipped_by_the_window = torch.full((10,), -160.0)  # -1000 HU after the [-160, 240] window
    shares = tissue_shares(air_clipped_by_the_window, classes_in_window(-160.0, 240.0))
    assert shares == {"air_or_fat": 1.0, "soft_tissue": 0.0, "bone_or_contrast": 0.0}


def test_tissue_shares_count_each_class():
    hu = torch.tensor([-1000.0, -500.0, -100.0, 0.0, 40.0, 149.9, 150.0, 700.0])
    assert tissue_shares(hu) == {"air": 0.25, "fat": 0.125, "soft_tissue": 0.375, "bone_or_contrast": 0.25}


def test_total_variation_of_class_shares():
    assert total_variation({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}) == 0.0
    assert total_variation({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}) == 1.0
    assert total_variation({"a": 0.7, "b": 0.3}, {"a": 0.4, "b": 0.6}) == pytest.approx(0.3)
