"""The Ray executor on Ray's local instance: the same leaderboard as the local executor, failed and
diverged runs recorded while the sweep goes on, Ctrl-C that keeps finished records and resumes,
and one-line errors (exit 2) when Ray is missing or no cluster answers.

Each test that starts Ray gives it a temporary folder of its own (``RAY_TMPDIR``) and, when it ends,
checks that no process of that Ray instance is left (any that is gets stopped, by its id).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gvae_bench.errors import UserError
from gvae_bench.execution.executors import EXECUTORS, ExecutorOptions, RayExecutor, get_executor
from gvae_bench.execution.runs import RunSpec

from conftest import default_sigint

REPO = Path(__file__).resolve().parent.parent
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray is not installed: pip install -e '.[ray]' (CI installs it)")

SWEEP = ("--models", "vae,wgan_gp", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0,1")

PLUGIN = '''
"""Models for the Ray executor tests: one crashes, one kills its process, one diverges, one is slow, one reports its threads."""
import os
import time

import torch

from gvae_bench.registry import MODELS
from gvae_bench.models.vae import VAE


@MODELS.register("test_ray_crash")
class CrashVAE(VAE):
    """A VAE that raises at its second step."""

    def train_step(self, next_batch):
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps == 2:
            raise RuntimeError("simulated crash on a Ray worker")
        return super().train_step(next_batch)


@MODELS.register("test_ray_exit")
class ExitVAE(VAE):
    """A VAE whose process dies at its second step (as in an out-of-memory kill)."""

    def train_step(self, next_batch):
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps == 2:
            os._exit(3)
        return super().train_step(next_batch)


@MODELS.register("test_ray_nan")
class NaNVAE(VAE):
    """A VAE whose loss is NaN at the first step."""

    def train_step(self, next_batch):
        return {**super().train_step(next_batch), "loss": float("nan")}


@MODELS.register("test_ray_slow")
class SlowVAE(VAE):
    """A VAE that sleeps $TEST_RAY_STEP_SECONDS at each step after its fourth: it reaches its first
    checkpoint (smoke: step 4) at once, then cannot finish before the test interrupts it."""

    def train_step(self, next_batch):
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps > 4:
            time.sleep(float(os.environ.get("TEST_RAY_STEP_SECONDS", "0")))
        return super().train_step(next_batch)


@MODELS.register("test_ray_threads")
class ThreadsVAE(VAE):
    """A VAE that logs torch's thread count beside its losses."""

    def train_step(self, next_batch):
        return {**super().train_step(next_batch), "threads": float(torch.get_num_threads())}
