"""Pruning that saves training time: the loop consults a judge (``training.Intermediate``) every few
steps; a judge that lets the run go on leaves it bit-identical to a run without one, and one that
stops it ends the run ``pruned`` at that step. In a study, a pruned trial trains only to its step."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch

from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.models.vae import VAE, VAEConfig
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.records import RunStatus, read_record
from gvae_bench.execution.training import Intermediate, train

REPO = Path(__file__).resolve().parent.parent


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=2, width=8), DataSpec((1, 28, 28), "image"))


def _data() -> torch.Tensor:
    return torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_a_judge_that_lets_the_run_go_on_leaves_training_bit_identical(tmp_path: Path):
    config = TrainConfig(steps=8, batch_size=16, checkpoint_every=4, log_every=1)
    plain = _vae()
    train(plain, _data(), config, tmp_path / "plain", seed=0)
    seen: list[tuple[int, bool]] = []

    def judge(step: int, model: VAE) -> bool:  # draws samples, as a scorer does, and perturbs the RNGs
        seen.append((step, model.training))
        torch.randn(1000), model.sample(16)
        return False

    judged = _vae()
    outcome = train(judged, _data(), config, tmp_path / "judged", seed=0, intermediate=Intermediate(2, judge))
    assert outcome.status == "finished" and outcome.steps_done == 8
    assert seen == [(2, False), (4, False), (6, False)]  # every 2 steps, in eval mode, never at the last step
    assert judged.training
    for name, value in plain.state_dict().items():
        assert torch.equal(value, judged.state_dict()[name]), name


def test_a_judge_that_says_stop_ends_the_run_pruned_at_its_step(tmp_path: Path):
    config = TrainConfig(steps=8, batch_size=16, checkpoint_every=4, log_every=1)
    outcome = train(_vae(), _data(), config, tmp_path, seed=0, intermediate=Intermediate(3, lambda step, m: step >= 3))
    assert (outcome.status, outcome.steps_done) == ("pruned", 3)
    assert "step 3 of 8" in outcome.reason
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["step"] == 3
    with open(tmp_path / "losses.csv") as handle:
        assert [row["step"] for row in csv.DictReader(handle)][-1] == "3"


def test_a_pruned_run_is_final_and_never_evaluated(tmp_path: Path, data_root: Path):
    from gvae_bench.execution.run import execute_run
    from gvae_bench.sweep import plan_sweep

    plan = plan_sweep(["vae"], "ring8", profile="smoke", seeds=[0], out=tmp_path, data_root=data_root, device="cpu")
    record, _ = execute_run(plan.specs[0], intermediate=Intermediate(4, lambda step, model: True))
    assert record.status == RunStatus.PRUNED and record.steps_done == 4 and record.metrics == {}
    again, _ = execute_run(plan.specs[0])  # final: a sweep does not train it again
    assert again.status == RunStatus.PRUNED and again.steps_done == 4
    assert read_record(tmp_path / "runs" / "ring8" / "vae" / next(
        p.name for p in (tmp_path / "runs" / "ring8" / "vae").iterdir()) / "seed0").status == RunStatus.PRUNED


class _PruneAfterStartup:
    """A pruner that prunes every trial after the first (at its first report)."""

    def __init__(self, **_):
        pass

    def prune(self, study, trial) -> bool:
        return trial.number > 0


def test_a_pruned_trial_trains_only_to_its_first_report(tmp_path: Path, data_root: Path, monkeypatch):
    optuna = pytest.importorskip("optuna")
    from gvae_bench.tuning import tune

    monkeypatch.setattr(optuna.pruners, "MedianPruner", _PruneAfterStartup)
    steps = 8
    summary = tune(["vae"], "ring8", trials=3, profile="smoke", steps=steps, out=tmp_path, data_root=data_root)
    (study,) = summary.studies
    assert (study.finished, study.pruned) == (1, 2)
    trials = optuna.load_study(study_name="ring8-vae-smoke", storage=f"sqlite:///{tmp_path}/tuning/ring8/studies.db").trials
    for trial in trials:
        record = read_record(Path(trial.user_attrs["run_dir"]))
        if trial.number == 0:
            assert trial.state.name == "COMPLETE" and record.steps_done == steps
            assert sorted(trial.user_attrs["intermediate_scores"]) == ["2", "4", "6"]
        else:
            assert trial.state.name == "PRUNED" and record.status == RunStatus.PRUNED
            assert record.steps_done == steps // 4 == trial.user_attrs["steps_done"]
            assert trial.value == trial.user_attrs["intermediate_scores"]["2"]
