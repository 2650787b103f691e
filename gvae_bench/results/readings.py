"""Readings that cannot drift: ``<out>/README.md`` rendered from a Jinja2 template over the committed tables.

Every number a reading quotes from a table is an expression over that table's CSV, so rebuilding
the tables and rendering again changes the reading with them (``write_leaderboards`` renders
``<out>/README.md.j2`` into ``<out>/README.md`` after each rebuild; ``python -m gvae_bench.results.readings
OUT`` does it on its own), and ``tests/test_readings.py`` fails when the committed README is not
the render of its template. A template names what it quotes by what it is, never by a row number:

- ``cell(dataset, table, model, profile, metric, field="mean")``: a measured cell of ``tableN.csv``
  (``field``: mean, std, n, ci_low, ci_high), for the row of ``model`` at its profile's settings;
  ``latent=`` picks a row of a latent sweep; ``reference(dataset, table, profile, metric, field)``
  the real-data row;
- ``pair(dataset, metric, a, b, profile=..., table="table4")``: a ``comparisons.csv`` row as
  A against B (flipped when the file holds B against A: the difference and interval change sign);
- ``bold(dataset, table, profile, metric)``: the models whose cell is bold;
- ``confirmatory(dataset, metric, a, b)``: a row of the protocol's family (``confirmatory.csv``);
- ``aggregate(model)`` / ``improvement(metric, a, b)``: the cross-benchmark tables;
- ``reproduce(run_dir)``: a ``reproduce.json``'s fractions of the seed spread, by metric;
- ``largest_move(*run_dirs)``: the largest of those fractions over several runs, with its metric and run;
- ``curve(run_dir, metric)``: a ``curve_<metric>.csv`` as a list of values;
- ``pairs(dataset, table, profile)``: all comparisons rows of one table and profile;
- ``check(condition, claim)``: renders nothing when ``condition`` holds and stops the render with
  ``claim`` when it does not, for prose that states an order or a bound the numbers must keep;
- filters ``g(x, digits=3)`` (significant digits), ``f(x, decimals=2)`` and ``p(x)`` (a p-value).
The macros ``ci`` (mean [interval]), ``diff`` (a pair's difference [interval]) and ``sd`` (mean ± std)
are shared by every template: ``{% from "readings_macros.j2" import ci, diff, sd %}``.
A missing row is an error naming it (StrictUndefined), not an empty string.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from gvae_bench.atomic import atomic_write_text
from gvae_bench.errors import UserError

log = logging.getLogger(__name__)

TEMPLATE = "README.md.j2"
RENDERED = "README.md"
MACROS = Path(__file__).with_name("readings_macros.j2")  # ci, diff, sd: {% from "readings_macros.j2" import ci %}


def g(x: Any, digits: int = 3) -> str:
    value = float(x)
    if math.isnan(value):
        return "n/a"
    text = f"{value:.{digits}g}"
    return text if "e" not in text else f"{value:.{digits - 1}e}"


def f(x: Any, decimals: int = 2) -> str:
    value = float(x)
    return "n/a" if math.isnan(value) else f"{value:.{decimals}f}"


def p(x: Any) -> str:
    """A p-value: two significant digits from 0.01, one below (``0.008``, ``3e-05``)."""
    value = float(x)
    if math.isnan(value):
        return "n/a"
    return g(value, 2 if value >= 0.01 else 1)


class Tables:
    """Reads the committed CSVs of one results folder for a template."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)

    def _file(self, relative: str) -> Path:
        path = self.out / relative
        if not path.is_file():
            raise UserError(f"a reading cites {relative}, which does not exist under {self.out}")
        return path

    @lru_cache(maxsize=None)
    def rows(self, relative: str) -> tuple[dict[str, str], ...]:
        with open(self._file(relative), newline="", encoding="utf-8") as handle:
            return tuple(csv.DictReader(handle))

    def _one(self, relative: str, what: str, rows: list[dict[str, str]]) -> dict[str, str]:
        if len(rows) != 1:
            raise UserError(f"a reading cites {what} in {relative}: {len(rows)} rows match, not one")
        return rows[0]

    def cell(self, dataset: str, table: str, model: str, profile: str, metric: str, field: str = "mean",
             latent: int | None = None) -> float:
        relative = f"leaderboards/{dataset}/{table}.csv"
        rows = [r for r in self.rows(relative) if r["row_kind"] == "measured" and r["model"] == model
                and r["profile"] == profile and (latent is None or float(r["latent_dim"]) == latent)]
        return float(self._one(relative, f"{model} ({profile}, latent {latent})", rows)[f"{metric}_{field}"])

    def reference(self, dataset: str, table: str, profile: str, metric: str, field: str = "mean") -> float:
        relative = f"leaderboards/{dataset}/{table}.csv"
        rows = [r for r in self.rows(relative) if r["row_kind"] == "reference" and r["profile"] == profile]
        return float(self._one(relative, f"the reference row ({profile})", rows)[f"{metric}_{field}"])

    def bold(self, dataset: str, table: str, profile: str, metric: str) -> list[str]:
        return [r["model"] for r in self.rows(f"leaderboards/{dataset}/{table}.csv")
                if r["row_kind"] == "measured" and r["profile"] == profile and r.get(f"{metric}_bold") == "True"]

    def pair(self, dataset: str, metric: str, a: str, b: str, profile: str, table: str = "table4") -> dict[str, Any]:
        relative = f"leaderboards/{dataset}/comparisons.csv"
        rows = [r for r in self.rows(relative) if r["table"] == table and r["metric"] == metric and r["profile"] == profile
                and {r["model_a"], r["model_b"]} == {a, b}]
        row = dict(self._one(relative, f"{a} against {b} on {metric} ({table}, {profile})", rows))
        numbers = {k: float(row[k]) if row[k] not in ("", None) else math.nan for k in
                   ("difference", "ci_low", "ci_high", "p_value", "p_holm", "mean_a", "mean_b")}
        row.update(numbers)
        if row["model_a"] != a:  # the file holds B against A
            row.update(difference=-numbers["difference"], ci_low=-numbers["ci_high"], ci_high=-numbers["ci_low"],
                       mean_a=numbers["mean_b"], mean_b=numbers["mean_a"], model_a=a, model_b=b,
                       verdict={"A better": "B better", "B better": "A better"}.get(row["verdict"], row["verdict"]))
        return row

    def pairs(self, dataset: str, table: str, profile: str) -> list[dict[str, Any]]:
        """Every comparisons row of one table and profile, numbers as floats (for a min or a count)."""
        rows = []
        for row in self.rows(f"leaderboards/{dataset}/comparisons.csv"):
            if row["table"] == table and row["profile"] == profile:
                rows.append({**row, **{k: float(row[k]) if row[k] else math.nan
                                       for k in ("difference", "ci_low", "ci_high", "p_value", "p_holm")}})
        return rows

    def confirmatory(self, dataset: str, metric: str, a: str, b: str) -> dict[str, Any]:
        rows = [r for r in self.rows("confirmatory.csv") if r["dataset"] == dataset and r["metric"] == metric
                and {r["model_a"], r["model_b"]} == {a, b}]
        return dict(self._one("confirmatory.csv", f"{a} against {b} on {metric} ({dataset})", rows))

    def aggregate(self, model: str) -> dict[str, str]:
        relative = "leaderboards/aggregate/aggregate.csv"
        return dict(self._one(relative, model, [r for r in self.rows(relative) if r["model"] == model]))

    def improvement(self, metric: str, a: str, b: str) -> dict[str, str]:
        relative = "leaderboards/aggregate/probability_of_improvement.csv"
        rows = [r for r in self.rows(relative) if r["metric"] == metric and r["model_a"] == a and r["model_b"] == b]
        return dict(self._one(relative, f"P({a} beats {b}) on {metric}", rows))

    def reproduce(self, run_dir: str) -> dict[str, float]:
        data = json.loads(self._file(f"{run_dir}/reproduce.json").read_text())
        return {row["metric"]: float(row["fraction_of_seed_spread"]) for row in data["rows"]}

    def largest_move(self, *run_dirs: str) -> dict[str, Any]:
        """Over the ``reproduce.json`` of each of ``run_dirs``: ``value``, the largest absolute fraction
        of the seed spread; ``metric`` and ``run`` (the run's folder), where it is; ``n``, the values."""
        moves = [(abs(x), metric, run) for run in run_dirs for metric, x in self.reproduce(run).items()]
        value, metric, run = max(moves, key=lambda move: move[0])
        return {"value": value, "metric": metric, "run": run, "n": len(moves)}

    def curve(self, run_dir: str, metric: str) -> list[float]:
        path = self._file(f"{run_dir}/curve_{metric}.csv")
        lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
        return [float(row["value"]) for row in csv.DictReader(lines)]


