"""A study protocol as data: what a release runs and which of its comparisons are confirmatory.

A protocol TOML (the reference release's: ``results/reference/protocol.toml``) is declared before
the runs it governs. It names the models, datasets, profile and seeds (at least five), the primary
metric(s) of each table with the smallest difference worth detecting, alpha, the test (a paired t
by seed) and the correction (Holm). :class:`Protocol` reads and validates it; a bad file is one
:class:`~gvae_bench.errors.UserError` line.

**Confirmatory family.** Every unordered pair of the declared models, on every primary metric, on
every declared dataset: one paired t-test over the declared seeds (seed i of A against seed i of
B; runs of one seed share their real evaluation subsets), only runs of the declared profile at the
profile's own settings, and Holm (1979) over the whole family at once, across datasets and metrics.
With 5 models, 2 primary metrics and 2 datasets that is 10 x 2 x 2 = 40 tests. A test that cannot
be made (a missing run, a classifier mismatch) keeps its place in the family with p = 1, so a
missing run can never make the others' adjusted p smaller. A run at a seed outside the declared
list never enters a confirmatory test. The same pair on the same metric therefore has one
adjusted p wherever it is shown (``comparisons.csv`` of each dataset, ``confirmatory.csv``).

**Exploratory comparisons** are everything else (other metrics, other profiles, other tables,
seeds outside the list); they are labelled ``exploratory`` and corrected per question: Holm over
the distinct pairs of rows of one dataset, metric and profile, whichever tables show them (so a
pair shown in Table 4 and Table 5 has one adjusted p too), and, for a model against itself under
two profiles, over those pairs of one metric.

Changing a declared field after results exist makes a new protocol: copy the file, raise
``version``; every comparisons row names ``<name> v<version>``.
"""

from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvae_bench.errors import UserError

log = logging.getLogger(__name__)

PROTOCOL_FILE = "protocol.toml"
CONFIRMATORY, EXPLORATORY = "confirmatory", "exploratory"
KNOWN_TESTS = ("paired t by seed",)
KNOWN_CORRECTIONS = ("holm",)
MIN_SEEDS = 5
_TOP_LEVEL = {"name", "version", "declared", "models", "datasets", "profile", "seeds", "torch_threads",
              "tuned_from_dataset", "alpha", "test", "correction", "primary", "aggregate", "power"}


@dataclass(frozen=True)
class Primary:
    """A primary metric: the table it is read from and the smallest difference worth detecting
    (absolute, in the metric's own units)."""

    metric: str
    table: str
    smallest_difference: float


@dataclass(frozen=True)
class AggregateSpec:
    """The rliable-style aggregate over benchmarks: the normalised score (a metric already in
    [0, 1], higher better), the bootstrap replicates, the confidence and the bootstrap's seed."""

    score: str = "coverage"
    bootstrap_reps: int = 2000
    confidence: float = 0.95
    bootstrap_seed: int = 0


