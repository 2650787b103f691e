"""Run records and their provenance: the commit and software versions behind a result.

Every file the harness writes goes through ``gvae_bench.atomic`` (a killed process leaves the old
file or the new one, never half of one).

A run's ``record.json`` is a ``RunRecord``: written by ``write_record`` and read by ``read_record``
here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gvae_bench.atomic import atomic_write_json

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"


class RunStatus(str, enum.Enum):
    """Where a run stands. ``finished``, ``diverged`` and ``pruned`` (stopped early by a tuner's
    pruner, ``gvae_bench.tuning``) are final: a sweep does not redo them; ``running`` (or killed while
    running) and ``failed`` resume from the last checkpoint."""

    RUNNING = "running"
    FINISHED = "finished"
    DIVERGED = "diverged"
    FAILED = "failed"
    PRUNED = "pruned"

    def __str__(self) -> str:
        return self.value


FINAL_STATUSES = (RunStatus.FINISHED, RunStatus.DIVERGED, RunStatus.PRUNED)


class Outcome(str, enum.Enum):
    """What a sweep did with one of its runs."""

    RAN = "ran"
    SKIPPED = "skipped"  # its record was already final
    HELD = "held by another process"  # another sweep holds its lock

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass
class RunRecord:
    """The record of one run (``record.json``): what ran, with what, where, and what it measured.

    ``config`` is the fully resolved config (as ``config.json``), ``git`` the harness's commit
    (``git_commit``), ``versions`` the software versions, ``metrics`` each metric's result by name
    (value or n/a with its reason, sample counts, reference, details), ``data`` the data as loaded
    (sizes and the benchmark's facts). Keys a newer harness added and this one does not know are
    kept in ``extra`` and written back unchanged.
    """

    status: RunStatus
    model: str
    benchmark: str
    profile: str
    seed: int
    config_hash: str
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    device: str = "cpu"
    git: dict[str, Any] = dataclasses.field(default_factory=dict)
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    started: str | None = None
    ended: str | None = None
    attempts: int = 0
    data: dict[str, Any] | None = None
    steps_done: int | None = None
    resumed_from_step: int | None = None
    train_seconds: float | None = None
    metrics: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    rescored: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: outside plugins whose code made this run: "model"/"benchmark" -> origin, "metrics" -> name -> origin
    plugins: dict[str, Any] | None = None
    #: where it ran: torch threads, CPU and GPU model, deterministic algorithms (``environment()``)
    environment: dict[str, Any] | None = None
    #: a tuned run's fields came from: best_configs.toml (path, SHA-256), study, trial, validation score
    tuning: dict[str, Any] | None = None
    #: the config hash the run's model, benchmark and profile resolve to with no overrides (no ``--set``,
    #: ``--latent-sizes`` or tuned fields), decided when the sweep was planned: equal to ``config_hash``
    #: when the run ran at its profile's own settings, which the tables read without resolving again
    profile_config_hash: str | None = None
    reason: str | None = None
    traceback: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def latent_dim(self) -> Any:
        return self.config.get("model_config", {}).get("latent_dim")

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``record.json`` (empty optional fields left out)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        values["status"] = self.status.value
        optional = ("started", "ended", "data", "steps_done", "resumed_from_step", "train_seconds", "reason",
                    "traceback", "plugins", "environment", "tuning", "profile_config_hash")
        values = {k: v for k, v in values.items() if not (k in optional and v is None)}
        if not self.rescored:
            values.pop("rescored")
        return {**self.extra, **values}

    @classmethod
    def from_json(cls, data: Any, where: str = "record") -> "RunRecord":
        """A record from the object in ``record.json``; ``RecordError`` when it is not one."""
        if not isinstance(data, dict):
            raise RecordError(f"{where}: a run record is a JSON object, found {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        required = ("status", "model", "benchmark", "profile", "seed", "config_hash")
        absent = [key for key in required if key not in data]
        if absent:
            raise RecordError(f"{where}: the run record lacks {', '.join(absent)}")
        try:
            status = RunStatus(data["status"])
        except ValueError:
            raise RecordError(f"{where}: unknown status {data['status']!r}; one of "
                              f"{', '.join(s.value for s in RunStatus)}") from None
        values = {k: v for k, v in data.items() if k in known}
        values["status"] = status
        for key in ("metrics",):
            values[key] = values.get(key) or {}
        values["rescored"] = values.get("rescored") or []
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})


class RecordError(ValueError):
    """A ``record.json`` that cannot be read as a run record (not JSON, not an object, fields missing)."""
#: the folder above the harness's package: its checkout's root when it runs from source
REPO_ROOT = Path(__file__).resolve().parents[2]


def run_folder(out: Path, benchmark: str, model: str, profile: str, config_hash: str, seed: int) -> Path:
    """Where a run lives: ``<out>/runs/<benchmark>/<model>/<profile>-<config hash>/seed<seed>``."""
    return Path(out) / "runs" / benchmark / model / f"{profile}-{config_hash}" / f"seed{seed}"


def record_folder(out: Path, record: RunRecord) -> Path:
    """The folder ``record`` was written to under the results folder ``out``."""
    return run_folder(out, record.benchmark, record.model, record.profile, record.config_hash, record.seed)


def as_written(record: RunRecord) -> RunRecord:
    """A copy of ``record`` as ``record.json`` holds it (JSON types: lists, not tuples), so a table
    built from a record in memory equals one built from the file."""
    return RunRecord.from_json(json.loads(json.dumps(record.to_json())))


def read_record(run_dir: Path) -> RunRecord | None:
    """The run record in ``run_dir`` (None when there is none); ``RecordError`` when it is unreadable."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    return RunRecord.from_json(data, where=str(path))


def read_record_or_set_aside(run_dir: Path) -> RunRecord | None:
    """The run record in ``run_dir``; one that cannot be read is moved aside
    (``record.json.corrupt-<time>``, never deleted) with a warning naming it, and None is returned,
    so the run counts as unfinished and resumes from its checkpoint."""
    try:
        return read_record(run_dir)
    except RecordError as exc:
        path = Path(run_dir) / RECORD_FILE
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"{RECORD_FILE}.corrupt-{stamp}")
        os.replace(path, aside)
        log.warning("%s; moved aside to %s, and the run counts as unfinished", exc, aside.name)
        return None


