"""One installed namespace and one-way dependencies: the core never imports its plugins; the harness
installs as ``gvae_bench`` alone; a user's own ``models``/``metrics`` folders change nothing; a
sweep is a library call."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, invoke_cli

PLUGIN_PACKAGES = ("gvae_bench.models", "gvae_bench.benchmarks", "gvae_bench.metrics", "models", "benchmarks",
                   "metrics")


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement of ``path`` names (anywhere in it)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_imports_none_of_its_plugin_packages():
    core_files = sorted((REPO / "gvae_bench").rglob("*.py"))
    assert len(core_files) > 10
    offending = {str(path.relative_to(REPO)): sorted(name for name in _imported_modules(path)
                                                     if any(name == p or name.startswith(p + ".") for p in PLUGIN_PACKAGES))
                 for path in core_files}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_plugins_import_the_contracts_from_the_core():
    for folder in ("models", "benchmarks", "metrics"):
        for path in (REPO / folder).glob("*.py"):
            names = _imported_modules(path)
            assert not {n for n in names if n.split(".")[0] in ("models", "benchmarks", "metrics")}, path


@pytest.mark.subprocess
def test_the_old_top_level_import_names_the_new_one():
    result = subprocess.run([sys.executable, "-c", "import models"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert "ImportError: the top-level package 'models' is now 'gvae_bench.models'" in result.stderr


@pytest.mark.subprocess
def test_leaderboard_loads_no_ct_reader(tmp_path):
    shutil.copytree(REPO / "results" / "reference" / "runs" / "mnist", tmp_path / "runs" / "mnist")
    code = ("import sys; from click.testing import CliRunner; from gvae_bench.cli import cli; "
            f"result = CliRunner().invoke(cli, ['leaderboard', '--dataset', 'mnist', '--out', {str(tmp_path)!r}]); "
            "assert result.exit_code == 0, result.output; "
            "print(sorted(m for m in ('SimpleITK', 'pydicom', 'nibabel') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "leaderboards" / "mnist" / "table4.md").is_file()


@pytest.mark.subprocess
def test_a_sweep_is_a_library_call_without_click(tmp_path):
    code = ("import sys, json; from gvae_bench.sweep import run_sweep; "
            f"summary = run_sweep(['vae', 'wgan_gp'], 'ring8', profile='smoke', seeds=[0, 0, 1], out={str(tmp_path)!r}); "
            "print(json.dumps({'exit': summary.exit_status, 'notes': list(summary.plan.notes), "
            "'runs': [[r.record.model, r.record.seed, r.record.status.value, r.outcome.value] for r in summary.results], "
            "'tables': sorted(p.name for p in summary.leaderboards), 'click': 'click' in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "GVAE_BENCH_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["exit"] == 0 and summary["click"] is False
    assert summary["notes"] == ["1 repeated seed(s) dropped: each seed runs once"]
    assert summary["runs"] == [["vae", 0, "finished", "ran"], ["vae", 1, "finished", "ran"],
                               ["wgan_gp", 0, "finished", "ran"], ["wgan_gp", 1, "finished", "ran"]]
    assert "table4.md" in summary["tables"]


@pytest.mark.parametrize("seeds, message", [("-1", "seeds are whole numbers from 0 to 4294967295"),
                                            ("4294967296", "seeds are whole numbers from 0 to 4294967295")])
def test_seeds_outside_32_bits_are_a_one_line_error(tmp_path, seeds, message):
    result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--seeds", seeds,
                        "--out", str(tmp_path))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.subprocess
def test_a_users_own_models_and_metrics_folders_change_nothing(tmp_path):
    """From a folder that is its own git repository holding ``models/`` and ``metrics/`` packages,
    the installed command lists the harness's models, and a run's record names the harness's
    commit (or version), not the folder's."""
    project = tmp_path / "project"
    for package in ("models", "metrics", "benchmarks"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text("raise RuntimeError('the user package was imported')\n")
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "user project")
    user_commit = _git(project, "rev-parse", "HEAD")
    command = Path(sys.executable).with_name("gvae-bench")
    env = {**os.environ, "GVAE_BENCH_OFFLINE": "1", "PYTHONPATH": str(project)}  # its folders first on sys.path
    listing = subprocess.run([str(command), "list"], cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert listing.returncode == 0, listing.stderr
    for name in ("gvae", "vae", "wgan_gp", "vae_gan", "alpha_gan"):
        assert f"  {name} " in listing.stdout
    sweep = subprocess.run([str(command), "--models", "vae", "--dataset", "ring8", "--profile", "smoke",
                            "--out", "out"], cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert sweep.returncode == 0, sweep.stderr
    record = json.loads(next((project / "out").glob("runs/ring8/vae/*/seed0/record.json")).read_text())
    harness_commit = _git(REPO, "rev-parse", "HEAD")
    assert record["git"]["commit"] == harness_commit != user_commit


@pytest.mark.subprocess
@pytest.mark.slow
def test_the_wheel_holds_the_one_top_level_package(tmp_path):
    clone = tmp_path / "clone"
    skip = shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build", "__pycache__")
    # the checkout's results/ (not the package's gvae_bench/results/) stays out of the copy
    shutil.copytree(REPO, clone, ignore=lambda folder, names: set(skip(folder, names)) | (
        {"results"} if Path(folder) == REPO else set()))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(clone)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("gvae_bench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"gvae_bench"}
    for module in ("gvae_bench/models/gvae.py", "gvae_bench/metrics/mmd.py", "gvae_bench/benchmarks/mixtures.py",
                   "gvae_bench/contracts/model.py", "gvae_bench/profiles.toml", "gvae_bench/results/published.toml",
                   "gvae_bench/tuning/search_space.toml", "gvae_bench/report/templates/base.html",
                   "gvae_bench/pinned/classifiers.json", "gvae_bench/execution/run.py", "gvae_bench/cli/common.py",
                   "gvae_bench/functional/fid.py", "gvae_bench/scoring/inputs.py"):
        assert module in names
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gvae-bench = gvae_bench.cli:main" in entry_points