'''


def _processes_with(marker: str) -> list[int]:
    """Ids of the processes whose environment holds ``marker`` (this test's Ray instance only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in environ:
            found.append(int(entry.name))
    return found


@pytest.fixture
def ray_env():
    """The environment of a sweep with Ray's local instance in a temporary folder of its own; on the
    way out, asserts that Ray was shut down (no process of that instance left) and removes the folder."""
    folder = tempfile.mkdtemp(prefix="gvray", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=folder, GVAE_BENCH_OFFLINE="1")
    yield env
    marker = f"RAY_TMPDIR={folder}"
    deadline = time.monotonic() + 15
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _processes_with(marker)
    for pid in left:  # started by this test; stopped by id
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)
    assert not left, f"Ray processes left behind after the sweep: {left}"


def _cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "runner.py"), *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def _records(out: Path) -> dict[str, dict]:
    return {str(path.parent.relative_to(out / "runs")): json.loads(path.read_text())
            for path in sorted(out.glob("runs/*/*/*/seed*/record.json"))}


def _without_build_line(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if " built " not in line)


# --- options and errors (no Ray instance is started) ----------------------------------------------

def test_executors_are_registered_by_name_and_unknown_ones_are_listed():
    assert {"local", "ray"} <= set(EXECUTORS)
    with pytest.raises(UserError, match=r"unknown executor 'dask'; executors: local, ray"):
        get_executor("dask")
    with pytest.raises(UserError, match=r"--ray-address applies to --executor ray"):
        get_executor("local", ExecutorOptions(address="auto"))


@needs_ray
def test_threads_and_resources_of_a_run():
    spec = RunSpec(model="vae", benchmark="ring8", profile="smoke", seed=0, data_root=Path("data"), out=Path("out"))
    # by default a run declares, and uses, the threads a local run in the driver would use
    assert RayExecutor().resources(spec, default_threads=3) == (3, 3.0, 0.0)
    assert RayExecutor(ExecutorOptions(cpus_per_run=2)).resources(spec, default_threads=3) == (2, 2.0, 0.0)
    assert RayExecutor(ExecutorOptions(cpus_per_run=0.5)).resources(spec, default_threads=3) == (1, 0.5, 0.0)
    # without --cpus-per-run, never more than the largest node offers (a container's CPU quota)
    assert RayExecutor().resources(spec, default_threads=32, largest_node_cpus=2.0) == (2, 2.0, 0.0)
    assert RayExecutor(ExecutorOptions(cpus_per_run=4)).resources(spec, 32, largest_node_cpus=2.0) == (4, 4.0, 0.0)
    cuda = dataclasses.replace(spec, device="cuda")
    assert RayExecutor(ExecutorOptions(cpus_per_run=1)).resources(cuda, default_threads=3) == (1, 1.0, 1.0)


def _cli_in_process(*args: str):
    """The command line in this process (quick): exit code and what it printed."""
    from gvae_bench.cli import cli

    result = CliRunner().invoke(cli, list(args), prog_name="runner.py")
    return result.exit_code, result.output


def _one_line_error_in_process(exit_code: int, output: str) -> str:
    assert exit_code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def test_asking_for_ray_without_it_installed_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    line = _one_line_error_in_process(*_cli_in_process(*SWEEP, "--executor", "ray", "--out", str(tmp_path)))
    assert "needs Ray" in line and "pip install 'gvae-bench[ray]'" in line
    assert not (tmp_path / "runs").exists()


@needs_ray
def test_an_address_where_no_cluster_answers_is_a_one_line_error(tmp_path, ray_env, monkeypatch):
    import ray

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = _one_line_error_in_process(*_cli_in_process(*SWEEP, "--executor", "ray", "--ray-address",
                                                       f"127.0.0.1:{port}", "--out", str(tmp_path)))
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in line
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", ray_env["RAY_TMPDIR"])  # where `auto` looks for a cluster: none there
    line = _one_line_error_in_process(*_cli_in_process(*SWEEP, "--executor", "ray", "--ray-address", "auto",
                                                       "--out", str(tmp_path)))
    assert "no Ray cluster to join at --ray-address auto" in line
    assert not ray.is_initialized() and not (tmp_path / "runs").exists()


# --- sweeps on Ray's local instance ---------------------------------------------------------------

@pytest.mark.subprocess
@needs_ray
def test_ray_sweep_writes_the_same_table4_as_the_local_executor(tmp_path, ray_env):
    local = _cli(*SWEEP, "--executor", "local", "--out", str(tmp_path / "local"), env=ray_env)
    assert local.returncode == 0, local.stderr
    remote = _cli(*SWEEP, "--executor", "ray", "--out", str(tmp_path / "ray"), env=ray_env)
    assert remote.returncode == 0, remote.stderr
    tables = [tmp_path / kind / "leaderboards" / "ring8" for kind in ("local", "ray")]
    assert (tables[0] / "table4.csv").read_text() == (tables[1] / "table4.csv").read_text()
    assert _without_build_line((tables[0] / "table4.md").read_text()) == \
        _without_build_line((tables[1] / "table4.md").read_text())
    local_records, ray_records = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert sorted(local_records) == sorted(ray_records) and len(ray_records) == 4
    for key, record in ray_records.items():
        assert record["status"] == "finished"
        assert record["metrics"]["mmd"]["value"] == local_records[key]["metrics"]["mmd"]["value"]
    assert "4/4" in remote.stderr and "failures=0" in remote.stderr  # the driver's one overall bar


@pytest.mark.subprocess
@needs_ray
def test_failures_are_recorded_ctrl_c_keeps_finished_records_and_a_second_start_resumes(tmp_path, ray_env):
    """One sweep on Ray's local instance tells the whole story of a user's sweep: a run that crashes,
    one whose worker process dies and one that diverges are recorded and the sweep goes on; Ctrl-C while a slow run is half-way
    cancels it, leaves every record of the runs done intact and exits promptly; the same command
    again skips what is final (finished, diverged), retries what failed and resumes the slow run
    from its checkpoint."""
    plugin = tmp_path / "ray_test_models.py"
    plugin.write_text(PLUGIN)
    out = tmp_path / "out"
    sweep_args = ("--plugin", str(plugin), "--models",
                  "test_ray_crash,test_ray_exit,test_ray_nan,test_ray_threads,test_ray_slow",
                  "--dataset", "ring8", "--profile", "smoke", "--executor", "ray", "--cpus-per-run", "1",
                  "--out", str(out))
    # OMP_NUM_THREADS=2 is what a Ray worker's torch would default to; each run declares 1 CPU and must use 1 thread
    env = {**ray_env, "OMP_NUM_THREADS": "2"}
    # as a terminal does on Ctrl-C: SIGINT to the driver's whole process group
    sweep = subprocess.Popen([sys.executable, str(REPO / "runner.py"), *sweep_args], cwd=REPO, text=True,
                             env={**env, "TEST_RAY_STEP_SECONDS": "60"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + 180
        while True:  # until the four quick runs are done and the slow one is half-way (its step-4 checkpoint)
            assert sweep.poll() is None, sweep.communicate()
            assert time.monotonic() < deadline, "the quick runs did not end in time"
            done = {key: (out / "runs" / key / "record.json").read_bytes()
                    for key, record in _records(out).items() if record["status"] != "running"}
            if len(done) == 4 and list(out.glob("runs/ring8/test_ray_slow/*/seed0/checkpoint.pt")):
                break
            time.sleep(0.2)
        interrupted_at = time.monotonic()
        os.killpg(sweep.pid, signal.SIGINT)
        _, stderr = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
            sweep.wait()
    assert sweep.returncode == 130, stderr
    assert time.monotonic() - interrupted_at < 30, "the driver did not exit promptly"
    assert "test_ray_crash seed 0: failed (RuntimeError: simulated crash on a Ray worker)" in stderr
    assert "test_ray_nan seed 0: diverged (non-finite loss at step 1" in stderr
    assert "test_ray_exit seed 0: failed (the Ray task died: " in stderr
    assert "test_ray_threads seed 0: finished" in stderr
    assert "4/5" in stderr and "failures=3" in stderr  # the driver's one overall bar
    assert "interrupted after 4 of 5 run(s)" in stderr and "the same command resumes the rest" in stderr
    for key, data in done.items():  # the records of the runs done are intact
        assert (out / "runs" / key / "record.json").read_bytes() == data
    by_model = {record["model"]: record for record in _records(out).values()}
    assert {model: record["status"] for model, record in by_model.items()} == {
        "test_ray_crash": "failed", "test_ray_exit": "failed", "test_ray_nan": "diverged",
        "test_ray_threads": "finished", "test_ray_slow": "running"}  # the slow one cancelled, and resumable
    assert "the Ray task died" in by_model["test_ray_exit"]["reason"]
    threads_run = out / "runs" / next(key for key in done if "test_ray_threads" in key)
    losses = (threads_run / "losses.csv").read_text().splitlines()
    column = losses[0].split(",").index("threads")
    assert {float(row.split(",")[column]) for row in losses[1:]} == {1.0}  # the run set its own thread count

    again = _cli(*sweep_args, env={**env, "TEST_RAY_STEP_SECONDS": "0"})
    assert again.returncode == 1, again.stderr  # the failed runs fail again: runs did not finish, exit 1
    assert "test_ray_threads seed 0: already finished, skipped" in again.stderr
    assert "test_ray_nan seed 0: already diverged, skipped" in again.stderr
    assert "5/5" in again.stderr and "failures=3" in again.stderr
    by_model = {record["model"]: record for record in _records(out).values()}
    assert by_model["test_ray_threads"]["attempts"] == 1 and by_model["test_ray_nan"]["attempts"] == 1
    for model in ("test_ray_crash", "test_ray_exit"):  # a failed run is retried, and fails again
        assert by_model[model]["status"] == "failed" and by_model[model]["attempts"] == 2
    slow = by_model["test_ray_slow"]
    assert slow["status"] == "finished" and slow["attempts"] == 2
    assert slow["resumed_from_step"] >= 4  # from the checkpoint the cancelled run left (smoke: every 4 steps)
    assert (out / "leaderboards" / "ring8" / "table4.csv").is_file()
