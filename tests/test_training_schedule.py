"""The loop's learning-rate staircase, weight snapshots and per-batch transform (dynamic
binarization), and the metric curve over snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gvae_bench.contracts.benchmark import DataSpec, binarize
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.training import SNAPSHOT_FOLDER, BatchStream, train
from gvae_bench.models.vae import VAE, VAEConfig


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=2, width=8, network="mlp_tanh", likelihood="bernoulli", lr=1e-3),
               DataSpec((1, 28, 28), "image"))


def test_learning_rate_staircase_and_snapshots(tmp_path: Path):
    model = _vae()
    data = torch.rand(64, 1, 28, 28) * 2 - 1
    config = TrainConfig(steps=6, batch_size=16, checkpoint_every=3, log_every=1, lr_decay_every=2, lr_decay=0.5,
                         snapshot_every=3)
    train(model, data, config, tmp_path, seed=0)
    assert model.optimizers()["vae"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**3)
    snapshots = sorted(p.name for p in (tmp_path / SNAPSHOT_FOLDER).iterdir())
    assert snapshots == ["step3.pt", "step6.pt"]
    state = torch.load(tmp_path / SNAPSHOT_FOLDER / "step6.pt", weights_only=False)
    assert all(torch.equal(state["model"][k], v) for k, v in model.state_dict().items())


def test_resume_keeps_the_decayed_learning_rate(tmp_path: Path):
    data = torch.rand(64, 1, 28, 28) * 2 - 1
    config = TrainConfig(steps=4, batch_size=16, checkpoint_every=2, lr_decay_every=1, lr_decay=0.5)
    train(_vae(), data, config, tmp_path, seed=0)
    resumed = _vae()
    train(resumed, data, TrainConfig(steps=6, batch_size=16, checkpoint_every=2, lr_decay_every=1, lr_decay=0.5),
          tmp_path, seed=0)
    assert resumed.optimizers()["vae"].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**6)


def test_dynamic_binarization_draws_fresh_binary_batches_with_the_grey_level_as_mean():
    grey = torch.full((4000, 1, 2, 2), 0.4)  # probability (0.4 + 1) / 2 = 0.7
    stream = BatchStream(grey, 2000, seed=0, transform=binarize)
    first, second = stream(), stream()
    assert set(first.unique().tolist()) == {-1.0, 1.0}
    assert not torch.equal(first, second)
    assert float(((first + 1) / 2).mean()) == pytest.approx(0.7, abs=0.02)


def test_curve_command_evaluates_every_snapshot(tmp_path: Path):
    from conftest import invoke_cli

    from gvae_bench.execution.run import execute_run
    from gvae_bench.execution.runs import RunSpec, resolve

    spec = RunSpec(model="vae", benchmark="ring8", profile="smoke", seed=0, data_root=tmp_path, out=tmp_path)
    assert execute_run(spec)[0].status == "finished"
    run_dir = resolve(spec).run_dir
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    (run_dir / SNAPSHOT_FOLDER).mkdir()
    torch.save({"step": 4, "model": state["model"]}, run_dir / SNAPSHOT_FOLDER / "step4.pt")
    result = invoke_cli("curve", str(run_dir), "--metric", "elbo", "--set", "eval.likelihood_images=30")
    assert result.returncode == 0, result.stderr
    lines = (run_dir / "curve_elbo.csv").read_text().splitlines()
    assert lines[0].startswith("# elbo of vae on ring8") and lines[1] == "step,epoch,value,n_real"
    assert [line.split(",")[0] for line in lines[2:]] == ["4", "8"] and lines[2].endswith(",30")
    assert (run_dir / "curve_elbo.png").stat().st_size > 0
    bad = invoke_cli("curve", str(run_dir), "--metric", "nope")
    assert bad.returncode == 2 and "unknown metric 'nope'" in bad.stderr
