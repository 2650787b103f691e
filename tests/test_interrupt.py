"""Ctrl-C ends the process with 130 even when the main thread cannot stop (stuck in a blocking call),
and SIGINT and SIGTERM during training wait for the step boundary, save a checkpoint there, then act."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import default_sigint
from gvae_bench.execution.checkpoints import CHECKPOINT_FILE, safe_load
from gvae_bench.execution.interrupt import HELD_SIGNALS, StepBoundarySignals

# The main thread never acts on Ctrl-C, as in a call that never returns to Python: its SIGINT handler
# does nothing (a loop swallowing KeyboardInterrupt would let one escape between two statements, and
# the child would then die of the signal instead).
STUCK = """
import signal, time
from gvae_bench.execution.interrupt import InterruptWatchdog
signal.signal(signal.SIGINT, lambda signum, frame: None)
InterruptWatchdog(0.5, lambda: "interrupted after 4 of 5 run(s)").start()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.subprocess
def test_a_stuck_main_thread_still_exits_130_after_ctrl_c():
    process = subprocess.Popen([sys.executable, "-c", STUCK], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_sigint)
    assert process.stdout.readline().strip() == "ready"
    began = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130 and time.monotonic() - began < 10
    assert "interrupted after 4 of 5 run(s)" in stderr


class _Stop(Exception):
    """What the handler a test installs before the loop raises (where a command line would end)."""


@pytest.fixture(autouse=True)
def python_sigint():
    """SIGINT raises KeyboardInterrupt while a test runs, as in a command started from a terminal,
    whatever the test process inherited (a background job, or a pytest-xdist worker started by one,
    has SIGINT ignored, and the held-signal tests would then see nothing)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sigterm_raises():
    """SIGTERM raises ``_Stop`` while the test runs (its default would end pytest itself)."""
    def handler(signum, frame):
        raise _Stop(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    yield handler
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, _Stop)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_held_signal_waits_for_the_step_boundary_saves_then_acts_as_before(signum, raised, sigterm_raises):
    before = {s: signal.getsignal(s) for s in HELD_SIGNALS}
    saved = []
    with pytest.raises(raised):
        with StepBoundarySignals() as held:
            signal.raise_signal(signum)  # nothing happens here: the step goes on
            assert held.pending == signal.Signals(signum).name and saved == []
            held.at_boundary(lambda: saved.append(held.pending))
            pytest.fail("the signal did not act after the save")
    assert saved == [signal.Signals(signum).name]
    assert {s: signal.getsignal(s) for s in HELD_SIGNALS} == before  # the previous handlers are back


def test_a_second_signal_acts_at_once_and_an_ignored_one_stays_ignored(sigterm_raises):
    with pytest.raises(KeyboardInterrupt):
        with StepBoundarySignals():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # a step that never ends: the second Ctrl-C stops it
            pytest.fail("the second SIGINT was held")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StepBoundarySignals() as held:
            signal.raise_signal(signal.SIGINT)
            assert held.pending is None and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_handler_that_returns_lets_training_go_on_with_the_signals_held_again():
    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with StepBoundarySignals() as held:
            signal.raise_signal(signal.SIGINT)
            held.at_boundary(lambda: calls.append("saved"))
            assert calls == ["saved", signal.SIGINT] and held.pending is None
            signal.raise_signal(signal.SIGINT)
            assert held.pending == "SIGINT" and calls == ["saved", signal.SIGINT]
            held.at_boundary(lambda: calls.append("saved"))
        assert calls == ["saved", signal.SIGINT] * 2
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, _Stop)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_a_step_checkpoints_that_step_and_the_rerun_resumes_exactly(signum, raised, sigterm_raises,
                                                                                   tmp_path, caplog):
    """The signal comes during step 5 of 10, checkpoints every 1000 steps: step 5 is saved, the
    signal then acts, and the rerun resumes from 5 to the weights of a run never stopped."""
    from gvae_bench.contracts.benchmark import DataSpec
    from gvae_bench.models.vae import VAE, VAEConfig
    from gvae_bench.profiles import TrainConfig
    from gvae_bench.execution.training import seed_everything, train

    def model():
        seed_everything(7)
        return VAE(VAEConfig(width=16, latent_dim=2), DataSpec(shape=(2,), kind="points"))

    data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(steps=10, batch_size=16, checkpoint_every=1000, log_every=1, checkpoint_seconds=0)
    straight = model()
    train(straight, data, config, tmp_path / "straight", seed=7)

    stopped, original, steps = model(), None, [0]
    original = stopped.train_step

    def train_step(stream):
        steps[0] += 1
        if steps[0] == 5:
            signal.raise_signal(signum)
        return original(stream)

    stopped.train_step = train_step
    with pytest.raises(raised):
        train(stopped, data, config, tmp_path / "run", seed=7, description="vae/points/seed7")
    assert safe_load(tmp_path / "run" / CHECKPOINT_FILE)["step"] == 5 and steps[0] == 5
    assert f"vae/points/seed7: {signal.Signals(signum).name} at step 5 of 10: checkpoint saved" in caplog.text
    resumed = model()
    outcome = train(resumed, data, config, tmp_path / "run", seed=7)
    assert outcome.resumed_from == 5 and [row["step"] for row in outcome.loss_log] == list(range(1, 11))
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
