"""The report's page model: the plain data its templates render (cells, rows, tables, run groups,
datasets) and the small readers and formatters that fill it from the leaderboards' frames.

``gvae_bench.report`` lays the pages out and ``gvae_bench.report.tables`` builds the tables; both
build on this module, which imports neither.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvae_bench.results.collect import TABLE_TITLES


# ----------------------------------------------------------------------------------------------
# reading


def _float(value: Any) -> float:
    """A frame cell as a float (empty, None or not a number: NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _text(value: Any) -> str:
    """A frame cell as text (empty and NaN: the empty string)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _flag(value: Any) -> bool:
    """A True/False frame cell (a bool, or its text read from a CSV; absent: False)."""
    return _text(value) == "True"


def _table_order(name: str) -> tuple[int, str]:
    keys = list(TABLE_TITLES)
    return (keys.index(name) if name in keys else len(keys), name)


def short_commit(git: dict[str, Any] | None) -> str:
    """``abcdef1234`` or ``abcdef1234+dirty``: the commit a record names, as the tables write it."""
    commit = (git or {}).get("commit") or "unknown"
    return commit[:10] + ("+dirty" if (git or {}).get("dirty") else "")


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# ----------------------------------------------------------------------------------------------
# the view: plain data the templates render


@dataclass
class Cell:
    text: str
    interval: str = ""
    n: str = ""
    bold: bool = False
    group: str = ""
    provenance: str = ""


@dataclass
class Row:
    kind: str  # measured, reference, published
    model: str
    latent: str = ""
    profile: str = ""
    config_hash: str = ""
    seeds: str = ""
    commits: str = ""
    source: str = ""
    protocol: str = ""
    anchor: str = ""
    thumbnail: str = ""
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Metric:
    name: str
    higher_is_better: bool | None
    samples: str
    plot: str = ""
    ranked: bool = True  # False: the best value is a target (e.g. copying's 0), not an end of the scale

    @property
    def arrow(self) -> str:
        if not self.ranked:
            return "(≈ target)"
        return "" if self.higher_is_better is None else ("↑" if self.higher_is_better else "↓")

    @property
    def direction(self) -> str:
        if not self.ranked:
            return "not ranked: its best is a target value (see docs/metrics.md)"
        return "" if self.higher_is_better is None else ("higher is better" if self.higher_is_better else "lower is better")


@dataclass
class Table:
    name: str
    title: str
    metrics: list[Metric]
    rows: list[Row]
    profiles: list[str]
    commits: list[str]
    csv: str = ""
    markdown: str = ""

    @property
    def n_measured(self) -> int:
        return sum(row.kind == "measured" for row in self.rows)


@dataclass
class Picture:
    kind: str
    src: str
    caption: str


@dataclass
class SeedRun:
    seed: int
    status: str
    commit: str
    reason: str
    pictures: list[Picture]
    record: str


@dataclass
class RunGroup:
    """The runs of one (model, profile, config hash): one row of every table of its dataset."""

    anchor: str
    model: str
    profile: str
    config_hash: str
    latent: str
    seeds: list[SeedRun]
    statuses: dict[str, list[int]]
    steps: str
    batch_size: str
    n_samples: str

    @property
    def shown(self) -> SeedRun:
        """Seed 0 when it ran (else the lowest seed): the one whose pictures are shown."""
        by_seed = sorted(self.seeds, key=lambda s: (s.seed != 0, s.status != "finished", s.seed))
        return by_seed[0]

    @property
    def others(self) -> list[SeedRun]:
        return [s for s in sorted(self.seeds, key=lambda s: s.seed) if s is not self.shown]


@dataclass
class Dataset:
    name: str
    page: str
    kind: str
    groups: list[RunGroup]
    tables: list[Table]
    statuses: Counter
    commits: Counter
    unreadable: list[str]
    comparisons: str = ""
    notes: list[str] = field(default_factory=list)


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(target, start)).as_posix()


def _latent_text(latent: Any) -> str:
    value = _float(latent)
    return "" if math.isnan(value) else str(int(value)) if value == int(value) else str(value)
