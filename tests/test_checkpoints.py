"""Checkpoints are untrusted input: nothing in one runs, a broken one is moved aside, resume stays exact,
and checkpoints written before the RNG states were tensors still resume exactly."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from gvae_bench.checkpoints import (
    CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE, UnreadableFileError, UnsafeFileError, load_resume_state, safe_load,
)
from gvae_bench.contracts.benchmark import DataSpec
from gvae_bench.models.wgan_gp import WGANGP, WGANGPConfig
from gvae_bench.profiles import TrainConfig
from gvae_bench.training import seed_everything, train

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
