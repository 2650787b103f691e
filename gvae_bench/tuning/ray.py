"""A tuning budget spent by several Ray workers at once, on one Optuna storage.

    from gvae_bench.execution.executors import ExecutorOptions
    from gvae_bench.tuning.ray import tune_on_ray
    summary = tune_on_ray(["vae", "wgan_gp"], "ring8", workers=2, options=ExecutorOptions(),
                          trials=16, profile="quick", out="results/local")

Each of ``workers`` Ray tasks runs ``gvae_bench.tuning.tune`` with the same arguments, one model's
study after another, on the same storage and ``out``: the studies' trial count and the creation of
each trial are shared through the storage and the lock files under ``<out>/tuning/<dataset>/.locks``
(see ``gvae_bench.tuning``), so the workers together add each study's missing trials exactly once
and a trial draws the same parameters whichever worker runs it. The tables, plots and
``best_configs.toml`` are written once, by the driver, after every worker has returned.

Each task declares ``options.cpus_per_run`` CPUs (default 1) and sets torch to that many threads
(rounded down, at least 1), so a trial computes the same sums as under ``tune`` in a process with
that many threads. Without ``options.address`` Ray starts on this machine and stops afterwards. On
a cluster (``address``), ``out`` and the data must be on storage every node sees, and the storage
should be an RDB URL (PostgreSQL, MySQL) rather than the default SQLite file; the trial count is
exact only where the nodes share ``out``'s lock files (a shared file system), otherwise a study may
overshoot its count by up to one trial per worker. Ctrl-C cancels the workers: the trial each was
running is told failed, finished trials are kept, and the same call resumes the studies.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

from gvae_bench.errors import UserError
from gvae_bench.execution.executors import ExecutorOptions, RayExecutor
from gvae_bench.tuning import StudyResult, TuningSummary

log = logging.getLogger(__name__)

_WAIT_POLL_SECONDS = 0.5


def _tune_task(models: list[str], dataset: str, kwargs: dict[str, Any], threads: int,
               log_level: int) -> tuple[str, Any]:
    """The body of one Ray task: ``tune`` on the shared storage, without writing the tables.
    Returns ``("summary", TuningSummary)`` or, for bad input, ``("user_error", message)``."""
    import torch

    from gvae_bench.tuning import tune

    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(log_level)
    torch.set_num_threads(threads)
    try:
        return "summary", tune(models, dataset, write_tables=False, **kwargs)
    except UserError as exc:
        return "user_error", str(exc)


def merge_summaries(dataset: str, storage: str, parts: Sequence[TuningSummary]) -> TuningSummary:
    """One summary from the workers' summaries of the same studies: per study, the counts of the
    worker that returned it last (the storage's state then) and the trials every worker added."""
    merged = TuningSummary(dataset=dataset, storage=storage)
    by_name: dict[str, StudyResult] = {}
    added: dict[str, int] = {}
    for part in parts:
        for study in part.studies:
            added[study.study_name] = added.get(study.study_name, 0) + study.added
            if study.study_name not in by_name or study.trials >= by_name[study.study_name].trials:
                by_name[study.study_name] = study
    for name, study in by_name.items():
        study.added = added[name]
        merged.studies.append(study)
    return merged


def tune_on_ray(models: Sequence[str], dataset: str, *, workers: int, options: ExecutorOptions = ExecutorOptions(),
                out: Path | str, data_root: Path | str | None = None, storage: str | None = None,
                **tune_kwargs: Any) -> TuningSummary:
    """Tune ``models`` on ``dataset`` with ``workers`` Ray tasks sharing one storage; the other
    keyword arguments are ``gvae_bench.tuning.tune``'s. Returns the merged ``TuningSummary`` and
    writes the dataset's tables, plots and best configurations once, at the end."""
    import ray

    from gvae_bench.execution.runs import resolve_data_root
    from gvae_bench.tuning import default_storage
    from gvae_bench.tuning.outputs import write_outputs

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UserError(f"--workers is a whole number >= 1; got {workers!r}")
    out = Path(out).absolute()
    root = resolve_data_root(data_root).absolute()
    url = storage or default_storage(out, dataset)
    cpus = options.cpus_per_run if options.cpus_per_run is not None else 1.0
    threads = max(1, math.floor(cpus))
    kwargs = dict(tune_kwargs, out=out, data_root=root, storage=url)
    log_level = logging.getLogger("gvae_bench").getEffectiveLevel()
    parts: list[TuningSummary] = []
    with RayExecutor(options) as executor:
        executor.check_feasible({(float(cpus), 0.0)})
        task = ray.remote(max_retries=0)(_tune_task)
        pending = [task.options(name="gvae_tune", num_cpus=cpus).remote(list(models), dataset, kwargs, threads, log_level)
                   for _ in range(workers)]
        log.info("tuning %s on %s with %d Ray worker(s) of %g CPU(s)", ",".join(models), dataset, workers, cpus)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=_WAIT_POLL_SECONDS)
                for ref in done:
                    kind, value = ray.get(ref)
                    if kind == "user_error":
                        raise UserError(value)
                    parts.append(value)
        finally:
            for ref in pending:  # Ctrl-C or a failed worker: the others stop, their running trials fail
                ray.cancel(ref, recursive=True)
            if pending:
                ray.wait(pending, num_returns=len(pending), timeout=15.0)
    summary = merge_summaries(dataset, url, parts)
    summary.files = write_outputs(out, dataset, url)
    return summary
