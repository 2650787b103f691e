"""The GPU path's settings, exercised on the CPU: bfloat16 autocast and channels-last training give
the same learning as float32 (within noise), and every model trains under them."""

from __future__ import annotations

import json

import torch

from gvae_bench.contracts.benchmark import DataSpec
from conftest import invoke_cli
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.training import seed_everything, train
from gvae_bench.models.vae import VAE, VAEConfig


def _final_loss(data: torch.Tensor, tmp_path, precision: str) -> tuple[float, float]:
    seed_everything(0)
    model = VAE(VAEConfig(latent_dim=8, width=8), DataSpec((1, 28, 28), "image"))
    outcome = train(model, data, TrainConfig(steps=60, batch_size=32, checkpoint_every=60, log_every=1,
                                             precision=precision), tmp_path / precision, seed=0)
    losses = [row["loss"] for row in outcome.loss_log]
    return sum(losses[:5]) / 5, sum(losses[-5:]) / 5


def test_bf16_autocast_learns_like_fp32(tmp_path, data_root):
    from gvae_bench.benchmarks.torchvision_images import MNIST

    data = MNIST(data_root).load().train[:1024]
    first32, last32 = _final_loss(data, tmp_path, "fp32")
    first16, last16 = _final_loss(data, tmp_path, "bf16")
    assert last32 < 0.8 * first32 and last16 < 0.8 * first16  # both learn
    assert abs(last16 - last32) / last32 < 0.05  # and end at the same loss within noise


def test_every_gan_style_model_trains_under_bf16_and_channels_last(tmp_path, data_root):
    result = invoke_cli("--models", "wgan_gp,gvae,vae_gan,alpha_gan", "--dataset", "mnist", "--profile", "smoke",
                        "--data-root", str(data_root), "--out", str(tmp_path),
                        "--set", "train.precision=bf16", "--set", "train.channels_last=true")
    assert result.returncode == 0, result.stderr
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "mnist").glob("*/*/seed0/record.json")]
    assert len(records) == 4 and all(r["status"] == "finished" for r in records)
    assert all(r["config"]["train"]["precision"] == "bf16" and r["config"]["train"]["channels_last"] for r in records)
    assert all(r["metrics"]["mmd"]["value"] is not None for r in records)


def test_bad_precision_is_a_one_line_error(tmp_path, data_root):
    result = invoke_cli("--models", "vae", "--dataset", "mnist", "--profile", "smoke", "--data-root", str(data_root),
                        "--out", str(tmp_path), "--set", "train.precision=fp8")
    assert result.returncode == 2 and "precision must be one of fp32, bf16, got 'fp8'" in result.stderr
