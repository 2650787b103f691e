from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gvae_bench.results.leaderboard import build_table, write_leaderboards
from gvae_bench.execution.records import write_record


def _record(model, seed, status="finished", mmd=None, reference=0.001, chash="abc"):
    metrics = {}
    if mmd is not None:
        metrics = {
            "mmd": {"value": mmd, "higher_is_better": False, "table": "table4", "n_generated": 500, "n_real": 500,
                    "reference": reference},
            "modes": {"value": None, "higher_is_better": True, "table": "table_modes", "na": "needs known_modes"},
        }
    return {"model": model, "benchmark": "mnist", "profile": "quick", "seed": seed, "status": status,
            "config_hash": chash, "git": {"commit": "0123456789abcdef", "dirty": False}, "metrics": metrics}


@pytest.fixture
def out(tmp_path):
    for seed, value in enumerate([1.0, 2.0, 3.0]):
        write_record(tmp_path / "runs" / "mnist" / "a" / "x" / f"seed{seed}", _record("a", seed, mmd=value))
    write_record(tmp_path / "runs" / "mnist" / "b" / "x" / "seed0", _record("b", 0, mmd=0.5))
    write_record(tmp_path / "runs" / "mnist" / "b" / "x" / "seed1", _record("b", 1, status="diverged"))
    return tmp_path


def test_cells_are_mean_std_and_n_over_finished_seeds(out):
    from gvae_bench.results.leaderboard import read_records

    frame, names, directions = build_table(read_records(out, "mnist"), "table4", "mnist")
    assert names == ["mmd"] and directions == {"mmd": False}
    a = frame[(frame.row_kind == "measured") & (frame.model == "a")].iloc[0]
    assert a.mmd_mean == 2.0 and a.mmd_std == 1.0 and a.mmd_n == 3 and a.seeds == "0 1 2"
    b = frame[(frame.row_kind == "measured") & (frame.model == "b")].iloc[0]
    assert b.mmd_mean == 0.5 and math.isnan(b.mmd_std) and b.n_diverged == 1 and b.n_finished == 1
    reference = frame[frame.row_kind == "reference"].iloc[0]
    assert reference.mmd_mean == pytest.approx(0.001)
    published = frame[frame.row_kind == "published"]
    assert len(published) == 4 and set(published.mmd_mean) == {0.327, 0.075, 0.131, 0.068}


def test_files_mark_published_rows_best_row_and_provenance(out):
    paths = write_leaderboards(out, "mnist")
    # no modes table: modes was n/a everywhere
    assert [p.name for p in paths] == ["runs.csv", "table4.csv", "table4.md", "comparisons.csv", "comparisons.md"]
    text = paths[2].read_text()
    # one seed of b: no interval and no test, so b cannot be separated from a: both bold, one rank group
    assert "| b |  | quick | abc | 0 (1 diverged) | **0.5 (n=1, no interval)** a |" in text
    half = 4.302652729749464 / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n), s = 1
    assert f"| a |  | quick | abc | 0 1 2 | **2 [{2 - half:.4g}, {2 + half:.4g}] (n=3)** a |" in text
    assert "no test" in paths[4].read_text() and "needs >= 2 seeds per model; B has 1" in paths[4].read_text()
    assert "0123456789" in text and "500 generated / 500 real" in text
    assert "0.327 (published)" not in text and "(published) | 0.327" in text
    csv = paths[1].read_text().splitlines()
    assert csv[0].startswith("row_kind,model") and sum(line.startswith("published,") for line in csv) == 4


def test_a_table_names_the_cpu_models_of_its_runs_and_says_when_they_are_several(out):
    text = write_leaderboards(out, "mnist")[2].read_text()
    assert "- CPU model(s) of the runs: not recorded (5)\n" in text  # the records above name no CPU
    folder = out / "runs" / "mnist" / "b" / "x" / "seed0"
    record = json.loads((folder / "record.json").read_text())
    write_record(folder, {**record, "environment": {"cpu": "Intel(R) Xeon(R) Processor", "torch_threads": 1}})
    text = write_leaderboards(out, "mnist")[2].read_text()
    assert ("- CPU model(s) of the runs: Intel(R) Xeon(R) Processor (1), not recorded (4); the same seed on another "
            "CPU model is another run (results/reference/cross_cpu)") in text


