"""Results stay in memory (issue 31, item 4): a sweep returns its records and its dataset's tables
as pandas frames, builds them from its own records in memory and the folder's other records read
once, and hands them to the report, which formats numbers from the frames; the files equal those
``runner.py leaderboard`` rebuilds from disk, and the report equals one built from the files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import gvae_bench.results.collect as collect
import gvae_bench.results.frames as frames
from gvae_bench.execution.records import RunStatus, read_record
from gvae_bench.report import write_report
from gvae_bench.results.frames import read_leaderboard
from gvae_bench.results.leaderboard import build_leaderboard
from gvae_bench.sweep import run_sweep

BUILT = re.compile(r"(built|Built)[^\n<]*")


def _sweep(out: Path, data_root: Path, seeds: list[int]):
    return run_sweep(["vae"], "ring8", profile="smoke", seeds=seeds, out=out, data_root=data_root)


def _texts(folder: Path, pattern: str) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): BUILT.sub("built", p.read_text(encoding="utf-8"))
            for p in sorted(folder.glob(pattern))}


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data_root):
    """Seed 0 swept first, then seed 1 into the same folder, counting the records read from disk."""
    out = tmp_path_factory.mktemp("in-memory")
    _sweep(out, data_root, [0])
    reads: list[Path] = []
    original = collect.read_record

    def counting(run_dir: Path):
        reads.append(Path(run_dir).resolve())
        return original(run_dir)

    collect.read_record = counting
    try:
        summary = _sweep(out, data_root, [1])
    finally:
        collect.read_record = original
    return out, summary, reads


def test_a_sweep_returns_its_records_and_its_tables_as_frames(swept):
    out, summary, _ = swept
    assert [r.seed for r in summary.records] == [1] and summary.records[0].status == RunStatus.FINISHED
    tables = summary.tables
    assert tables is not None and tables.dataset == "ring8"
    assert sorted(r.seed for r in tables.records) == [0, 1]  # the folder's other run is in the tables too
    assert {"table4", "table_modes"} <= set(tables.tables)
    table4 = tables.tables["table4"]
    assert isinstance(table4.frame, pd.DataFrame) and "mmd" in table4.metrics
    (row,) = table4.frame[table4.frame.row_kind == "measured"].to_dict("records")
    assert row["n_finished"] == 2 and row["seeds"] == "0 1"
    values = [r.metrics["mmd"]["value"] for r in tables.records]
    assert row["mmd_mean"] == pytest.approx(sum(values) / 2, rel=1e-12)
    assert set(tables.runs.seed) == {0, 1}
    assert sorted(p.name for p in summary.leaderboards) == sorted(p.name for p in tables.files)


def test_a_sweep_reads_from_disk_only_the_records_it_did_not_make(swept):
    out, summary, reads = swept
    (other,) = [r for r in summary.tables.records if r.seed == 0]
    seed0 = next((out / "runs" / "ring8").glob("vae/*/seed0")).resolve()
    assert reads == [seed0]  # once, for the tables and the report; seed 1 came from memory
    assert read_record(seed0).to_json() == other.to_json()


def test_the_sweeps_tables_equal_a_rebuild_from_disk(swept, tmp_path):
    out, summary, _ = swept
    before = _texts(out / "leaderboards" / "ring8", "*")
    build_leaderboard(out, "ring8")
    assert _texts(out / "leaderboards" / "ring8", "*") == before
    back = read_leaderboard(out, "ring8", summary.tables.records)
    assert set(back.tables) == set(summary.tables.tables)
    for name, table in summary.tables.tables.items():  # the CSVs read back hold the frames' values
        read = back.tables[name].frame
        assert list(read.columns) == list(table.frame.columns) and len(read) == len(table.frame)
        for column in table.frame.columns:
            for held, got in zip(table.frame[column], read[column]):
                assert _same(held, got), (name, column, held, got)
    assert back.tables["table4"].directions == summary.tables.tables["table4"].directions


def _same(held, got) -> bool:
    missing = lambda v: v is None or v == "" or (isinstance(v, float) and v != v)  # noqa: E731
    if missing(held) or missing(got):
        return missing(held) and missing(got)
    if isinstance(held, (bool, int, float)) and not isinstance(held, str):
        return bool(held == got)
    return str(held) == str(got)


def test_the_report_from_frames_equals_the_report_from_the_files(swept, monkeypatch):
    out, summary, _ = swept
    from_memory = _texts(out / "report", "*.html")
    write_report(out)  # nothing in memory: the records and the CSVs are read back
    assert _texts(out / "report", "*.html") == from_memory

    def refuse(*args, **kwargs):
        raise AssertionError("read from disk although the caller held the tables")

    monkeypatch.setattr(frames, "_read_csv", refuse)
    import gvae_bench.report as report

    monkeypatch.setattr(report, "read_leaderboard", refuse)
    monkeypatch.setattr(report, "read_records", refuse)
    write_report(out, {"ring8": summary.tables})
    assert _texts(out / "report", "*.html") == from_memory


def _cells_equal(left: str, right: str) -> bool:
    if left == right:
        return True
    try:
        a, b = float(left), float(right)
    except ValueError:
        return False
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


@pytest.mark.parametrize("folder", ["reference", "earlier"])
def test_the_committed_reference_tables_rebuild_unchanged(folder, tmp_path, monkeypatch):
    """``runner.py leaderboard`` on a copy of a committed results folder (the reference tables, and
    the earlier MNIST runs beside them) writes its committed tables and report again, but for their
    "built" lines (CSV numbers to 1e-9 relative)."""
    import csv
    import shutil

    from click.testing import CliRunner

    from gvae_bench.cli import cli

    committed = Path(__file__).resolve().parents[1] / "results" / folder
    out = tmp_path / "results" / folder
    shutil.copytree(committed, out, ignore=shutil.ignore_patterns("*.pt"))
    monkeypatch.chdir(tmp_path)  # the path the tables name, as in the README's command
    result = CliRunner().invoke(cli, ["leaderboard", "--dataset", "mnist", "--out", f"results/{folder}"])
    assert result.exit_code == 0, result.output
    changed = 0
    for path in sorted(out.rglob("*")):
        if path.suffix not in (".csv", ".md", ".html") or not path.is_file():
            continue
        original = committed / path.relative_to(out)
        assert original.is_file(), f"{path.relative_to(out)} is new"
        if path.suffix == ".csv":
            with open(path, newline="") as a, open(original, newline="") as b:
                rows, expected = list(csv.reader(a)), list(csv.reader(b))
            assert len(rows) == len(expected), path.relative_to(out)
            for row, want in zip(rows, expected):
                assert len(row) == len(want) and all(map(_cells_equal, row, want)), (path.relative_to(out), row, want)
        else:
            assert BUILT.sub("built", path.read_text()) == BUILT.sub("built", original.read_text()), path.relative_to(out)
        changed += path.stat().st_mtime > original.stat().st_mtime
    assert changed > 10  # the tables, the comparisons, (the aggregate) and the report were written again
