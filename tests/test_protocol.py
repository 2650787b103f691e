"""The study protocol: validation, the confirmatory family across datasets, declared seeds only,
and the refusal to pool or pair runs scored by different classifiers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from gvae_bench.errors import UserError
from gvae_bench.results.leaderboard import write_leaderboards
from gvae_bench.results.protocol import protocol_from_dict, read_protocol
from gvae_bench.execution.records import write_record

ROOT = Path(__file__).resolve().parents[1]


def _csv(path):
    """A table as written: the verdict "n/a" stays text (pandas would read it as a missing value)."""
    return pd.read_csv(path, keep_default_na=False, na_values=[""])
BASE = {"name": "t", "version": 2, "models": ["a", "b", "c"], "datasets": ["mnist", "fashion_mnist"],
        "profile": "quick", "seeds": [0, 1, 2, 3, 4], "alpha": 0.05,
        "primary": {"mmd": {"table": "table4", "smallest_difference": 0.01}}}


def test_the_reference_protocol_reads_and_declares_forty_tests():
    p = read_protocol(ROOT / "results" / "reference" / "protocol.toml")
    assert p.label == "reference v1" and p.seeds == (0, 1, 2, 3, 4) and p.family_size() == 40
    assert set(p.primary_metrics) == {"mmd", "coverage"} and p.aggregate.score == "coverage"


@pytest.mark.parametrize("change, message", [
    ({"seeds": [0, 1, 2]}, "at least 5"), ({"seeds": [0, 0, 1, 2, 3]}, "distinct"), ({"alpha": 1.5}, "alpha"),
    ({"version": 0}, "version"), ({"models": ["a"]}, "two models"), ({"test": "welch"}, "test"),
    ({"primary": {"mmd": {"table": "table4", "smallest_difference": -1}}}, "smallest_difference"),
    ({"tuned_from_dataset": {"cifar10": "mnist"}}, "undeclared"),
])
def test_bad_protocols_are_one_line_user_errors(change, message):
    with pytest.raises(UserError, match=message) as info:
        protocol_from_dict({**BASE, **change})
    assert "\n" not in str(info.value)


def test_missing_field_and_bad_toml(tmp_path):
    with pytest.raises(UserError, match="missing `seeds`"):
        protocol_from_dict({k: v for k, v in BASE.items() if k != "seeds"})
    bad = tmp_path / "p.toml"
    bad.write_text("name = [")
    with pytest.raises(UserError, match="not valid TOML"):
        read_protocol(bad)


def _write(out, dataset, model, seed, mmd, profile="quick", classifier="k1"):
    record = {"model": model, "benchmark": dataset, "profile": profile, "seed": seed, "status": "finished",
              "config_hash": f"h{model}", "git": {"commit": "0123456789abcdef", "dirty": False},
              "metrics": {"mmd": {"value": mmd, "higher_is_better": False, "table": "table4", "n_generated": 500,
                                  "n_real": 500, "reference": 0.001},
                          "fid": {"value": 10 + mmd, "higher_is_better": False, "table": "table4",
                                  "n_generated": 500, "n_real": 500, "details": {"classifier_key": classifier}}}}
    write_record(out / "runs" / dataset / model / f"{profile}-h{model}" / f"seed{seed}", record)


def _protocol_file(out):
    text = "\n".join([
        'name = "t"', "version = 2", 'models = ["a", "b", "c"]', 'datasets = ["mnist", "fashion_mnist"]',
        'profile = "quick"', "seeds = [0, 1, 2, 3, 4]", "alpha = 0.05",
        "[primary.mmd]", 'table = "table4"', "smallest_difference = 0.01",
        "[aggregate]", 'score = "mmd"', "bootstrap_reps = 200"])
    (out / "protocol.toml").write_text(text + "\n")


def test_confirmatory_family_is_one_holm_across_datasets_with_declared_seeds_only(tmp_path):
    rng = np.random.default_rng(5)
    values = {}
    for d, dataset in enumerate(["mnist", "fashion_mnist"]):
        for m, model in enumerate("abc"):
            for seed in range(7):  # seeds 5 and 6 are outside the declared list
                value = 0.02 + 0.004 * m * (d + 1) + 0.002 * rng.standard_normal() + (5.0 if seed >= 5 else 0.0)
                values[(dataset, model, seed)] = value
                _write(tmp_path, dataset, model, seed, value)
    _protocol_file(tmp_path)
    write_leaderboards(tmp_path, "mnist")
    write_leaderboards(tmp_path, "fashion_mnist")
    family = _csv(tmp_path / "confirmatory.csv")
    assert len(family) == 6 and set(family.seeds) == {"0 1 2 3 4"}
    raw = [st.ttest_rel([values[(r.dataset, r.model_a, s)] for s in range(5)],
                        [values[(r.dataset, r.model_b, s)] for s in range(5)]).pvalue for r in family.itertuples()]
    assert np.allclose(family.p_value, raw, rtol=1e-12)
    assert np.allclose(family.p_holm, multipletests(raw, method="holm")[1], rtol=1e-12)
    for dataset in ("mnist", "fashion_mnist"):
        pairs = pd.read_csv(tmp_path / "leaderboards" / dataset / "comparisons.csv")
        conf = pairs[pairs.role == "confirmatory"]
        assert len(conf) == 3 and set(conf.metric) == {"mmd"} and set(conf.protocol) == {"t v2"}
        mine = family[family.dataset == dataset].set_index(["model_a", "model_b"])
        for row in conf.itertuples():
            assert row.p_holm == pytest.approx(mine.loc[(row.model_a, row.model_b)].p_holm, rel=1e-15)
            assert row.n_a == 5  # seeds 5 and 6 never enter
        explo = pairs[pairs.role == "exploratory"]
        assert set(explo.metric) == {"fid"} and (explo.n_a == 7).all()
    aggregate = tmp_path / "leaderboards" / "aggregate"
    assert (aggregate / "performance_profile.png").is_file()
    assert "fashion_mnist mnist" in pd.read_csv(aggregate / "aggregate.csv").benchmarks.iloc[0]


def test_a_missing_test_counts_as_p_one_and_never_lowers_the_others(tmp_path):
    for seed in range(5):
        _write(tmp_path, "mnist", "a", seed, 0.01 + 0.001 * seed)
        _write(tmp_path, "mnist", "b", seed, 0.02 + 0.0013 * seed)
    _protocol_file(tmp_path)  # model c and fashion_mnist have no runs
    write_leaderboards(tmp_path, "mnist")
    family = _csv(tmp_path / "confirmatory.csv")
    made = family[family.test != "none"]
    assert len(family) == 6 and len(made) == 1 and (family[family.test == "none"].verdict == "n/a").all()
    assert made.p_holm.iloc[0] == pytest.approx(min(1.0, 6 * made.p_value.iloc[0]), rel=1e-12)


def test_holm_values_made_while_tests_are_missing_are_upper_bounds(tmp_path):
    """A dataset whose release is not in yet counts p = 1 in the Holm step, so the other dataset's adjusted
    p-values can only fall when its tests arrive: a separation stands, "not separated" may still turn."""
    rng = np.random.default_rng(11)
    for m, model in enumerate("abc"):
        for seed in range(5):
            _write(tmp_path, "mnist", model, seed, 0.02 + 0.0015 * m + 0.001 * rng.standard_normal())
    _protocol_file(tmp_path)
    write_leaderboards(tmp_path, "mnist")
    before = _csv(tmp_path / "confirmatory.csv").query("dataset == 'mnist'").set_index(["model_a", "model_b"])
    for m, model in enumerate("abc"):
        for seed in range(5):  # fashion_mnist's tests arrive, with p-values below some of mnist's
            _write(tmp_path, "fashion_mnist", model, seed, 0.02 + 0.004 * m + 0.0005 * rng.standard_normal())
    write_leaderboards(tmp_path, "fashion_mnist")
    family = _csv(tmp_path / "confirmatory.csv")
    after = family.query("dataset == 'mnist'").set_index(["model_a", "model_b"])
    assert (family.query("dataset == 'fashion_mnist'").p_value < before.p_value.max()).any()
    assert (after.p_value == before.p_value).all()
    assert (after.p_holm <= before.p_holm + 1e-15).all() and (after.p_holm < before.p_holm).any()


def test_runs_scored_by_different_classifiers_are_neither_pooled_nor_compared(tmp_path, caplog):
    for seed in range(3):
        _write(tmp_path, "mnist", "a", seed, 0.01 + 0.001 * seed, classifier="k1")
        _write(tmp_path, "mnist", "b", seed, 0.02 + 0.001 * seed, classifier="k2")
        _write(tmp_path, "mnist", "c", seed, 0.03 + 0.001 * seed, classifier="k1" if seed else "k2")
    write_leaderboards(tmp_path, "mnist", protocol=None)
    pairs = _csv(tmp_path / "leaderboards" / "mnist" / "comparisons.csv")
    fid = pairs[pairs.metric == "fid"].set_index(["model_a", "model_b"])
    assert fid.loc[("a", "b")].verdict == "n/a" and "classifier key k1" in fid.loc[("a", "b")].note
    assert "classifier key k2" in fid.loc[("a", "b")].note and math.isnan(fid.loc[("a", "b")].p_value)
    assert "not pooled" in fid.loc[("a", "c")].note and fid.loc[("a", "c")].verdict == "n/a"
    assert (pairs[pairs.metric == "mmd"].verdict != "n/a").all()  # mmd is not in the classifier's space
    table = pd.read_csv(tmp_path / "leaderboards" / "mnist" / "table4.csv").set_index("model")
    assert math.isnan(table.loc["c"].fid_mean) and "not pooled" in table.loc["c"].fid_note
    text = (tmp_path / "leaderboards" / "mnist" / "table4.md").read_text()
    assert "n/a (not pooled: seeds scored under different protocols" in text
    assert any("not pooled" in r.message for r in caplog.records)


def test_the_leaderboard_command_names_a_protocol_and_refuses_a_bad_one_in_one_line(tmp_path):
    from click.testing import CliRunner

    from gvae_bench.cli import cli

    for seed in range(2):
        _write(tmp_path, "mnist", "a", seed, 0.01 + 0.001 * seed)
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nversion = 1\n')
    result = CliRunner().invoke(cli, ["leaderboard", "--dataset", "mnist", "--out", str(tmp_path), "--protocol", str(bad)])
    assert result.exit_code == 2 and "missing" in result.output and len(result.output.strip().splitlines()) == 1
    _protocol_file(tmp_path)
    result = CliRunner().invoke(cli, ["power", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    power = _csv(tmp_path / "power.csv")
    assert set(power.pilot_profile) == {"quick"} and len(power) == 6  # 3 pairs x 1 metric x 2 datasets


def test_a_pinned_classifier_is_named_by_its_sha256_and_differs_from_an_unpinned_key():
    from gvae_bench.results.eval_protocols import classifier_of, comparison_refusal

    pinned = classifier_of({"classifier_sha256": "ab" * 32, "classifier_version": 2, "classifier_key": "mnist-1"})
    assert pinned == "classifier sha256 abababababab (version 2)"
    other = classifier_of({"classifier_sha256": "cd" * 32, "classifier_version": 3})
    old = classifier_of({"classifier_key": "mnist-1"})
    assert old == "classifier key mnist-1 (weights not pinned)" and classifier_of({}) == ""
    assert comparison_refusal(pinned, pinned) == ""
    assert "version 2" in comparison_refusal(pinned, other) and "not pinned" in comparison_refusal(pinned, old)
