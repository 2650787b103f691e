"""Profiles are data: every profile resolves for every model on every benchmark, and overrides
apply as the file says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gvae_bench.errors import UserError
from gvae_bench.profiles import profile_names, resolve_profile
from gvae_bench.registry import BENCHMARKS, MODELS
from gvae_bench.execution.runs import RunSpec, resolve


@pytest.fixture(scope="module")
def required(tmp_path_factory) -> dict[str, tuple[tuple[str, object], ...]]:
    """The settings a benchmark cannot run without: image_folder's root (a folder of 3 PNGs)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(root / f"{i}.png")
    return {"image_folder": (("root", str(root)),)}


@pytest.mark.parametrize("profile", profile_names())
def test_every_profile_resolves_for_every_model_and_benchmark(profile, required):
    for model in MODELS.names():
        if model.startswith("test_"):
            continue  # models registered by other tests
        for benchmark in BENCHMARKS.names():
            settings = required.get(benchmark, ())
            run = resolve(RunSpec(model, benchmark, profile, 0, Path("unused"), Path("unused"), benchmark_overrides=settings))
            assert run.train.steps >= 1 and run.eval.n_samples >= 2
            again = RunSpec(model, benchmark, profile, 1, Path("x"), Path("y"), benchmark_overrides=settings)
            assert run.config_hash == resolve(again).config_hash


def test_image_folder_without_its_root_is_a_clear_error():
    with pytest.raises(UserError, match="--set benchmark.root=DIR"):
        resolve(RunSpec("vae", "image_folder", "smoke", 0, Path("unused"), Path("unused")))


def test_overrides_apply_in_order_and_lists_match_any_value():
    assert resolve_profile("quick", "wgan_gp", "mnist", "dcgan28")["train"]["steps"] == 2000
    assert resolve_profile("quick", "gvae", "mnist", "dcgan28")["train"]["steps"] == 2000
    assert resolve_profile("quick", "vae", "mnist", "dcgan28")["train"]["steps"] == 3000
    assert resolve_profile("quick", "gvae", "cifar10", "dcgan32")["train"]["steps"] == 2000
    assert resolve_profile("quick", "gvae", "cifar10", "dcgan32")["model"]["width"] == 32
    assert resolve_profile("quick", "wgan_gp", "cifar10", "dcgan32")["train"]["batch_size"] == 64  # gan_cifar.py's
    assert resolve_profile("quick", "gvae", "ring8", "mlp2d")["model"]["gp_weight"] == 0.1
    assert "gp_weight" not in resolve_profile("quick", "vae_gan", "ring8", "mlp2d")["model"]


def test_a_profile_field_a_model_lacks_is_a_clear_error():
    with pytest.raises(UserError, match="has no field"):
        MODELS.get("vae").Config.from_dict({"gp_weight": 0.1})
