"""The command line as a user meets it: listings, one-line errors with exit status 2, a whole sweep."""

from __future__ import annotations

import json

from tests.conftest import invoke_cli


def _one_line_error(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_list_prints_every_registered_name_with_a_description():
    result = invoke_cli("list")
    assert result.returncode == 0, result.stderr
    for name in ("vae", "wgan_gp", "mnist", "fashion_mnist", "ring8", "grid25", "image_folder", "cifar10", "mmd", "ms_ssim",
                 "smoke", "quick", "paper"):
        line = next(l for l in result.stdout.splitlines() if l.strip().startswith(name + " "))
        assert len(line.split()) > 2, line


def test_help_explains_the_options():
    result = invoke_cli("--help")
    assert result.returncode == 0
    for option in ("--models", "--dataset", "--profile", "--seeds", "--data-root", "--out", "--device", "--plugin"):
        assert option in result.stdout


def test_unknown_model_lists_the_registered_ones(tmp_path):
    line = _one_line_error(invoke_cli("--models", "vae,gan9000", "--dataset", "ring8", "--out", str(tmp_path)))
    assert "gan9000" in line and "vae" in line and "wgan_gp" in line


def test_unknown_dataset_lists_the_registered_ones(tmp_path):
    line = _one_line_error(invoke_cli("--models", "vae", "--dataset", "cifar99", "--out", str(tmp_path)))
    assert "cifar99" in line and "mnist" in line and "ring8" in line


def test_bad_seeds_and_unknown_profile(tmp_path):
    line = _one_line_error(invoke_cli("--models", "vae", "--dataset", "ring8", "--seeds", "x", "--out", str(tmp_path)))
    assert "--seeds" in line and "0,1,2" in line
    line = _one_line_error(invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "huge", "--out", str(tmp_path)))
    assert "huge" in line and "smoke" in line and "quick" in line


def test_data_root_without_the_files_names_what_to_provide(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = _one_line_error(invoke_cli("--models", "vae", "--dataset", "mnist", "--profile", "smoke",
                                      "--data-root", str(empty), "--out", str(tmp_path / "out")))
    assert str(empty / "MNIST" / "raw") in line and "t10k-images-idx3-ubyte" in line


def test_smoke_sweep_writes_records_and_leaderboards_and_skips_when_finished(smoke_vae_wgan_mnist):
    out, first = smoke_vae_wgan_mnist.out, smoke_vae_wgan_mnist.first
    table = out / "leaderboards" / "mnist" / "table4.md"
    assert f"leaderboard: {table}" in first.stdout
    text = table.read_text()
    assert "| vae | 8 | smoke |" in text and "| wgan_gp | 8 | smoke |" in text and "(n=2)" in text
    assert "real data (test set)" in text and "(published)" in text
    records = sorted(out.glob("runs/mnist/*/*/seed*/record.json"))
    assert len(records) == 4
    for path in records:
        record = json.loads(path.read_text())
        assert record["status"] == "finished"
        assert record["metrics"]["mmd"]["n_generated"] == 200 and record["metrics"]["mmd"]["n_real"] == 200
        assert record["git"]["commit"] and record["versions"]["torch"]
        for picture in ("samples.png", "losses.png", "losses.csv", "config.json"):
            assert (path.parent / picture).is_file(), picture
    again = invoke_cli(*smoke_vae_wgan_mnist.args)  # rewrites the same leaderboards, trains nothing
    assert again.returncode == 0 and again.stderr.count("skipped") == 4


def test_a_run_held_by_another_sweep_is_reported_as_running_there_not_as_a_failure(tmp_path):
    import fcntl
    import os

    from gvae_bench.execution.runs import RunSpec, resolve

    out = tmp_path / "results"
    held = resolve(RunSpec(model="vae", benchmark="ring8", profile="smoke", seed=1, data_root=out, out=out)).run_dir
    held.mkdir(parents=True)
    fd = os.open(held / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a second sweep working on seed 1 would
        result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0,1",
                            "--out", str(out))
    finally:
        os.close(fd)
    assert result.returncode == 0, result.stderr
    assert "vae seed 1: running in another process" in result.stderr
    assert "1 run(s) still running in another process: vae seed 1" in result.stderr
    assert "did not finish" not in result.stderr
    row = next(line for line in (out / "leaderboards" / "ring8" / "table_modes.md").read_text().splitlines()
               if line.startswith("| vae |"))
    assert "(n=1, no interval)" in row and "(n=2)" not in row  # seed 0 only, until seed 1 finishes


def test_mnist_table4_carries_the_classifier_feature_metrics(smoke_vae_wgan_mnist):
    out = smoke_vae_wgan_mnist.out
    header = next(line for line in (out / "leaderboards" / "mnist" / "table4.md").read_text().splitlines()
                  if line.startswith("| model |"))
    for name in ("mmd ↓", "ms_ssim ↓", "fid ↓", "kid ↓", "precision ↑", "recall ↑", "density ↑", "coverage ↑"):
        assert name in header
    record = json.loads(next(out.glob("runs/mnist/vae/*/seed0/record.json")).read_text())
    details = record["metrics"]["fid"]["details"]
    assert details["classifier_key"].startswith("mnist-") and 0 < details["classifier_test_accuracy"] <= 1
    assert record["config"]["classifier"]["train_limit"] == 2000  # the smoke profile's small classifier


def test_export_from_a_committed_run_without_its_checkpoint_is_a_clear_error(tmp_path):
    import shutil

    from tests.conftest import REPO

    committed = REPO / "results" / "reference" / "runs" / "ct_folder" / "vae" / "quick-f18e84d1fc" / "seed0"
    run_dir = tmp_path / "seed0"
    shutil.copytree(committed, run_dir, ignore=shutil.ignore_patterns("checkpoint.pt"))  # as in a fresh clone
    result = invoke_cli("export-nifti", str(run_dir), "-n", "1", "--data-root", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "checkpoint.pt" in result.stderr
