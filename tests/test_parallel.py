"""Parallel local runs: the same table as one run after another, and one progress line for the sweep."""

from __future__ import annotations

from datetime import datetime

import pytest

from gvae_bench.errors import UserError
from gvae_bench.execution.executors import ExecutorOptions
from gvae_bench.execution.parallel import SweepProgress, split_threads
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
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr('gvae_bench.execution.parallel.available_cpus', lambda: 2)
        parallel = run_sweep(["vae", "wgan_gp"], "ring8", out=tmp_path / "two",
                             options=ExecutorOptions(workers=2), **common)
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
    spans = sorted((datetime.fromisoformat(r.record.started), datetime.fromisoformat(r.record.ended))
                   for r in parallel.results)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))  # two runs at once
    rows = (tmp_path / "two" / "leaderboards" / "ring8" / "table_modes.csv").read_text()
    assert rows == (tmp_path / "one" / "leaderboards" / "ring8" / "table_modes.csv").read_text()
