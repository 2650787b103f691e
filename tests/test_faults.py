"""Fault injection: a full disk at each place a run writes, corrupt records, hostile checkpoints and
unusable output folders end in a recorded status or a one-line error, never a traceback, and every
finished record stays byte-identical."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from conftest import invoke_cli
from gvae_bench import atomic
from gvae_bench.atomic import WriteError, atomic_write_text
from gvae_bench.results.leaderboard import write_leaderboards
from gvae_bench.execution.records import RunStatus, write_record
from gvae_bench.sweep import run_sweep
from test_checkpoints import write_malicious_checkpoint


def _sweep(out, seeds=(0, 1)):
    return run_sweep(["vae"], "ring8", profile="smoke", seeds=list(seeds), out=out)


def _records(out):
    return {path.parent.name: path.read_bytes() for path in sorted(out.glob("runs/ring8/vae/*/seed*/record.json"))}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Smoke sweeps of vae on ring8 trained once for this module, seed 0 alone and seeds 0 and 1;
    each test works on a copy (``_start_from``)."""
    one = tmp_path_factory.mktemp("faults-seed0")
    _sweep(one, seeds=[0])
    both = tmp_path_factory.mktemp("faults-seeds01")
    shutil.copytree(one, both, dirs_exist_ok=True)
    _sweep(both)
    return {(0,): one, (0, 1): both}