def write_record(run_dir: Path, record: RunRecord | dict[str, Any]) -> None:
    """Write ``record`` (a ``RunRecord``, or its JSON object, checked by reading it as one) to ``run_dir``."""
    if not isinstance(record, RunRecord):
        record = RunRecord.from_json(record)
    atomic_write_json(Path(run_dir) / RECORD_FILE, record.to_json())


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: Outputs committed beside the code: their changes (a sweep rewriting a leaderboard while another
#: runs) say nothing about the code that made a run, so they do not make a checkout dirty.
OUTPUT_PATHS = ("results",)


def git_commit() -> dict[str, Any]:
    """Which harness made a result: the commit of the harness's own checkout, whether tracked files
    other than the committed outputs (``OUTPUT_PATHS``) had changes, and which (``changed``, at most
    20 paths); for an installed harness (its source is not the top of a git checkout) the installed
    distribution's version instead (``commit`` "unknown"). Never the commit of the working
    directory's repository."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != REPO_ROOT:
            return {"commit": "unknown", "dirty": None, "version": software_versions()["gvae-bench"],
                    "source": "installed distribution"}
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             *(f":(exclude){path}" for path in OUTPUT_PATHS)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        return {"commit": commit, "dirty": bool(changed), "changed": changed[:20], "source": "git checkout"}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "version": software_versions()["gvae-bench"],
                "source": "installed distribution"}


def cpu_model() -> str:
    """This machine's CPU model, as a record's ``environment.cpu`` names it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: str, threads: int) -> dict[str, Any]:
    """What, beyond the code and config, can change a run's numbers: the torch thread count (CPU
    sums depend on it), the CPU and GPU models, whether deterministic algorithms were on, the OS."""
    import torch

    gpu = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else None
    return {"torch_threads": threads, "cpu": cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu,
            "device": device, "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_deterministic": torch.backends.cudnn.deterministic, "platform": platform.platform()}


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("gvae-bench", "torch", "torchvision", "numpy", "scipy", "torchmetrics"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions
