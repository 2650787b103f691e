"""`runner.py reproduce`: a finished run rerun from its record alone, compared with the record metric
by metric (as a fraction of the seed spread) and environment by environment."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from conftest import invoke_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A smoke sweep of vae on ring8 with seeds 0, 1, 2 (trained once; tests work on copies)."""
    out = tmp_path_factory.mktemp("reproduce-trained")
    result = invoke_cli("--models", "vae", "--dataset", "ring8", "--profile", "smoke", "--seeds", "0,1,2",
                        "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def _copy(trained: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(trained, out)
    (run_dir,) = (out / "runs" / "ring8" / "vae").glob("smoke-*/seed0")
    return run_dir


def _edit(run_dir: Path, change) -> None:
    path = run_dir / "record.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def _report(result) -> dict:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("reproduce: ") and last.endswith("reproduce.md"), result.stdout
    md = Path(last[len("reproduce: "):])
    assert md.is_file()
    return json.loads(md.with_name("reproduce.json").read_text())


def test_a_deterministic_rerun_reproduces_every_number_exactly(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)
    scratch = tmp_path / "scratch"
    record_before = (run_dir / "record.json").read_bytes()
    result = invoke_cli("reproduce", str(run_dir), "--out", str(scratch))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("mmd: recorded ") and "of the seed spread (n=3 seeds)" in line for line in lines), lines
    assert "environment: matched" in result.stdout
    report = _report(result)
    assert Path(report["scratch_run_dir"]).is_relative_to(scratch)
    assert report["environment_matched"] is True and report["environment_differences"] == []
    rows = {row["metric"]: row for row in report["rows"]}
    assert "mmd" in rows
    for row in rows.values():  # smoke on the CPU, same machine, same threads: bit for bit
        assert row["difference"] == 0.0 and row["recorded"] == row["rerun"], row
    assert rows["mmd"]["fraction_of_seed_spread"] == 0.0
    assert rows["mmd"]["n_seeds"] == 3
    assert rows["mmd"]["seed_std"] > 0
    # the rerun went to the scratch folder; the recorded run keeps its record and gains the report beside it
    assert json.loads((run_dir / "reproduce.json").read_text()) == report
    assert (run_dir / "record.json").read_bytes() == record_before


def _footer(out: Path) -> list[str]:
    result = invoke_cli("leaderboard", "--dataset", "ring8", "--out", str(out))
    assert result.returncode == 0, result.stderr
    text = (out / "leaderboards" / "ring8" / "table4.md").read_text()
    return [line for line in text.splitlines() if line.startswith("- seeds or environment: ")]


def test_the_leaderboard_footer_says_the_seeds_dominate_a_bit_identical_rerun(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)
    out = run_dir.parents[4]
    assert _footer(out) == []  # nothing reproduced: no footer
    assert invoke_cli("reproduce", str(run_dir), "--out", str(tmp_path / "scratch")).returncode == 0
    (line,) = _footer(out)
    assert "`vae` smoke-" in line and "seed 0" in line and "(same environment)" in line
    assert "mmd +0.00" in line and "the seeds' spread dominates" in line


def test_the_leaderboard_footer_says_the_environment_dominates_a_rerun_beyond_one_seed_std(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)
    out = run_dir.parents[4]
    values = [json.loads((seed / "record.json").read_text())["metrics"]["mmd"]["value"]
              for seed in sorted(run_dir.parent.glob("seed*"))]
    for seed in sorted(run_dir.parent.glob("seed*")):
        _edit(seed, lambda data: data["metrics"]["mmd"].update(value=data["metrics"]["mmd"]["value"]
                                                                + 1.5 * statistics.stdev(values)))
    assert invoke_cli("reproduce", str(run_dir), "--out", str(tmp_path / "scratch")).returncode == 0
    (line,) = _footer(out)
    assert "mmd -1.50" in line and "the environment dominates" in line


@pytest.mark.parametrize("fractions, verdict", [([0.0, -0.49], "seeds"), ([0.3, 0.5], "both"), ([0.2, -1.0], "environment"),
                                                ([], "unknown")])
def test_spread_verdict_bounds(fractions, verdict):
    from gvae_bench.results.reproduce import spread_verdict

    assert spread_verdict(fractions) == verdict


def test_a_difference_of_one_seed_std_is_minus_one_of_the_seed_spread(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)
    seeds = sorted(run_dir.parent.glob("seed*"))
    values = [json.loads((seed / "record.json").read_text())["metrics"]["mmd"]["value"] for seed in seeds]
    std = statistics.stdev(values)
    assert len(values) == 3 and std > 0

    def shift(data):
        data["metrics"]["mmd"]["value"] += std

    # seed0's recorded mmd moves up by one seed std; the other seeds move with it, so the spread the
    # difference is measured against stays that std (a shift leaves a standard deviation unchanged)
    for seed in seeds:
        _edit(seed, shift)
    result = invoke_cli("reproduce", str(run_dir), "--out", str(tmp_path / "scratch"))
    assert result.returncode == 0, result.stderr
    mmd = next(row for row in _report(result)["rows"] if row["metric"] == "mmd")
    assert mmd["seed_std"] == pytest.approx(std, rel=1e-9)
    assert mmd["difference"] == pytest.approx(-std, rel=1e-9)
    assert abs(mmd["fraction_of_seed_spread"] - -1.0) < 1e-9
    assert "= -1.00 of the seed spread (n=3 seeds)" in result.stdout


def test_a_record_whose_config_no_longer_resolves_to_its_hash_is_a_one_line_error(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)

    def edit(data):
        data["config"]["train"]["steps"] += 1

    _edit(run_dir, edit)
    result = invoke_cli("reproduce", str(run_dir), "--out", str(tmp_path / "scratch"))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    recorded = json.loads((run_dir / "record.json").read_text())["config_hash"]
    assert recorded in lines[0] and "hash" in lines[0]
    assert not (tmp_path / "scratch" / "runs").exists()


def test_the_rerun_never_goes_into_the_run_folder_itself(trained, tmp_path):
    run_dir = _copy(trained, tmp_path)
    out = run_dir.parents[4]  # <out>/runs/ring8/vae/<config>/seed0
    result = invoke_cli("reproduce", str(run_dir), "--out", str(out))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "itself" in result.stderr