def test_table5_appears_when_a_model_ran_at_several_latent_sizes(tmp_path):
    for latent, value in ((100, 0.3), (1000, 0.1)):
        for seed in (0, 1):
            record = _record("gvae", seed, mmd=value + seed * 0.01, chash=f"h{latent}")
            record["config"] = {"model_config": {"latent_dim": latent}}
            write_record(tmp_path / "runs" / "mnist" / "gvae" / f"h{latent}" / f"seed{seed}", record)
    paths = write_leaderboards(tmp_path, "mnist")
    assert sorted(p.name for p in paths) == ["comparisons.csv", "comparisons.md", "runs.csv", "table4.csv", "table4.md",
                                             "table5.csv", "table5.md"]
    text = (tmp_path / "leaderboards" / "mnist" / "table5.md").read_text()
    half = 12.706204736174696 * 0.01 / math.sqrt(2) / math.sqrt(2)  # t(0.975, 1) * s / sqrt(2), s = 0.01 / sqrt(2)
    # the same seeds at both sizes differ by exactly 0.2 each: the paired test separates them, so only 1000 is bold
    assert f"| gvae | 100 | quick | h100 | 0 1 | {0.305:.4g} [{0.305 - half:.4g}, {0.305 + half:.4g}] (n=2) b |" in text
    assert f"| gvae | 1000 | quick | h1000 | 0 1 | **{0.105:.4g} [{0.105 - half:.4g}, {0.105 + half:.4g}] (n=2)** a |" in text
    assert "GVAE, latent 1000 (Sagar, Table 5) (published) | 0.068" in text



def test_a_table_whose_records_left_the_folder_is_removed_at_the_next_build(tmp_path):
    """Moving a latent sweep's runs out of a folder takes its Table 5 with them, not a stale file."""
    import shutil

    for latent, value in ((100, 0.3), (1000, 0.1)):
        for seed in (0, 1):
            record = _record("gvae", seed, mmd=value + seed * 0.01, chash=f"h{latent}")
            record["config"] = {"model_config": {"latent_dim": latent}}
            write_record(tmp_path / "runs" / "mnist" / "gvae" / f"h{latent}" / f"seed{seed}", record)
    board = tmp_path / "leaderboards" / "mnist"
    write_leaderboards(tmp_path, "mnist")
    assert (board / "table5.csv").is_file()
    (board / "notes.txt").write_text("not a table")
    shutil.rmtree(tmp_path / "runs" / "mnist" / "gvae" / "h100")
    paths = write_leaderboards(tmp_path, "mnist")
    assert sorted(p.name for p in board.iterdir()) == sorted([p.name for p in paths] + ["notes.txt"])
    assert not (board / "table5.csv").exists() and not (board / "table5.md").exists()
    assert "| gvae |" in (board / "table4.md").read_text()

def test_missing_values_say_why(tmp_path):
    """A metric a finished run never evaluated reads "not evaluated"; one that does not apply "n/a";
    a group without a finished seed shows no value; a metric shared by two tables is in both."""
    both = {"higher_is_better": False, "table": ["table6", "table7"], "n_generated": 0, "n_real": 20}
    runs = {
        "a": {"iwae_nll": {**both, "value": 90.0}},
        "b": {"iwae_nll": {**both, "value": None, "na": "needs encoder"}},
        "c": {},  # evaluated before iwae_nll existed
    }
    for model, metrics in runs.items():
        write_record(tmp_path / "runs" / "mnist" / model / "x" / "seed0",
                     {**_record(model, 0), "metrics": metrics})
    write_record(tmp_path / "runs" / "mnist" / "d" / "x" / "seed0", {**_record("d", 0, status="running")})
    write_leaderboards(tmp_path, "mnist")
    for table in ("table6", "table7"):
        lines = (tmp_path / "leaderboards" / "mnist" / f"{table}.md").read_text().split("\n## ")[0].splitlines()
        row = {line.split("|")[1].strip(): line.split("|")[-2].strip() for line in lines if line.startswith("| ")}
        assert "90 (n=1, no interval)" in row["a"] and row["b"] == "n/a" and row["c"] == "not evaluated" and row["d"] == "–"
        assert "- `iwae_nll` (lower is better): 20 test images" in lines


