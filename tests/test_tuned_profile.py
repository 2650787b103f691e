"""``--profile tuned``: each model trained with its best configuration from the tuning studies (a profile
with ``tuned_from``), on the whole training split, its record naming the study and trial it came from."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytest.importorskip("optuna")

from conftest import invoke_cli  # noqa: E402
from gvae_bench import profiles  # noqa: E402
from gvae_bench.errors import UserError  # noqa: E402
from gvae_bench.execution.records import RunStatus  # noqa: E402
from gvae_bench.execution.run import execute_run  # noqa: E402
from gvae_bench.execution.runs import resolve  # noqa: E402
from gvae_bench.sweep import plan_sweep  # noqa: E402
from gvae_bench.tuning import tune  # noqa: E402


@pytest.fixture(scope="module")
def studies(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("tuned-from")
    tune(["vae", "wgan_gp"], "ring8", trials=2, profile="smoke", steps=4, out=out, data_root=data_root)
    return out


@pytest.fixture
def tuned_smoke(monkeypatch):
    """A ``tuned_smoke`` profile (smoke, with the smoke studies' best configurations), beside the real ones."""
    real = profiles.load_profiles()
    monkeypatch.setattr(profiles, "load_profiles",
                        lambda path=profiles.PROFILES_FILE: {**real, "tuned_smoke": {"base": "smoke", "tuned_from": "smoke"}})


def test_the_tuned_profile_is_quick_plus_the_tuned_fields():
    for model, benchmark, family in (("gvae", "mnist", "dcgan28"), ("vae", "ring8", "mlp2d")):
        assert profiles.resolve_profile("tuned", model, benchmark, family) == profiles.resolve_profile(
            "quick", model, benchmark, family)
    assert profiles.tuned_from("tuned") == "quick" and profiles.tuned_from("quick") is None


def test_a_tuned_run_trains_with_the_best_fields_and_names_its_trial(studies, tuned_smoke, data_root, tmp_path):
    with open(studies / "tuning" / "ring8" / "best_configs.toml", "rb") as handle:
        best = tomllib.load(handle)
    plan = plan_sweep(["vae", "wgan_gp"], "ring8", profile="tuned_smoke", out=tmp_path, tuned_from=studies,
                      data_root=data_root, device="cpu")
    for spec in plan.specs:
        entry = best[spec.model]["smoke"]
        config = resolve(spec).model_config
        for field, value in entry["model"].items():
            assert getattr(config, field) == (tuple(value) if isinstance(value, list) else value), field
        untuned = resolve(plan_sweep([spec.model], "ring8", profile="smoke", out=tmp_path, data_root=data_root,
                                     device="cpu").specs[0])
        assert resolve(spec).train == untuned.train and resolve(spec).eval == untuned.eval
        assert resolve(spec).run_dir.parent.name.startswith("tuned_smoke-")
    record, _ = execute_run(plan.specs[0])
    assert record.status == RunStatus.FINISHED and record.metrics["mmd"]["value"] is not None
    assert record.profile_config_hash == record.config_hash  # the tuned fields are the tuned profile's own settings
    swept = plan_sweep(["vae"], "ring8", profile="tuned_smoke", out=tmp_path, tuned_from=studies, data_root=data_root,
                       device="cpu", latent_sizes=[3])
    assert swept.specs[0].profile_config_hash == record.config_hash != resolve(swept.specs[0]).config_hash
    assert record.data["n_train"] == resolve(plan.specs[0]).benchmark.load().train.shape[0]  # the whole split
    assert record.tuning["study"] == "ring8-vae-smoke" and record.tuning["trial"] == best["vae"]["smoke"]["trial"]
    assert record.tuning["value"] == best["vae"]["smoke"]["value"] and len(record.tuning["best_configs_sha256"]) == 64


def test_a_model_without_a_study_is_a_user_error(studies, tuned_smoke, data_root, tmp_path):
    with pytest.raises(UserError, match="gvae has no tuned configuration for ring8"):
        plan_sweep(["gvae"], "ring8", profile="tuned_smoke", out=tmp_path, tuned_from=studies, data_root=data_root)


def test_the_tuned_profile_without_studies_is_a_one_line_error(tmp_path):
    result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "tuned", "--out", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no tuned configurations for ring8" in lines[0] and "runner.py tune" in lines[0]
    assert "--tuned-from" in lines[0]
