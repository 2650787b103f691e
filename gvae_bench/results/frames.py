"""One dataset's leaderboards in memory: the run records, the tidy per-run frame and each table as a
pandas frame, as ``leaderboard.build_leaderboard`` makes and writes them (``runs.csv``, ``<table>.csv`` and ``.md``, ``comparisons.csv`` and ``.md``).

A sweep hands its ``Leaderboard`` to the report; for a results folder that no command of this
process built, ``read_leaderboard`` reads the written CSVs back into frames of the same types (the
report formats numbers from frames, never from CSV text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from gvae_bench.execution.records import RunRecord
from gvae_bench.results.bounds import BOUNDS_COLUMNS

#: per-metric columns of a table that hold numbers, and those that hold True/False
NUMBER_SUFFIXES = ("_mean", "_std", "_n", "_ci_low", "_ci_high")
FLAG_SUFFIXES = ("_bold", "_evaluated")
NUMBER_COLUMNS = ("latent_dim", "n_finished", "n_diverged", "n_failed", "n_running", "seed", "value", "reference",
                  "n_generated", "n_real", *BOUNDS_COLUMNS[BOUNDS_COLUMNS.index("seed"):])
FLAG_COLUMNS = ("higher_is_better", "ranked")


@dataclass
class TableFrame:
    """One leaderboard: its rows (measured, real-data reference, published), its metric names,
    each metric's direction and its Markdown text. Table 7's run-by-run bounds are a table of their
    own, ``table7_bounds``, with no metric columns."""

    name: str
    frame: pd.DataFrame
    metrics: list[str]
    directions: dict[str, bool]
    markdown: str = ""


@dataclass
class Leaderboard:
    """A dataset's results: its run records, one row per run and metric (``runs``), its tables by
    name, the comparisons of their rows, and the files they were written to (``files``)."""

    out: Path
    dataset: str
    records: list[RunRecord]
    runs: pd.DataFrame
    tables: dict[str, TableFrame] = field(default_factory=dict)
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons_markdown: str = ""
    unreadable: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return leaderboard_folder(self.out, self.dataset)


def leaderboard_folder(out: Path, dataset: str) -> Path:
    return Path(out) / "leaderboards" / dataset


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` read as text, with its number and True/False columns converted (an empty cell: NaN)."""
    frame = frame.copy()
    for column in frame.columns:
        if column in NUMBER_COLUMNS or column.endswith(NUMBER_SUFFIXES):
            frame[column] = pd.to_numeric(frame[column].replace("", None), errors="coerce").astype(float)
        elif column in FLAG_COLUMNS or column.endswith(FLAG_SUFFIXES):
            frame[column] = frame[column].map({"True": True, "False": False, "": None})
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size <= 1:
        return pd.DataFrame()
    return _typed(pd.read_csv(path, dtype=str, keep_default_na=False))


def read_leaderboard(out: Path, dataset: str, records: list[RunRecord],
                     unreadable: list[str] | None = None) -> Leaderboard:
    """The leaderboards written under ``<out>/leaderboards/<dataset>/`` as frames, beside ``records``
    (the dataset's run records, read by the caller); tables with no rows are left out."""
    folder = leaderboard_folder(out, dataset)
    tables = {}
    for path in sorted(folder.glob("table*.csv")) if folder.is_dir() else []:
        frame = _read_csv(path)
        if not len(frame):
            continue
        md = path.with_suffix(".md")
        names = [c[: -len("_mean")] for c in frame.columns if c.endswith("_mean")]
        tables[path.stem] = TableFrame(path.stem, frame, names, {}, md.read_text(encoding="utf-8") if md.is_file() else "")
    runs = _read_csv(folder / "runs.csv")
    if len(runs) and "higher_is_better" in runs:
        directions = {m: bool(h) for m, h in zip(runs["metric"], runs["higher_is_better"]) if isinstance(h, bool)}
        for table in tables.values():
            table.directions = {m: directions[m] for m in table.metrics if m in directions}
    comparisons = folder / "comparisons.md"
    return Leaderboard(Path(out), dataset, records, runs, tables, _read_csv(folder / "comparisons.csv"),
                       comparisons.read_text(encoding="utf-8") if comparisons.is_file() else "",
                       list(unreadable or ()))
