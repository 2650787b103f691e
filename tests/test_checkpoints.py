"""Checkpoints are untrusted input: nothing in one runs, a broken one is moved aside, resume stays exact,
checkpoints written before the RNG states were tensors still resume exactly, and checkpoints also come
on a time interval, so a crash between two loses at most that interval."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from gvae_bench.execution.checkpoints import (
    CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, UnreadableFileError, UnsafeFileError, load_resume_state, safe_load,
)
from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.errors import UserError
from gvae_bench.models.wgan_gp import WGANGP, WGANGPConfig
from gvae_bench.profiles import TrainConfig
from gvae_bench.execution.training import seed_everything, train

IMAGE = DataSpec(shape=(1, 28, 28), kind="image")


class _Payload:
    """A pickle that creates a file when it is unpickled: what a hostile checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def write_malicious_checkpoint(path, marker) -> None:
    torch.save({"step": 1, "model": {}, "payload": _Payload(marker)}, path)


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    write_malicious_checkpoint(tmp_path / CHECKPOINT_FILE, marker)
    with pytest.raises(UnsafeFileError, match="holds objects other than tensors and plain data"):
        safe_load(tmp_path / CHECKPOINT_FILE)
    with pytest.raises(UnsafeFileError):
        load_resume_state(tmp_path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload is real: plain unpickling creates the file
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a zip", b"garbage"])
def test_an_unreadable_checkpoint_is_moved_aside_and_the_previous_one_is_used(tmp_path, content):
    torch.save({"step": 3}, tmp_path / PREVIOUS_CHECKPOINT_FILE)
    (tmp_path / CHECKPOINT_FILE).write_bytes(content)
    with pytest.raises(UnreadableFileError, match=f"{len(content)} bytes"):
        safe_load(tmp_path / CHECKPOINT_FILE)
    assert load_resume_state(tmp_path) == {"step": 3}
    moved = list(tmp_path.glob(f"{CHECKPOINT_FILE}.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == content


def _wgan():
    seed_everything(7)
    return WGANGP(WGANGPConfig(width=4, latent_dim=8, n_critic=2), IMAGE)


def _data():
    return torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_truncated_checkpoint_resumes_from_the_previous_one_exactly(tmp_path):
    config = dict(batch_size=16, checkpoint_every=2, log_every=1)
    straight = _wgan()
    train(straight, _data(), TrainConfig(steps=8, **config), tmp_path / "straight", seed=7)
    run = tmp_path / "cut"
    train(_wgan(), _data(), TrainConfig(steps=6, **config), run, seed=7)  # checkpoints at 2, 4, 6
    full = (run / CHECKPOINT_FILE).read_bytes()
    (run / CHECKPOINT_FILE).write_bytes(full[: len(full) // 2])  # the step-6 file, cut by a copy
    resumed = _wgan()
    outcome = train(resumed, _data(), TrainConfig(steps=8, **config), run, seed=7)
    assert outcome.resumed_from == 4 and _equal(straight, resumed)
    assert len(list(run.glob(f"{CHECKPOINT_FILE}.corrupt-*"))) == 1


def test_a_checkpoint_in_the_earlier_format_resumes_exactly(tmp_path):
    """Checkpoints of runs in flight were written with numpy's and python's RNG states as pickled
    tuples (numpy's holding an ndarray); they load safely and resume to the same weights."""
    config = dict(batch_size=16, checkpoint_every=3, log_every=1)
    straight = _wgan()
    train(straight, _data(), TrainConfig(steps=8, **config), tmp_path / "straight", seed=7)
    run = tmp_path / "old"
    train(_wgan(), _data(), TrainConfig(steps=5, **config), run, seed=7)
    state = safe_load(run / CHECKPOINT_FILE)
    numpy_state, python_state = state["rng"]["numpy"], state["rng"]["python"]
    state["rng"]["numpy"] = (numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                             numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    state["rng"]["python"] = (python_state["version"], tuple(python_state["state"].tolist()),
                              python_state["gauss_next"])
    torch.save(state, run / CHECKPOINT_FILE)  # as the earlier format stored them
    random.seed(123)
    np.random.seed(123)
    resumed = _wgan()
    outcome = train(resumed, _data(), TrainConfig(steps=8, **config), run, seed=7)
    assert outcome.resumed_from == 5 and _equal(straight, resumed)


def _points_vae():
    from gvae_bench.models.vae import VAE, VAEConfig

    seed_everything(7)
    return VAE(VAEConfig(width=16, latent_dim=2), DataSpec(shape=(2,), kind="points"))


def _points():
    return torch.randn(256, 2, generator=torch.Generator().manual_seed(0))


class _Clock:
    """A clock that moves one second per training step (the wrapped model's ``train_step``), and a
    model that crashes at a given step: what a SIGKILL between two checkpoints leaves behind."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def stepping(self, model, crash_at: int | None = None):
        original, steps = model.train_step, [0]

        def train_step(stream):
            steps[0] += 1
            if steps[0] == crash_at:
                raise RuntimeError(f"killed during step {crash_at}")
            self.now += 1.0
            return original(stream)

        model.train_step = train_step
        return model


def test_time_interval_checkpoints_come_every_checkpoint_seconds_and_resume_exactly(tmp_path, monkeypatch):
    """checkpoint_every far beyond the run: only the time interval (3 s, one second a step) saves, at
    steps 3 and 6 before a crash in step 8; the rerun resumes from 6 (1 step lost, less than the
    interval) and ends with the weights of a run never stopped."""
    import gvae_bench.execution.training as training

    config = dict(batch_size=16, checkpoint_every=1000, log_every=1, checkpoint_seconds=3)
    straight = _points_vae()
    train(straight, _points(), TrainConfig(steps=10, **config), tmp_path / "straight", seed=7)

    clock, saved = _Clock(), []
    monkeypatch.setattr(training, "clock", clock)
    original_save = training._save_checkpoint
    monkeypatch.setattr(training, "_save_checkpoint", lambda run_dir, model, stream, step, *rest: (
        saved.append(step), original_save(run_dir, model, stream, step, *rest)))
    run = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="killed during step 8"):
        train(clock.stepping(_points_vae(), crash_at=8), _points(), TrainConfig(steps=10, **config), run, seed=7)
    assert saved == [3, 6] and safe_load(run / CHECKPOINT_FILE)["step"] == 6
    resumed = clock.stepping(_points_vae())
    outcome = train(resumed, _points(), TrainConfig(steps=10, **config), run, seed=7)
    assert outcome.resumed_from == 6 and saved == [3, 6, 9, 10] and _equal(straight, resumed)
    assert [row["step"] for row in outcome.loss_log] == list(range(1, 11))


def test_checkpoint_seconds_never_changes_the_config_hash():
    """How often a run checkpoints does not change what it computes: one folder for any interval, and
    the hash of a config from before the field existed."""
    from gvae_bench.config import config_hash

    before = {k: v for k, v in TrainConfig().to_dict().items() if k != "checkpoint_seconds"}
    for seconds in (120.0, 5, 0):
        config = TrainConfig(checkpoint_seconds=seconds)
        assert config.to_dict()["checkpoint_seconds"] == seconds  # the record still says what it was
        assert config_hash(config.hash_dict()) == config_hash(TrainConfig().hash_dict())
    assert set(TrainConfig().hash_dict()) <= set(before)
    with pytest.raises(UserError, match="checkpoint_seconds must be >= 0"):
        TrainConfig(checkpoint_seconds=-1)
