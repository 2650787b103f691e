"""Parallel local runs: the same table as one run after another, and one progress line for the sweep."""

from __future__ import annotations


import pytest

from gvae_bench.errors import UserError
from gvae_bench.execution.executors import ExecutorOptions
from gvae_bench.execution.parallel import SweepProgress, finished_before, recorded_rate, split_threads
from gvae_bench.execution.records import RunRecord, RunStatus, run_folder, write_record
from gvae_bench.execution.runs import RunSpec
from gvae_bench.sweep import run_sweep


def test_workers_share_the_cpus():
    assert split_threads(None, 5, cpus=2) == (2, 1)
    assert split_threads(None, 1, cpus=8) == (1, 8)  # one run: one worker with every CPU
    assert split_threads(4, 10, cpus=8) == (4, 2)
    assert split_threads(3, 10, cpus=2) == (3, 1)  # never below one thread
    with pytest.raises(UserError, match="--workers"):
        split_threads(0, 3, cpus=2)


def test_the_time_left_places_the_remaining_steps_on_the_workers():
    progress = SweepProgress([("a", "m1", 100), ("b", "m2", 200), ("c", "m1", 100), ("d", "m3", 100)], workers=2)
    assert progress.line().endswith("time left not yet measured")
    progress.step("a", 0, 0.0)
    progress.step("a", 50, 50.0)  # 1 s a step: 50 s left
    progress.step("b", 0, 0.0)
    progress.step("b", 100, 50.0)  # 0.5 s a step: 50 s left
    # both workers free at 50 s; c (m1, 1 s a step) takes 100 s, d (m3 unmeasured: mean 0.75 s) 75 s
    assert progress.seconds_left() == pytest.approx(150.0)
    progress.finish("a")
    assert "1 done, 1 running, 2 waiting" in progress.line()


def test_a_run_not_yet_measured_goes_by_its_recorded_rate_before_the_mean():
    # d's configuration ran before at 0.1 s a step: 10 s, not the 75 s the mean rate would give
    progress = SweepProgress([("a", "m1", 100), ("b", "m2", 200), ("c", "m1", 100, 3.0), ("d", "m3", 100, 0.1)],
                             workers=2)
    progress.step("a", 0, 0.0)
    progress.step("a", 50, 50.0)
    progress.step("b", 0, 0.0)
    progress.step("b", 100, 50.0)
    # c goes by m1's rate measured in this sweep (1 s), not its record's 3 s: free at 150 s and 60 s
    assert progress.seconds_left() == pytest.approx(150.0)
    unmeasured = SweepProgress([("e", "m4", 100, 0.2)], workers=1)
    unmeasured.step("e", 40, 0.0)  # started, no rate yet: 60 steps at the recorded 0.2 s
    assert unmeasured.seconds_left() == pytest.approx(12.0)


def test_the_recorded_rate_is_that_of_finished_runs_from_step_0_at_the_same_threads(tmp_path):
    spec = RunSpec("vae", "mnist", "tuned", 3, tmp_path / "data", tmp_path)

    def record(seed, seconds, threads=1, resumed=0, status=RunStatus.FINISHED):
        run = RunRecord(status, "vae", "mnist", "tuned", seed, "abc", steps_done=1000, resumed_from_step=resumed,
                        train_seconds=seconds, environment={"torch_threads": threads})
        write_record(run_folder(tmp_path, "mnist", "vae", "tuned", "abc", seed), run)

    assert recorded_rate(spec, "abc", 1) is None
    record(0, 100.0)
    record(1, 300.0)
    record(2, 9000.0, threads=2)  # another thread count
    record(4, 9000.0, resumed=500)  # its seconds are the last attempt's only
    record(5, 9000.0, status=RunStatus.FAILED)
    assert recorded_rate(spec, "abc", 1) == pytest.approx(0.2)
    assert recorded_rate(spec, "other", 1) is None


def test_a_resumed_sweep_counts_its_finished_runs_done_not_waiting(tmp_path):
    spec = RunSpec("vae", "mnist", "tuned", 0, tmp_path / "data", tmp_path)
    assert not finished_before(spec, "abc")
    folder = run_folder(tmp_path, "mnist", "vae", "tuned", "abc", 0)
    write_record(folder, RunRecord(RunStatus.RUNNING, "vae", "mnist", "tuned", 0, "abc"))
    assert not finished_before(spec, "abc")  # cut short: its training is still to do
    write_record(folder, RunRecord(RunStatus.FINISHED, "vae", "mnist", "tuned", 0, "abc", steps_done=100))
    assert finished_before(spec, "abc") and not finished_before(spec, "other")
    progress = SweepProgress([("a", "vae", 100), ("b", "vae", 100)], workers=1)
    progress.finish("a")
    progress.step("b", 0, 0.0)
    progress.step("b", 50, 10.0)
    assert "1 done, 1 running, 0 waiting" in progress.line() and progress.seconds_left() == pytest.approx(10.0)


