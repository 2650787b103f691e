"""No lost work: a run sent SIGINT or SIGTERM a few seconds in, long before its first step-based
checkpoint, saves the step it is at; the same command then says "resuming from step S" and ends
with the losses and metrics of a run never stopped. The same holds for a run in a child process of a
process pool (the parallel local executor's kind) when Ctrl-C reaches the whole process group."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import CLI_ENV, REPO, default_sigint, invoke_cli
from gvae_bench.execution.checkpoints import CHECKPOINT_FILE, safe_load

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

STEPS = 500
# checkpoints by steps only after the last step, none by time: what is saved before it comes from the signal
TRAIN = {"steps": STEPS, "checkpoint_every": 5000, "checkpoint_seconds": 0, "threads": 1}
ARGS = ("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0", "--device", "cpu",
        *(item for name, value in TRAIN.items() for item in ("--set", f"train.{name}={value}")))
STEP_LINE = re.compile(r"vae/ring8/seed0: step (\d+)/")

# a pool of one spawned child process that trains the run, as the parallel local executor does
POOL = """
import concurrent.futures, logging, multiprocessing, sys
from pathlib import Path

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")  # in the child too
logging.getLogger("gvae_bench.progress").setLevel(logging.INFO)

if __name__ == "__main__":
    from gvae_bench.execution.run import execute_run
    from gvae_bench.execution.runs import RunSpec, resolve_data_root

    spec = RunSpec(model="vae", benchmark="ring8", profile="smoke", seed=0, data_root=resolve_data_root(),
                   out=Path(sys.argv[1]), train_overrides=tuple(TRAIN.items()))
    try:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(execute_run, spec).result()
    except KeyboardInterrupt:
        sys.exit(130)
"""


def _run_dir(out: Path) -> Path:
    (found,) = (out / "runs" / "ring8" / "vae").glob("smoke-*/seed0")
    return found


def _ending(out: Path) -> tuple[dict, str]:
    """The record's metrics (without their timings) and the loss log of the run under ``out``."""
    run_dir = _run_dir(out)
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "finished"
    metrics = {name: {k: v for k, v in result.items() if k != "seconds"} for name, result in record["metrics"].items()}
    return metrics, (run_dir / "losses.csv").read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("uninterrupted")
    result = invoke_cli(*ARGS, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "vae/ring8 seed 0: starting in" in result.stderr and "resuming" not in result.stderr
    return _ending(out)


def _stop_a_few_steps_in(command: list[str], signum: int, group: bool, env: dict[str, str]) -> tuple[int, str]:
    """Start ``command``, send ``signum`` once it reports its first training step (a progress line a
    step), to its process group when ``group`` (what Ctrl-C in a terminal does), and return its exit
    status and stderr. The signal comes a few seconds after the start (the imports, the data), long
    before the run's first checkpoint."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO,
                               env={**os.environ, **CLI_ENV, "GVAE_BENCH_PROGRESS_SECONDS": "0", **env},
                               preexec_fn=default_sigint, start_new_session=group)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            found = STEP_LINE.search(line)
            if found and int(found.group(1)) > 0:
                (os.killpg if group else os.kill)(process.pid, signum)
                break
        rest = process.communicate(timeout=300)[1]
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, "".join(seen) + rest


def _resumes_to_the_same_end(out: Path, stderr: str, signum: int, uninterrupted: tuple[dict, str]) -> None:
    step = int(safe_load(_run_dir(out) / CHECKPOINT_FILE)["step"])
    assert 0 < step < STEPS  # saved by the signal: no step-based or time-based checkpoint comes before the last step
    assert f"{signal.Signals(signum).name} at step {step} of {STEPS}: checkpoint saved" in stderr
    rerun = invoke_cli(*ARGS, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr
    assert f"vae/ring8 seed 0: resuming from step {step} of {STEPS} in" in rerun.stderr
    assert "starting in" not in rerun.stderr
    record = json.loads((_run_dir(out) / "record.json").read_text())
    assert record["resumed_from_step"] == step and record["attempts"] == 2
    metrics, losses = _ending(out)
    assert losses == uninterrupted[1]  # every logged loss of every step, bit for bit
    assert metrics == uninterrupted[0]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_a_few_steps_in_resumes_from_that_step_to_the_same_end(tmp_path, uninterrupted, signum, status):
    """SIGINT: the command ends with 130, as Ctrl-C always did; SIGTERM: the process ends by the signal
    (its default), after the checkpoint."""
    status_seen, stderr = _stop_a_few_steps_in([sys.executable, str(REPO / "runner.py"), *ARGS, "--out", str(tmp_path)],
                                               signum, group=False, env={})
    assert status_seen == status, stderr
    assert "vae/ring8 seed 0: starting in" in stderr
    _resumes_to_the_same_end(tmp_path, stderr, signum, uninterrupted)


def test_ctrl_c_reaches_a_run_in_a_spawned_child_process_which_saves_before_it_stops(tmp_path, uninterrupted):
    script = tmp_path / "pool.py"
    script.write_text(textwrap.dedent(POOL).replace("TRAIN.items()", repr(tuple(TRAIN.items()))))
    out = tmp_path / "out"
    status, stderr = _stop_a_few_steps_in([sys.executable, str(script), str(out)], signal.SIGINT, group=True,
                                          env={"PYTHONPATH": str(REPO)})
    assert status == 130, stderr
    _resumes_to_the_same_end(out, stderr, signal.SIGINT, uninterrupted)
