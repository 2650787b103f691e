"""The command line's study commands: ``tune`` (an equal tuning budget per model), ``reproduce``
(rerun a recorded run and compare it with its seed spread) and ``release`` (a folder's runs against
a protocol's declared release). ``gvae_bench.cli`` adds them to its group.
"""

from __future__ import annotations

from pathlib import Path

import click

from gvae_bench.cli.common import CLIError, _cpus, _guard, _names
from gvae_bench.paths import DATA_ROOT_ENV, DEFAULT_OUT, resolve_data_root


@click.command("tune")
@click.option("--models", "models_text", required=True, metavar="A,B", help="Registered model names to tune.")
@click.option("--dataset", required=True, metavar="NAME", help="The benchmark to tune on (its training split only).")
@click.option("--trials", type=int, default=None, help="Trials per model in all (default: the profile's budget in "
              "gvae_bench/tuning/search_space.toml); a study that has them already adds none.")
@click.option("--profile", default="smoke", show_default=True, metavar="NAME", help="The profile each trial runs.")
@click.option("--steps", type=int, default=None, help="Training steps per trial (default: the budget's, else the profile's).")
@click.option("--storage", default=None, metavar="URL", help="Optuna storage (default: sqlite under OUT/tuning/DATASET/; "
              "an RDB URL such as postgresql://... shares the studies between machines).")
@click.option("--sampler", type=click.Choice(["tpe", "random"]), default="tpe", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="The sampler's and the trials' seed.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True, help="Results folder.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder (default ${DATA_ROOT_ENV}, else ./data).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: the trials one after another here; ray: --workers Ray tasks share the studies "
                   "(pip install '.[ray]'; see docs/scaling.md).")
@click.option("--workers", type=int, default=None, help="With --executor ray: how many trials run at once (default 2).")
@click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
              help="With --executor ray: join this Ray cluster (give --storage an RDB URL and put --out on shared storage).")
@click.option("--cpus-per-run", "cpus_text", default=None, metavar="N",
              help="With --executor ray: CPUs each worker declares, and its torch threads (default 1).")
def tune_command(models_text: str, dataset: str, trials: int | None, profile: str, steps: int | None,
                 storage: str | None, sampler: str, seed: int, out: Path, data_root: Path | None, executor: str,
                 workers: int | None, ray_address: str | None, cpus_text: str | None) -> None:
    """Give every model the same tuning budget (Optuna): trials scored on a validation split carved
    from the training data; writes OUT/tuning/DATASET/table_tuning.{csv,md}, plots and best_configs.toml."""
    models = _names(models_text, "models")
    common = dict(trials=trials, profile=profile, steps=steps, out=out, data_root=resolve_data_root(data_root),
                  storage=storage, seed=seed, sampler=sampler)
    if executor == "local":
        given = [flag for flag, value in (("--workers", workers), ("--ray-address", ray_address),
                                          ("--cpus-per-run", cpus_text)) if value is not None]
        if given:
            flags = " and ".join(given)
            raise CLIError(f"{flags} {'needs' if len(given) == 1 else 'need'} --executor ray; add it, or leave {flags} out")
        from gvae_bench.tuning import tune

        summary = _guard(lambda: tune(models, dataset, **common))
    else:
        from gvae_bench.execution.executors import ExecutorOptions
        from gvae_bench.tuning.ray import tune_on_ray

        def on_ray():
            options = ExecutorOptions(address=ray_address, cpus_per_run=None if cpus_text is None else _cpus(cpus_text))
            return tune_on_ray(models, dataset, workers=2 if workers is None else workers, options=options, **common)

        summary = _guard(on_ray)
    for study in summary.studies:
        best = "none" if study.best_value is None else f"{study.best_value:.4g} with {study.best_fields}"
        click.echo(f"  {study.model}: {study.trials} trial(s) ({study.added} new; {study.finished} finished, "
                   f"{study.pruned} pruned, {study.failed} failed); best {summary.score} {best}", err=True)
    for path in summary.files:
        click.echo(f"tuning: {path}")


@click.command("reproduce")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT / "reproduce", show_default=True,
              help="Scratch results folder for the rerun (never the run's own).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder the run was trained on (default ${DATA_ROOT_ENV}, else ./data).")
def reproduce_command(run_dir: Path, out: Path, data_root: Path | None) -> None:
    """Rerun a finished run from its record alone into --out and compare each metric with the
    recorded value, as a fraction of the seed-to-seed spread, and the environment with the recorded one."""
    from gvae_bench.results.reproduce import REPORT_MD, reproduce

    root = resolve_data_root(data_root)
    report = _guard(lambda: reproduce(run_dir, out, root))
    for row in report.rows:
        click.echo(row.line())
    click.echo(report.environment_line())
    if report.note:
        click.echo(f"note: {report.note}", err=True)
    click.echo(f"reproduce: {report.scratch_run_dir / REPORT_MD}")


@click.command("release")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder holding the release's runs (the reference release's: results/release).")
@click.option("--protocol", "protocol_path", type=click.Path(path_type=Path), default=None,
              help="The protocol TOML the release answers (default: OUT/protocol.toml; the reference release's: "
                   "results/reference/protocol.toml).")
@click.option("--dataset", "datasets", multiple=True, metavar="NAME",
              help="Check only this declared dataset (repeatable; default: every dataset of the protocol).")
@click.option("--complete", is_flag=True, help="Also exit 1 while a declared run is missing.")
def release_command(out: Path, protocol_path: Path | None, datasets: tuple[str, ...], complete: bool) -> None:
    """Check a folder's runs against a protocol's release: which declared runs exist and which are
    missing, and whether they share one commit, a clean tree, one environment and one classifier.
    Exit 1 when they do not (with --complete, also while runs are missing)."""
    from gvae_bench.results.protocol import PROTOCOL_FILE, read_protocol
    from gvae_bench.execution.training import duration_text
    from gvae_bench.execution.records import cpu_model
    from gvae_bench.results.release import audit_release

    path = protocol_path or out / PROTOCOL_FILE
    protocol = _guard(lambda: read_protocol(path))
    unknown = [d for d in datasets if d not in protocol.datasets]
    if unknown:
        raise CLIError(f"{', '.join(unknown)} is not a dataset of protocol {protocol.label} "
                       f"(it declares {', '.join(protocol.datasets)})")
    audits = _guard(lambda: audit_release(out, protocol, list(datasets) or None))
    click.echo(f"protocol {protocol.label} ({path}); runs under {out / 'runs'}")
    for audit in audits:
        for line in audit.lines():
            click.echo(line)
        machine = audit.machine_line(cpu_model()) if audit.missing else None
        if machine:
            click.echo(machine)
        seconds, unknown = audit.training_left()
        if audit.missing and seconds:
            click.echo(f"  training left: about {duration_text(seconds)} of runs one after another, at each model's "
                       "mean train_seconds here" + (f" (and {', '.join(unknown)}: no run yet to go by)" if unknown else ""))
        elif audit.missing:
            click.echo("  training left: no run of this dataset yet to go by")
    failed = any(not a.consistent or (complete and not a.complete) for a in audits)
    if failed:
        raise SystemExit(1)