def _start_from(trained, seeds, out):
    """``out`` as the smoke sweep of ``seeds`` leaves it (a copy of the module's)."""
    shutil.copytree(trained[seeds], out, dirs_exist_ok=True)


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(name)``: from now on, creating the temporary file of a write to a file called
    ``name`` fails with ENOSPC, as on a full disk; ``full_disk(None)`` frees the space."""
    real = tempfile.mkstemp
    state = {"name": None}

    def mkstemp(*args, prefix="", **kwargs):
        if state["name"] is not None and prefix.startswith(f".{state['name']}."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    return lambda name: state.update(name=name)


@pytest.mark.parametrize("name", ["config.json", "losses.csv", ".checkpoint.pt.new", "losses.png", "samples.png"])
def test_a_full_disk_inside_a_run_is_a_recorded_failure_and_the_rerun_finishes(tmp_path, trained, full_disk, name):
    _start_from(trained, (0,), tmp_path)
    before = _records(tmp_path)
    full_disk(name)
    summary = _sweep(tmp_path)
    seed1 = [r for r in summary.results if r.record.seed == 1][0]
    assert seed1.record.status == RunStatus.FAILED and "No space left on device" in seed1.record.reason
    assert name in seed1.record.reason and summary.exit_status == 1
    assert _records(tmp_path)["seed0"] == before["seed0"]
    full_disk(None)
    again = _sweep(tmp_path)
    assert again.exit_status == 0 and {r.record.status for r in again.results} == {RunStatus.FINISHED}
    assert _records(tmp_path)["seed0"] == before["seed0"]


@pytest.mark.parametrize("name", ["record.json", "table4.csv"])
def test_a_full_disk_where_nothing_can_be_recorded_is_a_one_line_error(tmp_path, trained, full_disk, name):
    _start_from(trained, (0,), tmp_path)
    before = _records(tmp_path)
    full_disk(name)
    with pytest.raises(WriteError, match=f"cannot write .*{name}: No space left on device"):
        _sweep(tmp_path)
    assert _records(tmp_path)["seed0"] == before["seed0"]
    assert not list(tmp_path.rglob("*.tmp"))
    full_disk(None)
    assert _sweep(tmp_path).exit_status == 0
    assert set(_records(tmp_path)) == {"seed0", "seed1"}


@pytest.mark.parametrize("text", ["", '{"status": "finished", "mod', "[]", '{"status": "finished"}', "\x00\x01"])
def test_a_corrupt_record_is_moved_aside_the_run_redone_and_the_leaderboard_built(tmp_path, trained, text, caplog):
    _start_from(trained, (0, 1), tmp_path)
    before = _records(tmp_path)
    bad = next(tmp_path.glob("runs/ring8/vae/*/seed1/record.json"))
    bad.write_text(text)
    with caplog.at_level(logging.WARNING):
        assert "table4.csv" in [p.name for p in write_leaderboards(tmp_path, "ring8")]
    assert str(bad) in caplog.text and "left out of the leaderboards" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        summary = _sweep(tmp_path)
    assert summary.exit_status == 0 and str(bad) in caplog.text and "moved aside" in caplog.text
    aside = list(bad.parent.glob("record.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == text
    assert _records(tmp_path)["seed0"] == before["seed0"]
    assert json.loads(bad.read_text())["status"] == "finished"


def test_an_unusable_out_is_a_one_line_error_before_any_run(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, message in ((a_file, "is a file, not a folder"), (a_file / "below", "cannot be written")):
        result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--out", str(out))
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_truncated_data_file_is_named_with_its_size(tmp_path, data_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (data_root / "MNIST" / "raw").iterdir():
        if path.name.endswith("ubyte"):
            (raw / path.name).write_bytes(path.read_bytes())
    cut = raw / "t10k-images-idx3-ubyte"
    cut.write_bytes(cut.read_bytes()[:5000])
    result = invoke_cli("--models", "vae", "--dataset", "mnist", "--profile", "smoke", "--data-root", str(tmp_path),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{cut} is present but 5000 bytes where its header says 7840016" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_atomic_writes_keep_the_umask_permissions_and_remove_stale_temporaries(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".table4.csv.{atomic._HOST}-{dead.pid}.abcd.tmp"
    live = tmp_path / f".table4.csv.{atomic._HOST}-{os.getppid()}.efgh.tmp"
    stale.write_text("half")
    live.write_text("in flight")
    previous = os.umask(0o022)
    try:
        write_record(tmp_path, {"status": "finished", "model": "m", "benchmark": "b", "profile": "p", "seed": 0,
                                "config_hash": "h"})
        atomic_write_text(tmp_path / "table4.csv", "a,b\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "record.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "table4.csv").stat().st_mode) == 0o644
    assert not stale.exists() and live.exists()


def test_a_hostile_checkpoint_is_refused_on_resume_rescore_curve_and_export(tmp_path):
    out = tmp_path / "out"
    args = ("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--set", "train.snapshot_every=4",
            "--out", str(out))
    assert invoke_cli(*args).returncode == 0
    run_dir = next(out.glob("runs/ring8/vae/*/seed0"))
    finished = json.loads((run_dir / "record.json").read_text())
    marker = tmp_path / "pwned"
    write_malicious_checkpoint(run_dir / "checkpoint.pt", marker)
    for snapshot in (run_dir / "snapshots").glob("*.pt"):
        write_malicious_checkpoint(snapshot, marker)

    def refused(result):
        assert result.returncode == 2, result.stderr
        assert "holds objects other than tensors and plain data (it would load io.open)" in result.stderr
        assert "Traceback" not in result.stderr and not marker.exists()
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]

    (run_dir / "record.json").write_text(json.dumps({**finished, "status": "running"}))
    refused(invoke_cli(*args))  # resume
    trimmed = {**finished, "metrics": {k: v for k, v in finished["metrics"].items() if k != "mmd"}}
    (run_dir / "record.json").write_text(json.dumps(trimmed))
    refused(invoke_cli("rescore", "--dataset", "ring8", "--out", str(out)))
    (run_dir / "record.json").write_text(json.dumps(finished))
    refused(invoke_cli("curve", str(run_dir), "--metric", "mmd"))
    refused(invoke_cli("export-nifti", str(run_dir)))


@pytest.mark.subprocess
def test_ctrl_c_while_the_leaderboards_are_written_exits_130(tmp_path):
    code = ("import sys, gvae_bench.sweep as sweep\n"
            "def interrupted(*args, **kwargs):\n    raise KeyboardInterrupt\n"
            "sweep.build_leaderboard = interrupted\n"
            "from gvae_bench.cli import main\n"
            f"sys.argv = ['runner.py', '--models', 'vae', '--dataset', 'ring8', '--profile', 'smoke', '--out', {str(tmp_path)!r}]\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "GVAE_BENCH_OFFLINE": "1"})
    assert result.returncode == 130, result.stderr
    assert "Aborted!" not in result.stderr and "Traceback" not in result.stderr and "interrupted" in result.stderr
    assert json.loads(next(tmp_path.glob("runs/ring8/vae/*/seed0/record.json")).read_text())["status"] == "finished"
