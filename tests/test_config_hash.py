"""Run-folder hashes must not drift: the committed quick-profile results are found by them."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from gvae_bench.config import ConfigBase, added_field, config_hash
from gvae_bench.execution.runs import RunSpec, resolve


@dataclass
class _Before(ConfigBase):
    width: int = 32


@dataclass
class _After(ConfigBase):
    width: int = 32
    network: str = added_field("dcgan", since="0.2")


def test_added_field_at_default_keeps_the_old_hash() -> None:
    assert config_hash(_After().hash_dict()) == config_hash(_Before().hash_dict())
    assert "network" in _After().to_dict()  # records still store it


def test_added_field_set_changes_the_hash() -> None:
    assert config_hash(_After(network="mlp").hash_dict()) != config_hash(_Before().hash_dict())


def test_an_integer_given_for_a_float_field_gives_the_same_config_and_hash() -> None:
    from gvae_bench.models.gvae import GVAEConfig

    as_int, as_float = GVAEConfig.from_dict({"kl_weight": 1}), GVAEConfig.from_dict({"kl_weight": 1.0})
    assert isinstance(as_int.kl_weight, float)
    assert config_hash(as_int.hash_dict()) == config_hash(as_float.hash_dict())
    spec = dict(benchmark="grid25", profile="quick", seed=0, data_root=Path("."), out=Path("."))
    by_set = resolve(RunSpec(model="gvae", model_overrides=(("kl_weight", 1),), **spec))
    assert by_set.config_hash == resolve(RunSpec(model="gvae", **spec)).config_hash  # the profile sets 1.0


@pytest.mark.parametrize("model, benchmark_name, expected", [
    # the folders of the committed quick runs: results/reference/runs/<benchmark>/<model>/quick-<hash>
    # (MNIST's under results/earlier/runs/mnist since its release replaced them in the reference tables)
    ("vae", "mnist", "510925410e"),
    ("gvae", "mnist", "7c97d0c81e"),
    ("alpha_gan", "mnist", "825c981e0d"),
    ("wgan_gp", "ring8", "f6fe06d269"),
    ("vae", "grid25", "d837453312"),  # 30000 steps since 1f53e39 (the 3000-step runs were 8e13599e96)
    ("gvae", "fashion_mnist", "666aa688be"),
])
def test_committed_run_hashes_are_stable(model: str, benchmark_name: str, expected: str, tmp_path: Path) -> None:
    spec = RunSpec(model, benchmark_name, "quick", 0, tmp_path / "data", tmp_path / "out")
    assert resolve(spec).config_hash == expected
