"""The one results writer: atomic files, run records and their provenance.

Every file the harness writes goes through ``atomic_write_*``: the bytes go to a temporary file
in the same folder, are flushed to disk, and replace the target with ``os.replace``, so a killed
process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

RECORD_FILE = "record.json"
STATUS_RUNNING, STATUS_FINISHED, STATUS_DIVERGED, STATUS_FAILED = "running", "finished", "diverged", "failed"
FINAL_STATUSES = (STATUS_FINISHED, STATUS_DIVERGED)
REPO_ROOT = Path(__file__).resolve().parent.parent


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save(path: Path, save: Callable[[io.BytesIO], None]) -> None:
    """Atomically write what ``save`` writes into a buffer (torch.save, savefig, save_image)."""
    buffer = io.BytesIO()
    save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None
    with open(path) as handle:
        return json.load(handle)


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    atomic_write_json(Path(run_dir) / RECORD_FILE, record)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


#: Outputs committed beside the code: their changes (a sweep rewriting a leaderboard while another
#: runs) say nothing about the code that made a run, so they do not make a checkout dirty.
OUTPUT_PATHS = ("results",)


def git_commit() -> dict[str, Any]:
    """The commit of the harness's checkout, whether tracked files other than the committed outputs
    (``OUTPUT_PATHS``) had changes, and which (``changed``, at most 20 paths)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             *(f":(exclude){path}" for path in OUTPUT_PATHS)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        return {"commit": commit, "dirty": bool(changed), "changed": changed[:20]}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("gvae-bench", "torch", "torchvision", "numpy", "scipy", "torchmetrics"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions
