"""A newcomer's first commands: their runs go to a git-ignored folder, never into the committed
reference results; progress shows in a log; the help lists every profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, invoke_cli
from gvae_bench.benchmarks.torchvision_images import MNIST
from gvae_bench.errors import DataMissingError
from gvae_bench.profiles import profile_names
from gvae_bench.execution.runs import DEFAULT_OUT


def test_the_default_output_folder_is_git_ignored_and_apart_from_the_reference():
    assert DEFAULT_OUT.parts == ("results", "local")
    probe = DEFAULT_OUT / "runs" / "ring8" / "vae" / "quick-x" / "seed0" / "record.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=REPO)
    assert ignored.returncode == 0  # git status never shows a user's runs
    reference = subprocess.run(["git", "check-ignore", "-q", "results/reference/runs/ring8/x/record.json"], cwd=REPO)
    assert reference.returncode == 1


def test_a_sweep_off_a_terminal_logs_progress_lines(tmp_path):
    result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--set", "train.steps=300",
                        "--out", str(tmp_path), env={"GVAE_BENCH_PROGRESS_SECONDS": "0"})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any("vae/ring8 seed 0: starting in" in line for line in lines)
    progress = [line for line in lines if "vae/ring8/seed0: step " in line]
    assert progress and "step 300/300, loss " in progress[-1] and "elapsed, about" in progress[-1]
    assert "  vae seed 0: finished" in lines


def test_help_lists_every_profile():
    result = invoke_cli("--help")
    text = " ".join(result.stdout.split())
    assert all(name in text for name in profile_names()) and "likelihood" in text


def test_a_failed_download_leaves_no_empty_folders(tmp_path, monkeypatch):
    class Unreachable:
        def __init__(self, root, train, download):
            if download:
                (tmp_path / "data" / "Unreachable" / "raw").mkdir(parents=True)
                raise OSError("no network")
            raise RuntimeError("Dataset not found")

    class Offline(MNIST):
        dataset_class = Unreachable

    monkeypatch.delenv("GVAE_BENCH_OFFLINE", raising=False)
    Offline.registered_name = "unreachable"
    with pytest.raises(DataMissingError, match="the download failed: OSError"):
        Offline(tmp_path / "data").load()
    assert not (tmp_path / "data").exists()
