"""Resolve once (issue 31, item 3): the plan resolves each run once and hands it to the run; the
record names the config hash of its profile's own settings, so the tables tell runs with overrides
from runs at the profile's settings without resolving again."""

from __future__ import annotations

from pathlib import Path

import pytest

import gvae_bench.execution.run as run_module
import gvae_bench.execution.runs as runs_module
import gvae_bench.sweep as sweep_module
from gvae_bench.execution.records import Outcome, RunRecord, RunStatus
from gvae_bench.execution.runs import ResolvedRun, RunSpec, resolve
from gvae_bench.results.collect import at_profile_settings
from gvae_bench.sweep import plan_sweep


def _count_resolves(monkeypatch: pytest.MonkeyPatch, module) -> list[RunSpec]:
    seen: list[RunSpec] = []

    def counting(spec: RunSpec) -> ResolvedRun:
        seen.append(spec)
        return resolve(spec)

    monkeypatch.setattr(module, "resolve", counting)
    return seen


def test_the_plan_resolves_each_run_once_and_each_model_profile_once(tmp_path, monkeypatch):
    seen = _count_resolves(monkeypatch, sweep_module)
    plan = plan_sweep(["vae", "wgan_gp"], "ring8", profile="smoke", seeds=[0, 1], out=tmp_path, data_root=tmp_path)
    assert len(plan.specs) == 4 and len(plan.runs) == 4
    assert len(seen) == 4 + 2  # each run once, plus each model's profile settings once
    assert [run.spec for run in plan.runs] == list(plan.specs)
    for run in plan.runs:  # no override: the run is at its profile's own settings
        assert run.spec.profile_config_hash == run.config_hash


def test_an_override_is_told_apart_by_the_hash_the_plan_names(tmp_path):
    plan = plan_sweep(["vae"], "ring8", profile="smoke", out=tmp_path, data_root=tmp_path,
                      settings={"model": [("latent_dim", 3)]})
    (run,) = plan.runs
    assert run.spec.profile_config_hash is not None and run.spec.profile_config_hash != run.config_hash
    default = resolve(RunSpec("vae", "ring8", "smoke", 0, tmp_path, tmp_path))
    assert run.spec.profile_config_hash == default.config_hash


def test_a_resolved_run_is_not_resolved_again_and_its_record_names_the_profile_hash(tmp_path, monkeypatch):
    plan = plan_sweep(["vae"], "ring8", profile="smoke", out=tmp_path, data_root=tmp_path)
    seen = _count_resolves(monkeypatch, run_module)
    record, outcome = run_module.execute_run(plan.runs[0])
    assert outcome == Outcome.RAN and record.status == RunStatus.FINISHED
    assert seen == []
    assert record.profile_config_hash == record.config_hash == plan.runs[0].config_hash
    assert RunRecord.from_json(record.to_json()).profile_config_hash == record.config_hash


def _record(config_hash: str, profile_config_hash: str | None) -> RunRecord:
    return RunRecord(status=RunStatus.FINISHED, model="vae", benchmark="ring8", profile="smoke", seed=0,
                     config_hash=config_hash, profile_config_hash=profile_config_hash)


def test_the_tables_read_the_profile_hash_without_resolving(monkeypatch):
    def refuse(spec: RunSpec) -> ResolvedRun:
        raise AssertionError("resolved again")

    monkeypatch.setattr(runs_module, "resolve", refuse)
    assert at_profile_settings(_record("abc", "abc"))
    assert not at_profile_settings(_record("abc", "def"))


def test_a_record_from_before_names_no_profile_hash_and_is_resolved(tmp_path):
    default = resolve(RunSpec("vae", "ring8", "smoke", 0, Path("data"), Path(".")))
    assert at_profile_settings(_record(default.config_hash, None))
    assert not at_profile_settings(_record("0" * len(default.config_hash), None))


def test_leaderboard_and_report_read_each_record_once(tmp_path, monkeypatch):
    """``runner.py leaderboard`` writes the tables, the aggregate and the report from one read of each record."""
    from click.testing import CliRunner

    import gvae_bench.results.collect as collect
    from gvae_bench.cli import cli
    from gvae_bench.execution.records import read_record, write_record

    for seed, value in enumerate([1.0, 2.0, 3.0]):
        metrics = {"mmd": {"value": value, "higher_is_better": False, "table": "table4", "n_generated": 500,
                           "n_real": 500, "reference": 0.001}}
        write_record(tmp_path / "runs" / "mnist" / "a" / "x" / f"seed{seed}",
                     {"model": "a", "benchmark": "mnist", "profile": "quick", "seed": seed, "status": "finished",
                      "config_hash": "abc", "git": {"commit": "0123456789abcdef", "dirty": False}, "metrics": metrics})
    reads: list[Path] = []

    def counting(run_dir: Path):
        reads.append(Path(run_dir))
        return read_record(run_dir)

    monkeypatch.setattr(collect, "read_record", counting)
    result = CliRunner().invoke(cli, ["leaderboard", "--dataset", "mnist", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "report:" in result.output
    assert sorted(reads) == sorted(tmp_path / "runs" / "mnist" / "a" / "x" / f"seed{s}" for s in range(3))
    reads.clear()
    collect.read_records(tmp_path, "mnist")
    collect.read_records(tmp_path, "mnist")
    assert len(reads) == 6  # outside the block every call reads from disk again