@dataclass(frozen=True)
class Protocol:
    """A validated study protocol (see the module docstring)."""

    name: str
    version: int
    declared: str
    models: tuple[str, ...]
    datasets: tuple[str, ...]
    profile: str
    seeds: tuple[int, ...]
    alpha: float
    primary: tuple[Primary, ...]
    test: str = "paired t by seed"
    correction: str = "holm"
    power: float = 0.8
    torch_threads: int | None = None
    tuned_from_dataset: dict[str, str] = field(default_factory=dict)
    aggregate: AggregateSpec = field(default_factory=AggregateSpec)
    path: str = ""

    def __post_init__(self) -> None:
        where = f"protocol {self.path or self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise UserError(f"{where}: `name` must be a non-empty string")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise UserError(f"{where}: `version` must be a positive integer, got {self.version!r}")
        for label, values in (("models", self.models), ("datasets", self.datasets)):
            if not values or any(not isinstance(v, str) or not v for v in values):
                raise UserError(f"{where}: `{label}` must be a non-empty list of names")
            if len(set(values)) != len(values):
                raise UserError(f"{where}: `{label}` names one entry twice")
        if len(self.models) < 2:
            raise UserError(f"{where}: `models` needs at least two models to compare")
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in self.seeds):
            raise UserError(f"{where}: `seeds` must be non-negative integers")
        if len(set(self.seeds)) != len(self.seeds) or len(self.seeds) < MIN_SEEDS:
            raise UserError(f"{where}: `seeds` must list at least {MIN_SEEDS} distinct seeds, got {list(self.seeds)}")
        if not isinstance(self.profile, str) or not self.profile:
            raise UserError(f"{where}: `profile` must be a profile name")
        for label, value in (("alpha", self.alpha), ("power", self.power),
                             ("aggregate.confidence", self.aggregate.confidence)):
            if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
                raise UserError(f"{where}: `{label}` must lie in (0, 1), got {value!r}")
        if self.test not in KNOWN_TESTS:
            raise UserError(f"{where}: `test` must be one of {', '.join(KNOWN_TESTS)}, got {self.test!r}")
        if self.correction not in KNOWN_CORRECTIONS:
            raise UserError(f"{where}: `correction` must be one of {', '.join(KNOWN_CORRECTIONS)}, got {self.correction!r}")
        if not self.primary:
            raise UserError(f"{where}: declare at least one [primary.<metric>]")
        for p in self.primary:
            if not isinstance(p.table, str) or not p.table:
                raise UserError(f"{where}: [primary.{p.metric}] needs `table`")
            d = p.smallest_difference
            if not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d) or d <= 0:
                raise UserError(f"{where}: [primary.{p.metric}] `smallest_difference` must be > 0, got {d!r}")
        if not isinstance(self.aggregate.bootstrap_reps, int) or self.aggregate.bootstrap_reps < 100:
            raise UserError(f"{where}: `aggregate.bootstrap_reps` must be an integer >= 100")
        unknown = set(self.tuned_from_dataset) - set(self.datasets)
        if unknown:
            raise UserError(f"{where}: `tuned_from_dataset` names undeclared dataset(s) {', '.join(sorted(unknown))}")

    @property
    def label(self) -> str:
        """``<name> v<version>``: what every table row answering this protocol names."""
        return f"{self.name} v{self.version}"

    @property
    def primary_metrics(self) -> dict[str, Primary]:
        return {p.metric: p for p in self.primary}

    def is_primary(self, dataset: str, table: str, metric: str) -> bool:
        p = self.primary_metrics.get(metric)
        return dataset in self.datasets and p is not None and p.table == table

    def family_size(self) -> int:
        """M: the confirmatory tests, pairs x primary metrics x datasets."""
        k = len(self.models)
        return k * (k - 1) // 2 * len(self.primary) * len(self.datasets)


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise UserError(f"{where}: missing `{key}`")
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise UserError(f"{where}: `{key}` has the wrong type ({type(value).__name__})")
    return value


def protocol_from_dict(data: dict[str, Any], path: str = "") -> Protocol:
    """A :class:`Protocol` from the parsed TOML; unknown top-level keys are logged, not fatal
    (fields may be added to a declared protocol; none of them changes the family)."""
    where = f"protocol {path}" if path else "protocol"
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        log.warning("%s: fields not read by this harness: %s", where, ", ".join(sorted(unknown)))
    primary_table = _get(data, "primary", dict, where)
    primary = []
    for metric, spec in primary_table.items():
        if not isinstance(spec, dict):
            raise UserError(f"{where}: [primary.{metric}] must be a table")
        primary.append(Primary(metric, spec.get("table", ""), spec.get("smallest_difference", math.nan)))
    agg = data.get("aggregate", {})
    if not isinstance(agg, dict):
        raise UserError(f"{where}: [aggregate] must be a table")
    defaults = AggregateSpec()
    aggregate = AggregateSpec(agg.get("score", defaults.score), agg.get("bootstrap_reps", defaults.bootstrap_reps),
                              agg.get("confidence", defaults.confidence), agg.get("bootstrap_seed", defaults.bootstrap_seed))
    tuned_from = data.get("tuned_from_dataset", {})
    if not isinstance(tuned_from, dict):
        raise UserError(f"{where}: `tuned_from_dataset` must be a table")
    return Protocol(
        name=_get(data, "name", str, where), version=_get(data, "version", int, where),
        declared=str(data.get("declared", "")), models=tuple(_get(data, "models", list, where)),
        datasets=tuple(_get(data, "datasets", list, where)), profile=_get(data, "profile", str, where),
        seeds=tuple(_get(data, "seeds", list, where)), alpha=_get(data, "alpha", (int, float), where),
        primary=tuple(primary), test=data.get("test", "paired t by seed"), correction=data.get("correction", "holm"),
        power=data.get("power", 0.8), torch_threads=data.get("torch_threads"), tuned_from_dataset=dict(tuned_from),
        aggregate=aggregate, path=path)


def read_protocol(path: Path) -> Protocol:
    """Read and validate a protocol TOML; a missing or malformed file is a one-line UserError."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"protocol file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"protocol {path}: not valid TOML ({exc})") from None
    return protocol_from_dict(data, str(path))


def protocol_for(out: Path, explicit: Path | None = None) -> Protocol | None:
    """The protocol a results folder answers: ``explicit`` when given, else ``<out>/protocol.toml``
    when present, else None (every comparison is then exploratory)."""
    if explicit is not None:
        return read_protocol(explicit)
    path = Path(out) / PROTOCOL_FILE
    return read_protocol(path) if path.is_file() else None
