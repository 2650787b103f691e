"""A run end to end: a crash is recorded and resumes, a diverged run does not stop the sweep,
a finished run is skipped, and a run another process holds is left alone."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from gvae_bench.execution.executors import LocalExecutor
from gvae_bench.registry import MODELS
from gvae_bench.execution.records import Outcome
from gvae_bench.execution.run import execute_run as _execute_run
from gvae_bench.execution.runs import RunSpec, resolve
from gvae_bench.models.vae import VAE


def execute_run(spec: RunSpec) -> dict:
    """The run's record as its JSON object, with ``skipped`` where the sweep did not run it."""
    record, outcome = _execute_run(spec)
    return {**record.to_json(), "skipped": outcome != Outcome.RAN}


class _Crash(RuntimeError):
    pass


@MODELS.register("test_flaky_vae")
class FlakyVAE(VAE):
    """A VAE that crashes once at step 6 (tests only)."""

    crash_at: int | None = 6
    steps_seen = 0

    def train_step(self, next_batch):
        type(self).steps_seen += 1
        if self.crash_at is not None and type(self).steps_seen == self.crash_at:
            raise _Crash("simulated crash at step 6")
        return super().train_step(next_batch)


@MODELS.register("test_nan_vae")
class NaNVAE(VAE):
    """A VAE whose loss is NaN at the first step (tests only)."""

    def train_step(self, next_batch):
        return {**super().train_step(next_batch), "loss": float("nan")}


def _spec(model: str, out: Path, seed: int = 0) -> RunSpec:
    return RunSpec(model=model, benchmark="ring8", profile="smoke", seed=seed, data_root=out, out=out)


def test_crash_is_recorded_then_resumed_from_the_checkpoint(tmp_path):
    FlakyVAE.steps_seen = 0
    first = execute_run(_spec("test_flaky_vae", tmp_path))
    assert first["status"] == "failed" and "simulated crash" in first["reason"]
    second = execute_run(_spec("test_flaky_vae", tmp_path))  # smoke checkpoints every 4 steps
    assert second["status"] == "finished" and second["resumed_from_step"] == 4 and second["attempts"] == 2
    third = execute_run(_spec("test_flaky_vae", tmp_path))
    assert third["skipped"] and third["status"] == "finished"


def test_a_diverged_run_does_not_stop_the_sweep(tmp_path):
    records = [record.to_json() for record, _ in LocalExecutor().run([_spec("test_nan_vae", tmp_path),
                                                                        _spec("vae", tmp_path)])]
    assert [r["status"] for r in records] == ["diverged", "finished"]
    assert "non-finite loss at step 1" in records[0]["reason"]
    again = execute_run(_spec("test_nan_vae", tmp_path))
    assert again["skipped"] and again["status"] == "diverged"  # a diverged run is final, not retried


def test_a_run_locked_by_another_process_is_skipped(tmp_path):
    run_dir = resolve(_spec("vae", tmp_path)).run_dir
    run_dir.mkdir(parents=True)
    fd = os.open(run_dir / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = execute_run(_spec("vae", tmp_path))
    finally:
        os.close(fd)
    assert record["skipped"] and record["status"] == "running" and not (run_dir / "record.json").exists()
    assert execute_run(_spec("vae", tmp_path))["status"] == "finished"


def test_rescore_adds_missing_metrics_with_the_same_samples(tmp_path, data_root):
    import json

    from gvae_bench.execution.run import rescore

    spec = RunSpec(model="vae", benchmark="mnist", profile="smoke", seed=0, data_root=data_root, out=tmp_path)
    record = execute_run(spec)
    run_dir = resolve(spec).run_dir
    original = {name: record["metrics"][name]["value"] for name in ("fid", "mmd")}
    trimmed = {**record, "metrics": {k: v for k, v in record["metrics"].items() if k not in ("fid", "mmd")}}
    (run_dir / "record.json").write_text(json.dumps(trimmed))
    assert rescore(run_dir, data_root) == ["fid", "mmd"]
    rescored = json.loads((run_dir / "record.json").read_text())
    assert {name: rescored["metrics"][name]["value"] for name in ("fid", "mmd")} == pytest.approx(original, rel=1e-6)
    assert rescored["rescored"][0]["metrics"] == ["fid", "mmd"]
    assert rescore(run_dir, data_root) == []  # nothing missing any more
    # a value recorded before its metric gained a reference (has_reference) is evaluated again to add it
    no_reference = {**rescored["metrics"]["recall"], "reference": None}
    (run_dir / "record.json").write_text(json.dumps({**rescored, "metrics": {**rescored["metrics"], "recall": no_reference}}))
    assert rescore(run_dir, data_root) == ["recall"]
    again = json.loads((run_dir / "record.json").read_text())["metrics"]["recall"]
    assert again["value"] == no_reference["value"] and again["reference"] == rescored["metrics"]["recall"]["reference"]
    assert rescore(run_dir, data_root) == []
    # ... but not one whose reference was undefined at its sample counts, and says why (copying on 20 CT slices)
    record_now = json.loads((run_dir / "record.json").read_text())
    undefined = {**record_now["metrics"]["recall"], "reference": None,
                 "details": {**record_now["metrics"]["recall"]["details"], "reference_na": "too few held-out rows"}}
    (run_dir / "record.json").write_text(json.dumps({**record_now, "metrics": {**record_now["metrics"], "recall": undefined}}))
    assert rescore(run_dir, data_root) == []


def test_a_sweep_meeting_its_finished_run_adds_the_metrics_registered_since(tmp_path):
    import json

    spec = _spec("vae", tmp_path)
    record = execute_run(spec)
    run_dir = resolve(spec).run_dir
    trimmed = {**record, "metrics": {k: v for k, v in record["metrics"].items() if k != "mmd"}}
    (run_dir / "record.json").write_text(json.dumps(trimmed))
    again = execute_run(spec)  # finished: skipped, but the missing metric is evaluated from the checkpoint
    assert again["skipped"] and again["metrics"]["mmd"]["value"] == pytest.approx(record["metrics"]["mmd"]["value"], rel=1e-6)
    assert json.loads((run_dir / "record.json").read_text())["rescored"][0]["metrics"] == ["mmd"]
    (run_dir / "checkpoint.pt").unlink()  # without weights nothing can be added, and nothing breaks
    trimmed["metrics"].pop("ms_ssim", None)
    (run_dir / "record.json").write_text(json.dumps(trimmed))
    assert "ms_ssim" not in execute_run(spec)["metrics"]
