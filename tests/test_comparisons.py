"""Leaderboards say which differences the seeds support: constructed records with known answers."""

from __future__ import annotations

import pandas as pd

from gvae_bench.results.leaderboard import write_leaderboards
from gvae_bench.execution.records import write_record

Z = [-1.2, -0.4, 0.3, 1.1, 0.2, -0.9, 0.7, -0.1, 1.4, -1.1]  # fixed spread pattern, mean 0


def _write(out, model, seed, mmd):
    record = {"model": model, "benchmark": "mnist", "profile": "quick", "seed": seed, "status": "finished",
              "config_hash": f"h{model}", "git": {"commit": "0123456789abcdef", "dirty": False},
              "metrics": {"mmd": {"value": mmd, "higher_is_better": False, "table": "table4", "n_generated": 500,
                                  "n_real": 500, "reference": 0.001}}}
    write_record(out / "runs" / "mnist" / model / f"h{model}" / f"seed{seed}", record)


def _rows(out):
    text = (out / "leaderboards" / "mnist" / "table4.md").read_text()
    return {line.split("|")[1].strip(): line.split("|")[6].strip() for line in text.splitlines()
            if line.startswith("| a ") or line.startswith("| b ")}


def test_rows_closer_than_their_spread_are_both_bold_and_share_a_rank_group(tmp_path):
    for seed in range(3):
        _write(tmp_path, "a", seed, 1.00 + 0.3 * Z[seed])
        _write(tmp_path, "b", seed, 1.02 + 0.3 * Z[(seed + 1) % 3])
    write_leaderboards(tmp_path, "mnist")
    rows = _rows(tmp_path)
    assert rows["a"].startswith("**") and rows["a"].endswith(" a")
    assert rows["b"].startswith("**") and rows["b"].endswith(" a")
    pairs = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "comparisons.csv")
    assert list(pairs.verdict) == ["not separated"] and "seeds_for_power" not in pairs  # no post-hoc power
    assert list(pairs.role) == ["exploratory"] and list(pairs.protocol) == ["none"]


def test_ten_seeds_separate_what_three_cannot(tmp_path):
    def build(out, seeds):
        for seed in range(seeds):
            _write(out, "a", seed, 1.00 + 0.3 * Z[seed])
            _write(out, "b", seed, 1.30 + 0.3 * Z[(seed + 5) % seeds])  # B worse by one spread, its own noise
        write_leaderboards(out, "mnist")
        return pd.read_csv(out / "leaderboards" / "mnist" / "comparisons.csv").iloc[0], _rows(out)

    three, rows3 = build(tmp_path / "three", 3)
    ten, rows10 = build(tmp_path / "ten", 10)
    assert three.verdict == "not separated" and rows3["b"].startswith("**")
    assert ten.verdict == "A better" and ten.p_holm < 0.05 and not rows10["b"].startswith("**")
    assert rows10["a"].endswith(" a") and rows10["b"].endswith(" b")


def test_runs_csv_rebuilds_the_table_means_with_a_pandas_groupby(tmp_path):
    for seed in range(4):
        _write(tmp_path, "a", seed, 0.1 * seed + 1 / 3)
        _write(tmp_path, "b", seed, 0.7 / (seed + 1))
    write_leaderboards(tmp_path, "mnist")
    runs = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "runs.csv")
    table = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table4.csv")
    means = runs[runs.metric == "mmd"].groupby("model").value.mean()
    measured = table[table.row_kind == "measured"].set_index("model")
    assert (measured.mmd_mean == means).all()
    assert {"mmd_ci_low", "mmd_ci_high", "mmd_std", "mmd_n", "mmd_group"} <= set(table.columns)


