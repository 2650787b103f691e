"""Where the tuning studies live and how processes share them: the Optuna storage (SQLite under
``<out>/tuning/<dataset>/`` by default, any RDB URL), file locks, the trial heartbeat, seeded samplers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Iterator

from gvae_bench.errors import UserError

log = logging.getLogger(__name__)
HEARTBEAT_INTERVAL_S, GRACE_PERIOD_S = 30, 120


def tuning_folder(out: Path | str, dataset: str) -> Path:
    return Path(out) / "tuning" / dataset


def default_storage(out: Path | str, dataset: str) -> str:
    return f"sqlite:///{(tuning_folder(out, dataset) / 'studies.db').resolve()}"


def _storage(url: str):
    import optuna

    if "://" not in url:
        raise UserError(f"storage is an RDB URL such as sqlite:///path/studies.db; got {url!r}")
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_INTERVAL_S,
                                          grace_period=GRACE_PERIOD_S)
    except Exception as exc:  # bad URL, missing driver, unreachable server
        raise UserError(f"cannot open the tuning storage {url}: {type(exc).__name__}: {exc}") from None


def _sampler(kind: str, seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.RandomSampler(seed=seed)


def _trial_seed(seed: int, number: int) -> int:
    return (int(seed) * 1_000_003 + int(number)) % 2**32


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _trial_lock_path(folder: Path, study_name: str, number: int) -> Path:
    return Path(folder) / ".locks" / f"{study_name}-trial{number}.lock"


def hold_trial_lock(folder: Path, study_name: str, number: int) -> int:
    """Take the lock file of trial ``number`` (the caller holds the study's lock, under which the
    trial was created) and return its descriptor; the trial's process keeps it until the trial ends,
    and the system releases it when that process dies."""
    path = _trial_lock_path(folder, study_name, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def fail_orphaned_trials(study, folder: Path) -> list[int]:
    """Fail the running trials of ``study`` whose process has died on this machine: their lock file
    (``hold_trial_lock``) exists and can be taken. Called under the study's lock, so no live process
    is between creating a trial and locking it. Trials run elsewhere (no lock file here) are left to
    the heartbeat. Returns the numbers failed."""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        path = _trial_lock_path(folder, study.study_name, trial.number)
        if not path.exists():
            continue
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its process is alive
        finally:
            os.close(fd)
        study._storage.set_trial_user_attr(trial._trial_id, "reason", "its tune process ended while it ran (killed)")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        failed.append(trial.number)
    return failed


@contextlib.contextmanager
def _heartbeat(storage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat while it runs, so a dead process's trial is failed later."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_INTERVAL_S):
            try:
                storage.record_heartbeat(trial_id)
            except Exception as exc:  # a storage hiccup must not stop the trial
                log.warning("heartbeat of trial %d not recorded: %s", trial_id, exc)

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's notes that the heartbeat is meant for ``Study.optimize`` (here it is recorded by
    ``_heartbeat``) and that it is experimental: not for the user."""
    import optuna

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        yield
