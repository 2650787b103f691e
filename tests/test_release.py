"""A release of a protocol, audited from its records: the committed reference release is one commit,
one clean tree, one environment and one classifier; a record that breaks any of them is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from tests.conftest import invoke_cli
from gvae_bench.execution.records import read_record, record_folder, write_record
from gvae_bench.results.protocol import read_protocol
from gvae_bench.results.release import audit_records, audit_release

PROTOCOL_PATH = REPO / "results" / "reference" / "protocol.toml"
RELEASE = REPO / "results" / "release"  # a dataset's runs while they are being made
REFERENCE = REPO / "results" / "reference"  # and where they move when all are in
RELEASE_COMMIT = "c9cbcae9e13369499be23d4d9fb3cc4b59dead44"


@pytest.fixture(scope="module")
def protocol():
    return read_protocol(PROTOCOL_PATH)


def test_the_committed_release_is_one_commit_one_environment_one_classifier(protocol):
    pinned = json.loads((REPO / "gvae_bench" / "pinned" / "classifiers.json").read_text())["mnist"]
    (mnist, _) = audit_release(REFERENCE, protocol)
    (_, fashion) = audit_release(RELEASE, protocol)
    assert mnist.consistent, mnist.disagreements
    assert set(mnist.found) == set(mnist.declared) and len(mnist.found) == 25 and not mnist.missing
    assert {r.git["commit"] for r in mnist.found.values()} == {RELEASE_COMMIT}
    assert mnist.shared["commit"] == RELEASE_COMMIT[:12] and mnist.shared["tree"] == "clean"
    assert mnist.shared["torch threads"] == str(protocol.torch_threads) == "1"
    assert mnist.shared["classifier"].startswith(f"sha256 {pinned['sha256'][:12]}")
    assert mnist.shared["tuned on"] == "mnist"
    assert len(mnist.missing) == 25 - len(mnist.found)
    assert fashion.consistent and len(fashion.missing) == 25 - len(fashion.found)


def _release_copy(tmp_path: Path) -> Path:
    """The reference release's MNIST GVAE and VAE seed-0 records alone, in a fresh results folder."""
    out = tmp_path / "release"
    for model in ("gvae", "vae"):
        for found in (REFERENCE / "runs" / "mnist" / model).glob("tuned-*/seed0/record.json"):
            target = out / found.parent.relative_to(REFERENCE)
            target.mkdir(parents=True)
            shutil.copy(found, target / "record.json")
    return out


def _edit(out: Path, model: str, change) -> None:
    folder = next((out / "runs" / "mnist" / model).glob("*/seed0"))
    record = read_record(folder)
    change(record)
    write_record(record_folder(out, record), record)


def test_the_audit_counts_the_declared_runs_and_lists_the_missing_ones(tmp_path, protocol):
    audit = audit_release(_release_copy(tmp_path), protocol, ["mnist"])[0]
    assert sorted(audit.found) == [("gvae", 0), ("vae", 0)]
    assert len(audit.missing) == 23 and audit.consistent and not audit.complete
    assert audit.lines()[0] == "mnist: 2 of 25 declared runs of reference v1"
    assert "  missing: vae seed 1 2 3 4; gvae seed 1 2 3 4; wgan_gp seed 0 1 2 3 4;" in audit.lines()[1]
    seconds, unknown = audit.training_left()  # four more of each found model at its recorded time
    assert seconds == pytest.approx(4 * audit.found[("gvae", 0)].train_seconds + 4 * audit.found[("vae", 0)].train_seconds)
    assert unknown == ["wgan_gp", "vae_gan", "alpha_gan"]


