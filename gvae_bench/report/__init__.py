"""A static HTML report of a results folder: every leaderboard beside the pictures that explain it.

``write_report(out)`` writes ``<out>/report/``: ``index.html`` (every dataset with its tables, the
profiles, the sweep state, the harness version and commits) and one ``<dataset>.html`` per dataset
(each leaderboard with its intervals, ties and published rows, each model's sample grid,
reconstructions and loss curves, and a small plot of the per-seed values of each metric).

It is built from each dataset's ``Leaderboard`` (``gvae_bench.results.frames``: the run records and
the tables as frames): those a sweep or ``runner.py leaderboard`` hands it from memory, and for the
folder's other datasets the records read once and the tables read back from
``<out>/leaderboards/<dataset>/``. Beside them it reads only the pictures of each run (samples.png,
reconstructions.png, losses.png); the run pictures are linked by relative paths, never copied, so
the site opens from the file system with no network. The only files it makes are the HTML pages,
one CSS file and the per-metric seed plots (small PNGs under ``report/plots/``).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Mapping

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape  # noqa: E402

import gvae_bench  # noqa: E402
from gvae_bench.results.collect import read_records  # noqa: E402
from gvae_bench.results.frames import Leaderboard, read_leaderboard  # noqa: E402
from gvae_bench.execution.records import RunRecord, RunStatus, now, record_folder  # noqa: E402
from gvae_bench.report.model import Dataset, Picture, RunGroup, SeedRun, _rel, short_commit  # noqa: E402
from gvae_bench.report.tables import _tables  # noqa: E402

log = logging.getLogger(__name__)

REPORT_DIR = "report"
TEMPLATES = Path(__file__).with_name("templates")
STYLESHEET = "report.css"
#: the pictures a run folder may hold, in the order they are shown
PICTURES = (("samples", "samples.png"), ("reconstructions", "reconstructions.png"), ("losses", "losses.png"))
STATUS_ORDER = [s.value for s in (RunStatus.FINISHED, RunStatus.RUNNING, RunStatus.FAILED, RunStatus.DIVERGED)]


def _kind(records: list[RunRecord]) -> str:
    """``ct`` (HU-windowed volumes), ``mixture`` (2-D points with known modes) or ``images``."""
    for record in records:
        if (record.data or {}).get("window_hu") is not None:
            return "ct"
        if (record.config or {}).get("network_family") == "mlp2d":
            return "mixture"
    return "images"


SAMPLE_CAPTIONS = {
    "ct": "samples: HU-windowed montage of middle slices",
    "mixture": "samples: scatter over the real test points and the true mode centres",
    "images": "samples: grid",
}


def _anchor(model: str, profile: str, config_hash: str) -> str:
    return f"run-{model}-{profile}-{config_hash}"


def _groups(out: Path, dataset: str, records: list[RunRecord], kind: str, page_dir: Path) -> list[RunGroup]:
    grouped: dict[tuple[str, str, str], list[RunRecord]] = defaultdict(list)
    for record in records:
        grouped[(record.model, record.profile, record.config_hash)].append(record)
    groups = []
    for (model, profile, chash), members in sorted(grouped.items()):
        seeds, statuses = [], defaultdict(list)
        for record in sorted(members, key=lambda r: r.seed):
            folder = record_folder(out, record)
            pictures = []
            for what, filename in PICTURES:
                if (folder / filename).is_file():
                    caption = SAMPLE_CAPTIONS[kind] if what == "samples" else (
                        "reconstructions: rows of inputs, then their reconstructions" if what == "reconstructions"
                        else "loss curves against the training step")
                    pictures.append(Picture(what, _rel(folder / filename, page_dir), caption))
            statuses[record.status.value].append(record.seed)
            seeds.append(SeedRun(record.seed, record.status.value, short_commit(record.git),
                                 record.reason or "", pictures, _rel(folder / "record.json", page_dir)))
        config = members[0].config or {}
        train, evaluation = config.get("train") or {}, config.get("eval") or {}
        latent = members[0].latent_dim
        groups.append(RunGroup(_anchor(model, profile, chash), model, profile, chash,
                               "" if latent is None else str(latent), seeds, dict(statuses),
                               str(train.get("steps", "")), str(train.get("batch_size", "")),
                               str(evaluation.get("n_samples", ""))))
    return groups


def _datasets(out: Path) -> list[str]:
    names = set()
    for sub in ("runs", "leaderboards"):
        root = Path(out) / sub
        if root.is_dir():
            names |= {p.name for p in root.iterdir() if p.is_dir()}
    from gvae_bench.results.aggregate import AGGREGATE_DIR

    return sorted(names - {AGGREGATE_DIR})  # leaderboards/aggregate/ is the study's cross-benchmark summary


def _profiles(all_records: dict[str, list[RunRecord]]) -> list[dict[str, Any]]:
    """The profiles the records ran under, with the settings the records resolved them to."""
    try:
        from gvae_bench.profiles import load_profiles

        described = load_profiles()
    except Exception:  # a report of old results must not need today's profiles file
        described = {}
    found: dict[str, dict[tuple, dict[str, Any]]] = defaultdict(dict)
    for dataset, records in all_records.items():
        for record in records:
            config = record.config or {}
            train, evaluation = config.get("train") or {}, config.get("eval") or {}
            key = (dataset, record.model, record.config_hash)
            entry = found[record.profile].setdefault(key, {
                "dataset": dataset, "model": record.model, "config_hash": record.config_hash,
                "latent": "" if record.latent_dim is None else record.latent_dim,
                "steps": train.get("steps", ""), "batch_size": train.get("batch_size", ""),
                "n_samples": evaluation.get("n_samples", ""), "seeds": []})
            entry["seeds"].append(record.seed)
    return [{"name": name, "description": (described.get(name) or {}).get("description", ""),
             "runs": [dict(v, seeds=" ".join(map(str, sorted(v["seeds"])))) for _, v in sorted(entries.items())]}
            for name, entries in sorted(found.items())]


# ----------------------------------------------------------------------------------------------
# writing


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["status_order"] = STATUS_ORDER
    return env


def _harness_version() -> str:
    try:
        from importlib.metadata import version

        return version("gvae-bench")
    except Exception:
        return gvae_bench.__version__


def build_report(out: Path, target: Path, leaderboards: Mapping[str, Leaderboard] | None = None) -> Path:
    """Write the site into ``target`` (a folder beside ``<out>/runs``); returns its index.
    ``leaderboards``: datasets whose records and tables the caller holds (the others are read)."""

    out = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    env = _environment()
    built = now()
    datasets, all_records = [], {}
    for name in _datasets(out):
        board = (leaderboards or {}).get(name)
        if board is None:
            unreadable: list[str] = []
            records = read_records(out, name, unreadable)
            board = read_leaderboard(out, name, records, unreadable)
        records, unreadable = board.records, board.unreadable
        all_records[name] = records
        kind = _kind(records)
        # pages are written to target, which sits where <out>/report will: links are computed from there
        page_dir = out / REPORT_DIR
        groups = _groups(out, name, records, kind, page_dir)
        tables = _tables(board, page_dir, target, groups)
        comparisons = board.folder / "comparisons.md"
        dataset = Dataset(name, f"{name}.html", kind, groups, tables,
                          Counter(r.status.value for r in records), Counter(short_commit(r.git) for r in records),
                          unreadable, _rel(comparisons, page_dir) if comparisons.is_file() else "")
        if records and not tables:
            dataset.notes.append(f"no leaderboard written yet: python runner.py leaderboard --dataset {name} "
                                 f"--out {out}")
        if not records:
            dataset.notes.append("no readable run record")
        datasets.append(dataset)
    commits = Counter()
    for dataset in datasets:
        commits.update(dataset.commits)
    context = {"built": built, "version": _harness_version(), "datasets": datasets, "commits": sorted(commits.items()),
               "profiles": _profiles(all_records), "stylesheet": STYLESHEET, "out": out.name,
               "captions": SAMPLE_CAPTIONS}
    for dataset in datasets:
        html = env.get_template("dataset.html").render(dataset=dataset, **context)
        (target / dataset.page).write_text(html, encoding="utf-8")
    index = target / "index.html"
    index.write_text(env.get_template("index.html").render(**context), encoding="utf-8")
    shutil.copyfile(TEMPLATES / STYLESHEET, target / STYLESHEET)
    return index


def write_report(out: Path, leaderboards: Mapping[str, Leaderboard] | None = None) -> Path:
    """Write the static site ``<out>/report/`` from the run records and leaderboards under ``out``
    (those of ``leaderboards`` from memory); returns the path of its ``index.html``. The old report
    is replaced only once the new one is complete (it is built beside it, then moved into place)."""
    out = Path(out)
    final = out / REPORT_DIR
    partial = out / f".{REPORT_DIR}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    try:
        build_report(out, partial, leaderboards)
        if final.exists():
            old = out / f".{REPORT_DIR}.old-{os.getpid()}"
            final.rename(old)
            partial.rename(final)
            shutil.rmtree(old)
        else:
            partial.rename(final)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    log.info("report written to %s", final / "index.html")
    return final / "index.html"
