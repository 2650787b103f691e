"""Where data and results live by default: light constants the command line reads before it imports torch."""

from __future__ import annotations

import os
from pathlib import Path

#: where a user's runs go unless ``--out`` says otherwise (git-ignored; the committed reference
#: results live in ``results/reference``)
DEFAULT_OUT = Path("results") / "local"

#: the environment variable naming the data root when ``--data-root`` is not given
DATA_ROOT_ENV = "GVAE_BENCH_DATA"


def resolve_data_root(given: Path | str | None = None) -> Path:
    """The folder holding the datasets: ``given`` (``--data-root``), else ``$GVAE_BENCH_DATA``, else ``./data``."""
    if given is not None:
        return Path(given)
    return Path(os.environ.get(DATA_ROOT_ENV) or "data")