@pytest.mark.parametrize("change, expected", [
    (lambda r: r.git.update(dirty=True), "tree: clean (vae seed 0) | dirty (gvae seed 0)"),
    (lambda r: r.git.update(commit="0123456789abcdef"),
     f"commit: 0123456789ab (gvae seed 0) | {RELEASE_COMMIT[:12]} (vae seed 0)"),
    (lambda r: r.environment.update(cpu="Intel Xeon"), "CPU: AMD EPYC (vae seed 0) | Intel Xeon (gvae seed 0)"),
    (lambda r: r.versions.update(torch="2.13.0"), "versions: "),
    (lambda r: r.metrics["coverage"]["details"].update(classifier_sha256="f" * 64),
     "classifier: sha256 a44f66cb84d7 (version mnist-v1) (vae seed 0) | sha256 a44f66cb84d7 (version mnist-v1) + "
     "sha256 ffffffffffff (version mnist-v1) (gvae seed 0)"),
    (lambda r: r.tuning.update(tuned_on="fashion_mnist"), "tuned on: fashion_mnist (gvae seed 0) | mnist (vae seed 0)"),
])
def test_a_record_that_breaks_the_release_is_named(tmp_path, protocol, change, expected):
    out = _release_copy(tmp_path)
    _edit(out, "gvae", change)
    audit = audit_release(out, protocol, ["mnist"])[0]
    assert not audit.consistent
    assert any(line.startswith(expected) for line in audit.disagreements), audit.disagreements


def test_the_audit_says_whether_a_run_made_on_this_machine_could_join(tmp_path, protocol):
    """The same commit, venv and thread count give other numbers on another CPU (results/reference/cross_cpu),
    so a machine of another CPU model can not add runs: the audit says so before any is made."""
    audit = audit_release(_release_copy(tmp_path), protocol, ["mnist"])[0]
    assert audit.machine_line("AMD EPYC") == "  this machine: AMD EPYC, the release's CPU: a run made here can join it"
    other = audit.machine_line("Intel(R) Xeon(R) Processor")
    assert other.startswith("  this machine: Intel(R) Xeon(R) Processor, not the release's AMD EPYC: "
                            "a run made here would not join it")
    _edit(tmp_path / "release", "gvae", lambda r: r.environment.update(cpu="Intel Xeon"))
    split = audit_release(tmp_path / "release", protocol, ["mnist"])[0]
    assert split.machine_line("AMD EPYC") is None  # no one CPU to join: the disagreement says it
    ok = invoke_cli("release", "--out", str(tmp_path / "empty"), "--protocol", str(PROTOCOL_PATH), "--dataset", "mnist")
    assert ok.returncode == 0 and "this machine" not in ok.stdout  # nothing made yet: any CPU may start it


def test_threads_other_than_the_declared_ones_break_the_release_even_when_shared(tmp_path, protocol):
    out = _release_copy(tmp_path)
    for model in ("gvae", "vae"):
        _edit(out, model, lambda r: r.environment.update(torch_threads=2))
    records = [read_record(path.parent) for path in out.glob("runs/**/record.json")]
    audit = audit_records(records, "mnist", protocol)
    assert audit.disagreements == ["torch threads: 2, the protocol declares 1"]


def test_runs_outside_the_declaration_are_counted_not_judged(tmp_path, protocol):
    out = _release_copy(tmp_path)
    _edit(out, "vae", lambda r: (setattr(r, "seed", 7), r.git.update(dirty=True)))
    audit = audit_release(out, protocol, ["mnist"])[0]
    assert sorted(audit.found) == [("gvae", 0), ("vae", 0)] and audit.outside == 1 and audit.consistent


def test_the_release_command_prints_the_audit_and_exits_1_when_the_runs_disagree(tmp_path):
    out = _release_copy(tmp_path)
    ok = invoke_cli("release", "--out", str(out), "--protocol", str(PROTOCOL_PATH), "--dataset", "mnist")
    assert ok.returncode == 0, ok.stderr
    assert "mnist: 2 of 25 declared runs of reference v1" in ok.stdout and "one release: commit c9cbcae9e133" in ok.stdout
    assert "training left: about " in ok.stdout and "(and wgan_gp, vae_gan, alpha_gan: no run yet to go by)" in ok.stdout
    assert "  this machine: " in ok.stdout  # runs are missing: whether this machine may make them
    incomplete = invoke_cli("release", "--out", str(out), "--protocol", str(PROTOCOL_PATH), "--complete")
    assert incomplete.returncode == 1
    _edit(out, "vae", lambda r: r.git.update(dirty=True))
    dirty = invoke_cli("release", "--out", str(out), "--protocol", str(PROTOCOL_PATH), "--dataset", "mnist")
    assert dirty.returncode == 1 and "differ: tree: clean (gvae seed 0) | dirty (vae seed 0)" in dirty.stdout


