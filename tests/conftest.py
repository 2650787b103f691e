"""Shared fixtures: the data root (``$GVAE_BENCH_DATA``, else ../shared/data beside the repo)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _data_root() -> Path:
    return Path(os.environ.get("GVAE_BENCH_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _classifier_cache(tmp_path_factory) -> None:
    """Domain classifiers trained by tests go to a temporary cache, never to the user's."""
    os.environ["GVAE_BENCH_CACHE"] = str(tmp_path_factory.mktemp("classifier-cache"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"no MNIST under {root}; set GVAE_BENCH_DATA to a folder holding MNIST/raw")
    return root


def default_sigint() -> None:
    """``preexec_fn`` of a child that a test interrupts: SIGINT at its default disposition, as a
    terminal starts a command, even when the tests run with SIGINT ignored (a background job of a
    non-interactive shell inherits it ignored, and Python then installs no KeyboardInterrupt)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python runner.py ARGS`` as a user would; returns the completed process."""
    full_env = {**os.environ, "GVAE_BENCH_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "runner.py"), *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=600)