@pytest.mark.slow
def test_two_workers_give_the_table_of_one_worker_and_overlap_in_time(tmp_path, data_root):
    import torch

    common = dict(profile="smoke", seeds=[0, 1], data_root=data_root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one after another at the thread count each parallel run gets on 2 CPUs
    try:
        serial = run_sweep(["vae", "wgan_gp"], "ring8", out=tmp_path / "one", options=ExecutorOptions(workers=1),
                           **common)
    finally:
        torch.set_num_threads(threads)
    import multiprocessing
    import threading
    import time

    alive, done = [0], threading.Event()

    def count_runs() -> None:  # how many runs' processes live at once (their training may not overlap on a busy machine)
        while not done.is_set():
            alive.append(sum(p.name.startswith("gvae-bench run") for p in multiprocessing.active_children()))
            time.sleep(0.05)

    counter = threading.Thread(target=count_runs, daemon=True)
    counter.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr('gvae_bench.execution.parallel.available_cpus', lambda: 2)
        parallel = run_sweep(["vae", "wgan_gp"], "ring8", out=tmp_path / "two",
                             options=ExecutorOptions(workers=2), **common)
    done.set()
    counter.join()
    assert serial.exit_status == parallel.exit_status == 0
    assert {r.record.environment["torch_threads"] for r in parallel.results} == {1}
    for result in serial.results:
        record = result.record
        twin = next(r.record for r in parallel.results if (r.record.model, r.record.seed) == (record.model, record.seed))
        assert twin.metrics.keys() == record.metrics.keys()
        for name, value in record.metrics.items():
            expected = value.get("value")
            if expected is None:  # n/a in both, for the same reason
                assert twin.metrics[name].get("value") is None and twin.metrics[name].get("na") == value.get("na")
            else:
                assert twin.metrics[name].get("value") == pytest.approx(expected, rel=1e-6, abs=1e-9), name
    assert max(alive) == 2  # two runs' processes at once
    rows = (tmp_path / "two" / "leaderboards" / "ring8" / "table_modes.csv").read_text()
    assert rows == (tmp_path / "one" / "leaderboards" / "ring8" / "table_modes.csv").read_text()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("signals, sigint_ignored", [(("SIGTERM",), False), (("SIGINT",), False),
                                                     (("SIGINT", "SIGTERM"), False), (("SIGTERM",), True)])
def test_a_signal_to_the_runner_alone_stops_its_children_after_they_save(tmp_path, data_root, signals, sigint_ignored):
    """SIGTERM or SIGINT to the parent process only (a scheduler's stop, ``kill`` of a sweep started
    with ``nohup … &``: no terminal, so the children get no Ctrl-C of their own), and a second signal
    while they stop: the children get one SIGINT, save a checkpoint at their next step boundary and
    stop; the runner exits 130 at once, nothing is left running. Also when the runner starts with
    SIGINT ignored (a background job of a shell without job control), which its children inherit."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from gvae_bench.execution.checkpoints import CHECKPOINT_FILE

    from conftest import REPO

    args = [sys.executable, str(REPO / "runner.py"), "--models", "vae", "--dataset", "ring8", "--profile", "smoke",
            "--seeds", "0,1", "--workers", "2", "--set", "train.steps=200000", "--set", "train.checkpoint_every=100000",
            "--out", str(tmp_path)]
    env = {**os.environ, "GVAE_BENCH_OFFLINE": "1", "GVAE_BENCH_DATA": str(data_root)}
    disposition = signal.SIG_IGN if sigint_ignored else signal.SIG_DFL  # not whatever this test run inherited
    runner = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
    try:
        deadline = time.monotonic() + 240
        while len(list(tmp_path.glob("runs/ring8/vae/*/seed*/record.json"))) < 2:  # both runs have started
            assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
            time.sleep(0.5)
        time.sleep(8)  # and are in their training loops
        stopped_at = time.monotonic()
        for name in signals:  # a second one at once: it comes while the children save and stop
            runner.send_signal(getattr(signal, name))
        out, err = runner.communicate(timeout=120)
        assert time.monotonic() - stopped_at < 60, "the children were not told: the runner waited them out"
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    assert runner.returncode == 130, err
    assert "checkpoint saved" in err or "interrupted" in err
    checkpoints = list(tmp_path.glob(f"runs/ring8/vae/*/seed*/{CHECKPOINT_FILE}"))
    assert len(checkpoints) == 2  # each child saved at its step boundary
    for _ in range(40):  # no child left behind (multiprocessing's resource tracker leaves once the parent has)
        left = subprocess.run(["pgrep", "-s", str(runner.pid)], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.5)
    assert left == []


@pytest.mark.slow
def test_a_child_killed_mid_run_is_recorded_as_failed_and_the_sweep_goes_on(tmp_path, data_root):
    """SIGKILL (the out-of-memory killer, say) to a run's process: no traceback, that run is recorded
    as failed with the reason, and the sweep starts the next run; here every run is killed once it
    trains, so all three end failed and the sweep returns exit status 1."""
    import multiprocessing
    import os
    import signal
    import threading
    import time

    done, killed = threading.Event(), []

    def kill_runs() -> None:
        seen: dict[int, float] = {}
        while not done.is_set():
            for process in multiprocessing.active_children():
                if process.name.startswith("gvae-bench run") and process.pid not in killed:
                    first = seen.setdefault(process.pid, time.monotonic())
                    if time.monotonic() - first > 8:  # past its start: in its training loop
                        os.kill(process.pid, signal.SIGKILL)
                        killed.append(process.pid)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_runs, daemon=True)
    killer.start()
    try:
        summary = run_sweep(["vae"], "ring8", profile="smoke", seeds=[0, 1, 2], data_root=data_root, out=tmp_path,
                            settings={"train": [("steps", 200000)]}, options=ExecutorOptions(workers=2))
    finally:
        done.set()
        killer.join()
    assert summary.exit_status == 1 and not summary.interrupted and len(killed) == 3
    assert [r.record.status.value for r in summary.results] == ["failed"] * 3
    assert all("ended by SIGKILL" in r.record.reason for r in summary.results)