def test_a_checkout_is_dirty_for_changed_code_not_for_changed_results(tmp_path, monkeypatch):
    """Sweeps rewrite committed leaderboards and records while other runs start; only code changes
    may mark a run's commit '+dirty', and the record names them."""
    import subprocess

    from gvae_bench.execution import records

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table4.md").write_text("old\n")
    (tmp_path / "harness.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(records, "REPO_ROOT", tmp_path)

    assert records.git_commit()["dirty"] is False
    (tmp_path / "results" / "table4.md").write_text("rebuilt by another sweep\n")
    assert records.git_commit()["dirty"] is False
    (tmp_path / "harness.py").write_text("x = 2\n")
    state = records.git_commit()
    assert state["dirty"] is True and state["changed"] == ["harness.py"]


def test_table7_shows_each_runs_standard_error_and_ais_against_iwae_on_the_same_images(tmp_path):
    """From the recorded per-run details: the IWAE bound's standard error over images, and the gap between the
    IWAE bound on AIS's first images and AIS; a run without AIS has a bound but no gap."""
    import pandas as pd

    def likelihood(seed, ais):
        metrics = {"iwae_nll": {"value": 88.0 + seed, "higher_is_better": False, "table": ["table6", "table7"],
                                "n_generated": 0, "n_real": 10000,
                                "details": {"k": 5000, "std_error": 0.24, "mean_on_first_100_images": 86.5}}}
        if ais:
            metrics["ais_nll"] = {"value": 86.0, "higher_is_better": False, "table": "table7", "n_generated": 0,
                                  "n_real": 100, "details": {"chains": 16, "steps": 1000}}
        record = _record("vae", seed)
        return {**record, "profile": "likelihood", "metrics": metrics}

    write_record(tmp_path / "runs" / "mnist" / "vae" / "x" / "seed0", likelihood(0, ais=True))
    write_record(tmp_path / "runs" / "mnist" / "vae" / "x" / "seed1", likelihood(1, ais=False))
    write_leaderboards(tmp_path, "mnist")
    bounds = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table7_bounds.csv")
    assert list(bounds.seed) == [0, 1] and list(bounds.iwae_se) == [0.24, 0.24]
    assert bounds.ais_gap[0] == pytest.approx(0.5) and bounds.iwae_same_images[0] == 86.5
    assert math.isnan(bounds.ais_gap[1]) and math.isnan(bounds.ais_nll[1])
    text = (tmp_path / "leaderboards" / "mnist" / "table7.md").read_text()
    assert "| vae | likelihood | abc | 0 | 88.00 ± 0.24 | 10000, 5000 | 86.00 | 100, 16, 1000 | 86.50 | 0.50 |" in text
    assert "| vae | likelihood | abc | 1 | 89.00 ± 0.24 | 10000, 5000 | n/a | n/a, n/a, n/a | n/a | n/a |" in text


def test_a_frechet_distance_from_fewer_samples_than_features_is_na_in_the_tables(tmp_path):
    """The committed CT records hold FRD values fitted from 20 reference slices for 392 radiomic
    features (a singular covariance): the tables show n/a with the reason, the records are unchanged."""
    import shutil

    from gvae_bench.results.leaderboard import read_records, write_leaderboards

    source = Path(__file__).resolve().parents[1] / "results" / "reference" / "runs" / "ct_folder"
    shutil.copytree(source, tmp_path / "runs" / "ct_folder")
    on_disk = json.loads(next((tmp_path / "runs" / "ct_folder").glob("vae/*/seed0/record.json")).read_text())
    assert on_disk["metrics"]["frd"]["value"] > 1e20 and on_disk["metrics"]["frd"]["n_real"] == 20
    records = read_records(tmp_path, "ct_folder")
    assert all(r.metrics["frd"]["value"] is None and "392 features" in r.metrics["frd"]["na"] for r in records)
    write_leaderboards(tmp_path, "ct_folder")
    table = (tmp_path / "leaderboards" / "ct_folder" / "table4.md").read_text()
    assert "- `frd`: n/a in every run: FRD fits a 392-dimensional covariance" in table
    assert "e+2" not in table  # none of the 1e21 to 6e27 values
