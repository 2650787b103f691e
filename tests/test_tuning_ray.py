"""gvae_bench.tuning.ray: trials run by Ray workers sharing one storage, each trial once."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("optuna")

from gvae_bench.tuning import StudyResult, TuningSummary, default_storage  # noqa: E402
from gvae_bench.tuning.ray import merge_summaries  # noqa: E402

from test_executor_ray import _cli, _one_line_error, needs_ray, ray_env  # noqa: E402,F401  (ray_env: a fixture)


def _study(name: str, trials: int, added: int, best: float | None) -> StudyResult:
    return StudyResult(model=name.split("-")[1], profile="smoke", study_name=name, trials=trials, finished=trials,
                       pruned=0, failed=0, added=added, best_value=best, best_fields=None)


def test_merged_summary_sums_what_each_worker_added_and_keeps_the_latest_counts():
    first = TuningSummary("ring8", "sqlite:///x", studies=[_study("ring8-vae-smoke", 2, 2, 0.5),
                                                            _study("ring8-wgan_gp-smoke", 5, 3, 0.2)])
    second = TuningSummary("ring8", "sqlite:///x", studies=[_study("ring8-vae-smoke", 5, 3, 0.1),
                                                             _study("ring8-wgan_gp-smoke", 5, 2, 0.2)])
    merged = merge_summaries("ring8", "sqlite:///x", [first, second])
    assert [(s.study_name, s.trials, s.added, s.best_value) for s in merged.studies] == [
        ("ring8-vae-smoke", 5, 5, 0.1), ("ring8-wgan_gp-smoke", 5, 5, 0.2)]


@pytest.mark.subprocess
@needs_ray
def test_two_ray_workers_complete_the_study_once_and_write_the_table(tmp_path, ray_env):
    import optuna

    root = ray_env.get("GVAE_BENCH_DATA")
    args = ["tune", "--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--trials", "4", "--steps", "4",
            "--executor", "ray", "--workers", "2", "--out", str(tmp_path)] + (["--data-root", root] if root else [])
    result = _cli(*args, env=ray_env)
    assert result.returncode == 0, result.stderr
    assert "vae: 4 trial(s) (4 new" in result.stderr
    study = optuna.load_study(study_name="ring8-vae-smoke", storage=default_storage(tmp_path, "ring8"))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert len({t.user_attrs["run_dir"] for t in study.trials}) == 4  # four runs, none trained twice
    with open(tmp_path / "tuning" / "ring8" / "table_tuning.csv") as handle:
        assert [(r["model"], r["trials"]) for r in csv.DictReader(handle)] == [("vae", "4")]


def test_ray_only_options_without_the_ray_executor_are_a_one_line_error(tmp_path):
    import os

    result = _cli("tune", "--models", "vae", "--dataset", "ring8", "--workers", "2", "--out", str(tmp_path),
                  env={**os.environ, "GVAE_BENCH_OFFLINE": "1"})
    assert "--workers needs --executor ray" in _one_line_error(result)
