"""Checkpoints: what a run saves to resume exactly, and how it is read back without running code.

A checkpoint file may come from anywhere (shared storage, a cluster's filesystem, a downloaded
results archive), so it is untrusted input: every checkpoint, weight snapshot and cache file is
read with ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers (dicts,
lists, tuples, numbers, strings) and refuses any other object, so no code in the file runs. What a
checkpoint holds is stored in those types: weights and optimiser states as tensors, the RNG states
as tensors and integers, configs and loss logs as plain data.

Checkpoints written before the RNG states were tensors hold numpy's Mersenne-Twister state as an
``ndarray``; they are read with numpy's array reconstruction allowed
(``torch.serialization.safe_globals``), which builds arrays and nothing else.

``checkpoint.pt`` is replaced atomically; the one it replaces is kept as ``checkpoint.previous.pt``
until the next one is complete, so a checkpoint that cannot be read (truncated by a copy, say) is
moved aside and the run resumes from the previous one, or from scratch when there is none.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvae_bench.errors import UserError
from gvae_bench.atomic import atomic_save

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.previous.pt"

#: the environment variable naming the folder of the harness's caches (classifiers, preprocessed data)
CACHE_ENV = "GVAE_BENCH_CACHE"


def cache_folder(kind: str) -> Path:
    """The folder of one kind of cache file (``classifiers``, ``ct``, ``image_folder``): under
    ``$GVAE_BENCH_CACHE``, else ``$XDG_CACHE_HOME/gvae-bench``, else ``~/.cache/gvae-bench``. Cache
    files are read back with ``safe_load`` (tensors and plain data only)."""
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]) / "gvae-bench"
    else:
        base = Path.home() / ".cache" / "gvae-bench"
    return base / kind


class UnsafeFileError(UserError):
    """A file that holds objects other than tensors and plain data: refused, nothing in it run."""


class UnreadableFileError(UserError):
    """A file that is not a complete torch file (truncated, empty, another format)."""


def _legacy_numpy_globals() -> list[Any]:
    """What unpickling a numpy array needs: its reconstruction function, the array and dtype types."""
    from numpy._core import multiarray

    return [multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def safe_load(path: Path) -> Any:
    """The contents of the torch file ``path``, loaded on the CPU with ``weights_only=True``.

    ``UnsafeFileError`` when it holds other objects (a pickle that would call code),
    ``UnreadableFileError`` when it is not a complete torch file; both name the file.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_legacy_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if "global" in line.lower()]
        if not lines:  # nothing refused: a pickle stream that is broken
            raise UnreadableFileError(f"{path} cannot be read as a torch file (a broken pickle stream); it is "
                                      f"{path.stat().st_size} bytes") from None
        found = re.search(r"GLOBAL [\w.]+", " ".join(lines))
        detail = f"it would load {found.group(0).split()[1]}" if found else lines[-1].rstrip(".")
        raise UnsafeFileError(f"{path} holds objects other than tensors and plain data ({detail}); it was not "
                              "written by gvae-bench or was altered: refused, and nothing in it was run") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError, OSError) as exc:
        if isinstance(exc, OSError) and not path.exists():
            raise
        raise UnreadableFileError(f"{path} cannot be read as a torch file ({type(exc).__name__}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'empty'}); "
                                  f"it is {path.stat().st_size} bytes") from None


def rng_state() -> dict[str, Any]:
    """Python's, numpy's and torch's (and CUDA's) global RNG states, as tensors and integers."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved (or the tuples of a checkpoint written before it)."""
    python, numpy_state = state["python"], state["numpy"]
    if isinstance(python, dict):
        python = (python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss_next"])
    random.setstate(python)
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
                       numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as the run's checkpoint; the one it replaces becomes the previous checkpoint."""
    run_dir = Path(run_dir)
    current, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    new = run_dir / f".{CHECKPOINT_FILE}.new"
    atomic_save(new, lambda buffer: torch.save(state, buffer))
    if current.is_file():
        os.replace(current, previous)
    os.replace(new, current)


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    return target


def load_resume_state(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of ``run_dir`` (None: none, the run starts from scratch).

    An unreadable checkpoint is moved aside (``<name>.corrupt-<time>``, never deleted) with a
    warning, and the previous one is tried; an unsafe one stops with ``UnsafeFileError``.
    """
    run_dir = Path(run_dir)
    for name in (CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE):
        path = run_dir / name
        if not path.is_file():
            continue
        try:
            return safe_load(path)
        except UnreadableFileError as exc:
            moved = _move_aside(path)
            log.warning("%s; moved aside to %s, resuming from %s", exc, moved.name,
                        "the previous checkpoint" if name == CHECKPOINT_FILE and
                        (run_dir / PREVIOUS_CHECKPOINT_FILE).is_file() else "scratch")
    return None


def load_weights(model: torch.nn.Module, run_dir: Path) -> int:
    """Load the weights of a run's last checkpoint into ``model``; returns its step."""
    state = safe_load(Path(run_dir) / CHECKPOINT_FILE)
    model.load_state_dict(state["model"])
    return int(state["step"])