@pytest.mark.parametrize("args, message", [
    (("--dataset", "cifar10"), "cifar10 is not a dataset of protocol reference v1 (it declares mnist, fashion_mnist)"),
    (("--protocol", "nowhere.toml"), "protocol file not found: nowhere.toml"),
])
def test_the_release_command_refuses_bad_input_in_one_line(tmp_path, args, message):
    result = invoke_cli("release", "--out", str(tmp_path), *(("--protocol", str(PROTOCOL_PATH)) if "--protocol" not in args
                                                               else ()), *args)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_committed_confirmatory_family_lists_the_audit_of_its_own_runs(protocol):
    text = (REPO / "results" / "reference" / "confirmatory.md").read_text()
    for audit in audit_release(REPO / "results" / "reference", protocol):
        for line in audit.lines():
            assert line.strip() in text, line


def test_two_configurations_of_one_model_are_a_disagreement_not_a_release(tmp_path, protocol):
    out = _release_copy(tmp_path)
    record = read_record(next((out / "runs" / "mnist" / "gvae").glob("*/seed0")))
    record.seed, record.config_hash = 1, "0123456789"
    write_record(record_folder(out, record), record)
    audit = audit_release(out, protocol, ["mnist"])[0]
    assert not audit.consistent and ("gvae", 0) not in audit.found
    assert audit.disagreements[0].startswith("gvae: several configurations under profile tuned (0123456789, ")


def test_the_reading_of_the_cross_cpu_reruns_is_what_their_reports_say():
    """results/reference/cross_cpu/README.md: each row of its table recomputes from that rerun's
    reproduce.json; the same reruns on the release's own CPU model (the release's reproduce runs) gave
    every metric again exactly; the losses and the MMD bandwidth it quotes are the records'."""
    import csv
    import re
    import statistics

    folder = REFERENCE / "cross_cpu"
    text = (folder / "README.md").read_text()
    rows = re.findall(r"^\| (\w+) \| (\d+) \| ([\d.]+) \| (\d+) \| (\w+) ([\d.]+) \|$", text, flags=re.M)
    assert [row[0] for row in rows] == ["vae", "vae_gan"]
    for model, count, median, at_least_one, largest, fraction in rows:
        (report,) = (folder / "runs" / "mnist" / model).glob("tuned-*/seed0/reproduce.json")
        fractions = {r["metric"]: abs(r["fraction_of_seed_spread"]) for r in json.loads(report.read_text())["rows"]}
        assert int(count) == len(fractions)
        assert median == f"{statistics.median(fractions.values()):.2f}"
        assert int(at_least_one) == sum(value >= 1 for value in fractions.values())
        assert (largest, fraction) == (max(fractions, key=fractions.get), f"{max(fractions.values()):.2f}")
        (same_cpu,) = (REFERENCE / "runs" / "mnist" / model).glob("tuned-*/seed0/reproduce.json")
        assert all(r["difference"] == 0 for r in json.loads(same_cpu.read_text())["rows"])
        recorded = read_record(same_cpu.parent)
        rerun = read_record(report.parent)
        assert (recorded.environment["cpu"], rerun.environment["cpu"]) == ("AMD EPYC", "Intel(R) Xeon(R) Processor")
        bandwidths = [r.metrics["mmd"]["details"]["bandwidth"] for r in (recorded, rerun)]
        assert abs(bandwidths[0] - bandwidths[1]) <= 1e-15 * bandwidths[0]
    step10 = [next(r for r in csv.DictReader((path / "losses.csv").open()) if r["step"] == "10")["loss"]
              for path in (next((REFERENCE / "runs/mnist/vae").glob("tuned-*/seed0")),
                           next((folder / "runs/mnist/vae").glob("tuned-*/seed0")))]
    assert f"VAE loss {float(step10[0]):.2f} against {float(step10[1]):.2f}" in text