def check(condition: Any, claim: str) -> str:
    """Nothing when ``condition`` holds; a reading whose tables no longer bear ``claim`` out is an error."""
    if not condition:
        raise UserError(f"a reading claims {claim!r}, which its tables no longer bear out")
    return ""


def render(out: Path, template: Path | None = None) -> str:
    """The template (default ``<out>/README.md.j2``) rendered over ``out``'s committed tables."""
    out = Path(out)
    template = Path(template) if template else out / TEMPLATE
    env = Environment(loader=FileSystemLoader([template.parent, MACROS.parent]), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    env.filters.update(g=g, f=f, p=p)
    tables = Tables(out)
    env.globals.update({name: getattr(tables, name) for name in (
        "cell", "reference", "bold", "pair", "pairs", "confirmatory", "aggregate", "improvement", "reproduce", "largest_move", "curve")})
    env.globals.update(abs=abs, min=min, max=max, zip=zip, len=len, check=check)
    try:
        return env.get_template(template.name).render()
    except TemplateError as exc:
        raise UserError(f"{template}: {exc}") from None


def write_readings(out: Path) -> Path | None:
    """Render ``<out>/README.md.j2`` into ``<out>/README.md`` when the template exists; a reading that
    cites a row the tables no longer have is logged and leaves the old README in place."""
    out = Path(out)
    if not (out / TEMPLATE).is_file():
        return None
    try:
        text = render(out)
    except UserError as exc:
        log.warning("readings not rendered: %s", exc)
        return None
    atomic_write_text(out / RENDERED, text)
    return out / RENDERED


if __name__ == "__main__":  # python -m gvae_bench.results.readings OUT
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m gvae_bench.results.readings OUT")
    path = Path(sys.argv[1])
    try:
        atomic_write_text(path / RENDERED, render(path))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(path / RENDERED)