def test_a_latent_sweep_stays_out_of_table4(tmp_path):
    """Table 4 shows a swept model at its profile's own settings (the config hash the profile
    resolves to); its other latent sizes are Table 5's rows, and not in Table 4's comparisons."""
    from pathlib import Path

    from gvae_bench.execution.runs import RunSpec, resolve

    own = resolve(RunSpec("gvae", "mnist", "quick", 0, Path("data"), Path("."))).config_hash
    for chash, latent in ((own, 1000), ("h100", 100)):
        for seed in range(2):
            record = {"model": "gvae", "benchmark": "mnist", "profile": "quick", "seed": seed, "status": "finished",
                      "config_hash": chash, "config": {"model_config": {"latent_dim": latent}},
                      "metrics": {"mmd": {"value": 0.01 * latent ** 0.5 + seed * 0.001, "higher_is_better": False,
                                          "table": "table4", "n_generated": 50, "n_real": 50}}}
            write_record(tmp_path / "runs" / "mnist" / "gvae" / chash / f"seed{seed}", record)
    write_leaderboards(tmp_path, "mnist")
    table4 = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table4.csv")
    table5 = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table5.csv")
    assert list(table4[table4.row_kind == "measured"].config_hash) == [own]
    assert sorted(table5[table5.row_kind == "measured"].latent_dim) == [100, 1000]


def test_a_model_is_compared_with_itself_across_profiles_how_far_tuning_moved_it(tmp_path):
    from scipy import stats

    def write(model, profile, seed, mmd):
        record = {"model": model, "benchmark": "mnist", "profile": profile, "seed": seed, "status": "finished",
                  "config_hash": f"h{model}{profile}", "git": {"commit": "0123456789abcdef", "dirty": False},
                  "metrics": {"mmd": {"value": mmd, "higher_is_better": False, "table": "table4", "n_generated": 500,
                                      "n_real": 500}}}
        write_record(tmp_path / "runs" / "mnist" / model / f"{profile}-h" / f"seed{seed}", record)

    quick, tuned = [1.0, 1.2, 0.9], [0.5, 0.7, 0.55]
    for seed in range(3):
        write("a", "quick", seed, quick[seed])
        write("a", "tuned", seed, tuned[seed])
        write("b", "quick", seed, 2.0 + 0.1 * seed)
    write_leaderboards(tmp_path, "mnist")
    pairs = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "comparisons.csv")
    across = pairs[pairs.profile == "across profiles"]
    assert list(zip(across.model_a, across.model_b)) == [("a (quick)", "a (tuned)")]  # b has one profile only
    row = across.iloc[0]
    assert abs(row.difference - (sum(quick) - sum(tuned)) / 3) < 1e-12
    assert abs(row.p_value - stats.ttest_rel(quick, tuned).pvalue) < 1e-12  # the same seeds: paired by seed
    assert row.verdict == "B better"
    assert "across profiles" in (tmp_path / "leaderboards" / "mnist" / "comparisons.md").read_text()


def test_a_metric_that_is_not_ranked_gets_no_bold_no_letters_and_higher_not_better(tmp_path):
    for seed in range(3):
        for model, c_t in (("a", -12.0 + 0.1 * Z[seed]), ("b", 0.5 + 0.1 * Z[(seed + 1) % 3])):
            record = {"model": model, "benchmark": "mnist", "profile": "quick", "seed": seed, "status": "finished",
                      "config_hash": f"h{model}", "git": {"commit": "0123456789abcdef", "dirty": False},
                      "metrics": {"copying": {"value": c_t, "higher_is_better": True, "ranked": False,
                                              "table": "table_novelty", "n_generated": 500, "n_real": 500}}}
            write_record(tmp_path / "runs" / "mnist" / model / f"h{model}" / f"seed{seed}", record)
    write_leaderboards(tmp_path, "mnist")
    table = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table_novelty.csv")
    measured = table[table.row_kind == "measured"]
    assert not measured.copying_bold.any() and measured.copying_group.isna().all()
    pairs = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "comparisons.csv")
    assert list(pairs.verdict) == ["B higher"] and pairs.p_holm.iloc[0] < 0.05
    text = (tmp_path / "leaderboards" / "mnist" / "table_novelty.md").read_text()
    assert "copying (≈ target)" in text and "not ranked" in text and "**" not in text.split("| a |")[1].split("\n")[0]