def test_the_kernel_pin_reading_is_what_its_tables_say():
    """results/reference/cross_cpu/README.md: the counts it quotes from kernel_pins/*.csv (settings tried,
    settings giving a logged row identical to the record's, settings with the step-10 loss alone equal)."""
    import csv
    import re

    folder = REFERENCE / "cross_cpu"
    text = " ".join((folder / "README.md").read_text().split())
    tables = {name: list(csv.DictReader((folder / "kernel_pins" / f"{name}_vae.csv").open()))
              for name in ("mnist", "fashion")}
    (settings,) = {len(rows) for rows in tables.values()}
    assert settings == 48
    assert len({(r["aten_cpu_capability"], r["onednn_max_cpu_isa"], r["mkl"]) for r in tables["mnist"]}) == settings
    identical = [sum(int(r["rows_identical"]) > 0 for r in rows) for rows in tables.values()]
    assert identical == [0, 0]  # so both the README's "0 of 48 each" and the protocol doc's "none of 48"
    assert f"under each of {settings} kernel settings" in text and f"0 of {settings} each" in text
    loss_equal = [sum(r["first_loss_here"] == r["first_loss_committed"] for r in rows) for rows in tables.values()]
    assert re.search(rf"under {loss_equal[0]} \(MNIST\) and {loss_equal[1]} \(Fashion-MNIST\) settings", text)
    protocol_doc = " ".join((REPO / "docs" / "protocol.md").read_text().split())
    assert f"under none of {settings} settings" in protocol_doc
    for rows in tables.values():
        assert {r["cpu"] for r in rows} == {"Intel(R) Xeon(R) Processor"}
        assert all(r["rows"] == "3" and r["steps"] == "30" for r in rows)


def test_the_same_seed_on_both_cpu_models_is_what_the_records_say():
    """results/reference/cross_cpu/README.md, Fashion-MNIST seed 0 on both CPU models: each row recomputes
    from the release's AMD EPYC record and the replication's Intel Xeon record of that seed (each metric's
    difference over the replication's seed spread, as `runner.py reproduce` computes it)."""
    import re
    import statistics

    from gvae_bench.results.reproduce import compare_metrics

    folder = REFERENCE / "cross_cpu"
    section = (folder / "README.md").read_text().split("## The same seed on both CPU models", 1)[1]
    rows = re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \| ([\d.]+) \| (\d+) \| (\w+) ([\d.]+) \|$", section, flags=re.M)
    assert [row[0] for row in rows] == ["gvae", "wgan_gp", "alpha_gan", "vae_gan", "vae"]
    medians = [float(row[3]) for row in rows]
    assert min(medians) < 1 < max(medians) and all(float(row[6]) > 1 for row in rows)  # the reading below the table
    for model, count, seeds, median, at_least_one, largest, fraction in rows:
        amd = next(path for base in (RELEASE, REFERENCE)  # the release's runs move to results/reference when all are in
                   for path in (base / "runs" / "fashion_mnist" / model).glob("tuned-*/seed0"))
        intel = folder / "runs" / "fashion_mnist" / model / amd.parent.name / "seed0"
        recorded, rerun = read_record(amd), read_record(intel)
        assert (recorded.environment["cpu"], rerun.environment["cpu"]) == ("AMD EPYC", "Intel(R) Xeon(R) Processor")
        assert recorded.git["commit"] == rerun.git["commit"] and not rerun.git["dirty"]
        compared = compare_metrics(recorded, rerun, intel)
        fractions = {r.metric: abs(r.fraction_of_seed_spread) for r in compared}
        assert int(count) == len(fractions) and {int(seeds)} == {r.n_seeds for r in compared}
        assert median == f"{statistics.median(fractions.values()):.2f}"
        assert int(at_least_one) == sum(value >= 1 for value in fractions.values())
        assert (largest, fraction) == (max(fractions, key=fractions.get), f"{max(fractions.values()):.2f}")
