from __future__ import annotations

import pytest
import torch

from metrics.ct_hu import tissue_shares, wasserstein_1d


def test_wasserstein_of_a_shift_is_the_shift():
    a = torch.randn(50_000, generator=torch.Generator().manual_seed(0)) * 100
    assert wasserstein_1d(a, a) == 0.0
    assert wasserstein_1d(a, a + 37.0) == pytest.approx(37.0, abs=1e-6)


def test_wasserstein_between_two_point_masses_and_a_mixture():
    # half at -100 and half at 100 against all at 0: every unit of mass moves 100
    mixture = torch.cat([torch.full((500,), -100.0), torch.full((500,), 100.0)])
    assert wasserstein_1d(mixture, torch.zeros(1000)) == pytest.approx(100.0, abs=0.1)  # quantile-grid error


def test_tissue_shares_count_each_class():
    hu = torch.tensor([-1000.0, -500.0, -100.0, 0.0, 40.0, 149.9, 150.0, 700.0])
    assert tissue_shares(hu) == {"air": 0.25, "fat": 0.125, "soft_tissue": 0.375, "bone_or_contrast": 0.25}
