"""gvae_bench.tuning: an equal tuning budget per model on Optuna, tiny (ring8, smoke profile, 4 steps)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

pytest.importorskip("optuna")

from gvae_bench.errors import UserError  # noqa: E402
from gvae_bench.tuning.outputs import tuned_overrides  # noqa: E402
from gvae_bench.tuning import (  # noqa: E402
    SCORE_NAME, default_storage, load_search_space, make_split, tune, validation_split,
)

REPO = Path(__file__).resolve().parent.parent
STEPS = 4


@pytest.fixture(scope="module")
def root() -> Path:
    return Path(os.environ.get("GVAE_BENCH_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("tuning")
    summary = tune(["vae", "wgan_gp"], "ring8", trials=3, profile="smoke", steps=STEPS, out=out, data_root=root)
    return out, summary


def _studies(out: Path):
    import optuna

    url = default_storage(out, "ring8")
    return {name: optuna.load_study(study_name=name, storage=url) for name in optuna.get_all_study_names(url)}


def test_table_lists_both_models_with_three_trials(tuned):
    out, summary = tuned
    folder = out / "tuning" / "ring8"
    with open(folder / "table_tuning.csv") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"vae", "wgan_gp"}
    for row in rows.values():
        assert row["trials"] == "3"
        assert int(row["finished"]) + int(row["pruned"]) + int(row["failed"]) == 3
        assert row["score"] == SCORE_NAME and row["direction"] == "minimize"
        assert row["steps_per_trial"] == str(STEPS) and row["profile"] == "smoke"
        assert float(row["train_seconds"]) > 0 and "fit first" in row["split"]
    for name in ("table_tuning.md", "budget_curve.png", "trial_scores.png", "best_configs.toml"):
        assert (folder / name).stat().st_size > 0
    assert [s.trials for s in summary.studies] == [3, 3]


def test_trials_record_run_split_and_score(tuned, root):
    from gvae_bench.execution.records import read_record

    out, _ = tuned
    studies = _studies(out)
    assert set(studies) == {"ring8-vae-smoke", "ring8-wgan_gp-smoke"}
    for study in studies.values():
        for trial in study.trials:
            attrs = trial.user_attrs
            assert {"run_dir", "config_hash", "status", "score", "direction", "split"} <= set(attrs)
            assert attrs["score"] == SCORE_NAME
            record = read_record(Path(attrs["run_dir"]))
            assert record.config_hash == attrs["config_hash"]
            assert Path(attrs["run_dir"]).is_relative_to(out / "tuning" / "ring8" / "trials")
            # the run trained on the fit rows only
            assert record.data["n_train"] == attrs["split"]["n_fit"]
            assert record.config["benchmark_config"]["train_limit"] == attrs["split"]["n_fit"]


def test_validation_rows_disjoint_from_test_and_same_for_every_model(tuned, root):
    from gvae_bench.execution.runs import RunSpec, resolve

    out, _ = tuned
    splits = [t.user_attrs["split"] for s in _studies(out).values() for t in s.trials]
    assert len({json.dumps(s, sort_keys=True) for s in splits}) == 1  # one split for every trial of both models
    spec = RunSpec(model="vae", benchmark="ring8", profile="smoke", seed=0, data_root=root, out=out)
    data = resolve(spec).benchmark.load()
    fit_idx, val_idx = validation_split(data.train, 0.2, seed=0)
    assert set(fit_idx.tolist()).isdisjoint(val_idx.tolist())
    assert sorted(fit_idx.tolist() + val_idx.tolist()) == list(range(len(data.train)))
    assert torch.equal(fit_idx, torch.arange(splits[0]["n_fit"]))  # train_limit keeps exactly these rows
    assert len(val_idx) == splits[0]["n_val"]
    val_rows = data.train[val_idx]
    # the validation rows are training rows, and none of them is a test row
    assert int(val_idx.max()) < len(data.train) and int(val_idx.min()) >= splits[0]["n_fit"]
    assert not (val_rows.flatten(1)[:, None, :] == data.test.flatten(1)[None, :, :]).all(-1).any()
    # the same rows for every model (the profile's pool does not depend on the model)
    for model in ("vae", "wgan_gp", "gvae"):
        split = make_split("ring8", "smoke", 0.2, 0, root, model=model)
        assert torch.equal(split.val_rows, val_rows)
        assert split.val_sha256 == splits[0]["val_sha256"]
    # seeded: the same seed, the same order; another seed, the same set
    assert torch.equal(validation_split(data.train, 0.2, 0)[1], val_idx)
    assert set(validation_split(data.train, 0.2, 5)[1].tolist()) == set(val_idx.tolist())


def test_restart_adds_no_trials_then_exactly_the_missing_ones(tuned, root):
    out, _ = tuned
    again = tune(["vae"], "ring8", trials=3, profile="smoke", steps=STEPS, out=out, data_root=root)
    assert [(s.trials, s.added) for s in again.studies] == [(3, 0)]
    more = tune(["vae"], "ring8", trials=5, profile="smoke", steps=STEPS, out=out, data_root=root)
    assert [(s.trials, s.added) for s in more.studies] == [(5, 2)]
    assert len(_studies(out)["ring8-vae-smoke"].trials) == 5


def test_tuned_overrides_are_plan_sweep_settings(tuned, root):
    from gvae_bench.execution.runs import resolve
    from gvae_bench.sweep import plan_sweep

    out, _ = tuned
    with open(out / "tuning" / "ring8" / "best_configs.toml", "rb") as handle:
        configs = tomllib.load(handle)
    settings = tuned_overrides(out, "ring8", "wgan_gp")
    assert set(dict(settings["model"])) == {"lr", "betas", "n_critic", "gp_weight"}
    assert dict(settings["model"])["betas"] == tuple(configs["wgan_gp"]["smoke"]["model"]["betas"])
    plan = plan_sweep(["wgan_gp"], "ring8", profile="smoke", settings=settings, out=out / "elsewhere",
                      data_root=root, device="cpu", check_data=False)
    config = resolve(plan.specs[0]).model_config
    assert config.lr == dict(settings["model"])["lr"] and config.n_critic == dict(settings["model"])["n_critic"]
    with pytest.raises(UserError):
        tuned_overrides(out, "ring8", "gvae")


def test_absurd_learning_rate_fails_every_trial_and_the_study_completes(tmp_path, root):
    from gvae_bench.execution.records import RunStatus

    absurd = {"lr": {"low": 1e6, "high": 1e8, "log": True, "source": "test: far beyond any sane Adam step"}}
    space = {"vae": absurd, "wgan_gp": absurd}
    summary = tune(["vae", "wgan_gp"], "ring8", trials=2, profile="smoke", steps=STEPS, out=tmp_path,
                   data_root=root, space=space)
    for study in summary.studies:
        assert (study.trials, study.failed, study.finished, study.best_value) == (2, 2, 0, None)
    for study in _studies(tmp_path).values():
        for trial in study.trials:
            assert trial.state.name == "FAIL"
            assert trial.user_attrs["status"] in (RunStatus.DIVERGED.value, RunStatus.FAILED.value,
                                                  RunStatus.FINISHED.value)  # finished: non-finite samples
            assert trial.user_attrs["reason"]
    with open(tmp_path / "tuning" / "ring8" / "table_tuning.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["failed"], r["best_score"]) for r in rows] == [("2", ""), ("2", "")]


@pytest.mark.subprocess
def test_two_processes_share_the_trial_count(tmp_path, root):
    code = ("import sys; from gvae_bench.tuning import tune; "
            f"tune(['vae'], 'ring8', trials=2, profile='smoke', steps={STEPS}, out=sys.argv[1], data_root=sys.argv[2])")
    env = {**os.environ, "GVAE_BENCH_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(root)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trials = _studies(tmp_path)["ring8-vae-smoke"].trials
    assert len(trials) == 2 and {t.number for t in trials} == {0, 1}
    assert all(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in trials)


def test_bad_input_is_a_one_line_user_error(tmp_path, root):
    cases = [dict(models=["nope"]), dict(trials=0), dict(models=["vae"], space={"wgan_gp": {}}),
             dict(sampler="grid"), dict(steps=0), dict(validation_fraction=1.5)]
    for case in cases:
        options = {"models": ["vae"], "trials": 1, "steps": STEPS, **case}
        with pytest.raises(UserError) as caught:
            tune(options.pop("models"), "ring8", profile="smoke", out=tmp_path, data_root=root, **options)
        assert "\n" not in str(caught.value)


def test_search_space_file_names_only_existing_fields_with_sources():
    import dataclasses

    from gvae_bench.registry import MODELS
    from gvae_bench.tuning import _distributions

    space = load_search_space()
    assert {"smoke", "quick"} <= set(space["budget"])
    builtin = [entry.name for entry in MODELS.entries() if entry.origin is None]  # not other tests' plugins
    assert len(builtin) == 5
    for model in builtin:
        assert model in space, model
        fields = {f.name for f in dataclasses.fields(MODELS.get(model).Config)}
        assert _distributions(model, space[model])
        for name, spec in space[model].items():
            assert spec.get("field", name) in fields and spec["source"]
    bad = {"vae": {"n_critic": {"low": 1, "high": 5, "source": "x"}}}
    with pytest.raises(UserError):
        _distributions("vae", bad["vae"])


def test_budget_per_dataset_is_over_the_profiles():
    from gvae_bench.tuning.space import budget_defaults

    assert budget_defaults("quick") == {"trials": 20, "validation_fraction": 0.1}
    mnist = budget_defaults("quick", "mnist")
    assert mnist == {"trials": 16, "validation_fraction": 0.1, "steps": 300, "score_samples": 2000}
    assert budget_defaults("quick", "fashion_mnist") == budget_defaults("quick")


def test_trials_never_read_the_test_split(tuned):
    from gvae_bench.execution.records import read_record

    out, _ = tuned
    for study in _studies(out).values():
        for trial in study.trials:
            if "run_dir" in trial.user_attrs and trial.state.name != "FAIL":
                record = read_record(Path(trial.user_attrs["run_dir"]))
                assert record.metrics == {} and "not evaluated on the test split" in record.reason


@pytest.mark.subprocess
def test_a_tune_killed_with_sigkill_finishes_on_the_next_call_without_redoing_finished_trials(tmp_path, root):
    import signal
    import time

    import optuna

    # a million steps: the first trial is certainly still training when it is killed, however fast the machine
    code = ("import sys; from gvae_bench.tuning import tune; "
            "tune(['vae'], 'ring8', trials=3, profile='smoke', steps=1_000_000, out=sys.argv[1], data_root=sys.argv[2])")
    env = {**os.environ, "GVAE_BENCH_OFFLINE": "1"}
    log = tmp_path / "killed-tune.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(root)], cwd=REPO, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    url = default_storage(tmp_path, "ring8")
    # kill it in its first trial's training, seen from the files alone: opening the study from here
    # while the child creates its schema could make the child's storage fail
    deadline = time.monotonic() + 600
    try:
        while not list((tmp_path / "tuning" / "ring8").glob("trials/**/losses.csv")):
            assert proc.poll() is None, f"the tune ended by itself (exit {proc.returncode}): {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no trial trained within 600 s: {log.read_text()[-2000:]}"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    summary = tune(["vae"], "ring8", trials=3, profile="smoke", steps=STEPS, out=tmp_path, data_root=root)
    study = optuna.load_study(study_name="ring8-vae-smoke", storage=url)
    assert [t.state.name for t in study.trials][0] == "FAIL"
    assert "killed" in study.trials[0].user_attrs["reason"]
    assert len(study.trials) == 3 and summary.studies[0].added == 2
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials[1:])
    finished = {t.number: (Path(t.user_attrs["run_dir"]) / "record.json").stat().st_mtime_ns for t in study.trials[1:]}
    again = tune(["vae"], "ring8", trials=3, profile="smoke", steps=STEPS, out=tmp_path, data_root=root)
    assert again.studies[0].added == 0  # finished: nothing added, no run trained again
    assert finished == {t.number: (Path(t.user_attrs["run_dir"]) / "record.json").stat().st_mtime_ns
                        for t in optuna.load_study(study_name="ring8-vae-smoke", storage=url).trials[1:]}
