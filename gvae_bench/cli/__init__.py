"""gvae-bench command line: the only code that talks to the terminal.

    python runner.py --models vae,wgan_gp --dataset mnist --profile quick
    python runner.py list
    python runner.py leaderboard --dataset mnist
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from gvae_bench.errors import UserError
from gvae_bench.profiles import profile_names
from gvae_bench.paths import DATA_ROOT_ENV, DEFAULT_OUT
from gvae_bench.cli.common import CLIError, _cpus, _guard, _ints, _names, _parse_settings
from gvae_bench.cli.runs import classifier_command, curve_command, export_nifti_command, rescore_command
from gvae_bench.cli.score import score_command
from gvae_bench.cli.studies import release_command, reproduce_command, tune_command

log = logging.getLogger("gvae_bench")


#: the environment variable giving --workers its default
WORKERS_ENV = "GVAE_BENCH_WORKERS"


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--models", "models_text", metavar="A,B", help="Comma-separated registered model names (see `runner.py list`).")
@click.option("--dataset", metavar="NAME", help="A registered benchmark name, e.g. mnist, fashion_mnist, ring8, grid25.")
@click.option("--profile", default="quick", show_default=True, metavar="NAME",
              help=f"Settings table from gvae_bench/profiles.toml: {', '.join(profile_names())} (what each runs: "
                   "`runner.py list`).")
@click.option("--seeds", "seeds_text", default="0", show_default=True, metavar="0,1,2", help="Comma-separated seeds from 0 to 2^32 - 1; one run per model and seed (a repeated seed runs once).")
@click.option("--latent-sizes", "latent_text", default=None, metavar="100,500",
              help="Sweep the latent size: each model runs at each size (the paper's Table 5); writes table5.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override one config field after the profile; SECTION is model, benchmark, train or eval, e.g. "
                   "--set benchmark.mode=3d --set model.width=32 --set train.precision=bf16 (repeatable).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Folder holding the datasets in torchvision's layout (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py). Default: ${DATA_ROOT_ENV}, else ./data.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder: runs/<dataset>/<model>/... and leaderboards/<dataset>/. The default is git-ignored; "
                   "the committed reference results are in results/reference.")
@click.option("--tuned-from", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="With --profile tuned: the folder whose tuning/<dataset>/best_configs.toml gives each model's "
                   "tuned configuration (default: --out; the committed studies are in results/reference).")
@click.option("--tuned-dataset", default=None, metavar="NAME",
              help="With --profile tuned: take the configurations tuned on this dataset (e.g. mnist's for fashion_mnist, "
                   "which has no study of its own); each record names the study it came from.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train and evaluate; auto takes CUDA when torch sees it.")
@click.option("--executor", default="local", show_default=True,
              help="How the runs of the sweep are executed: local (one after another here) or ray (one Ray task per run; "
                   "pip install '.[ray]'; see docs/scaling.md).")
@click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
              help="With --executor ray: join this existing Ray cluster (--out and the data must be on storage every node "
                   "sees). Default: start Ray on this machine for the sweep.")
@click.option("--cpus-per-run", "cpus_text", default=None, metavar="N",
              help="With --executor ray: CPUs each run declares, and its torch threads (unless its config pins "
                   "train.threads). Default: the threads a local run would use.")
@click.option("--workers", "workers_text", default=lambda: os.environ.get(WORKERS_ENV, "auto"), show_default="auto",
              metavar="N|auto",
              help="With the local executor: runs at once, each in a process of its own, the CPUs split between "
                   f"them (auto: one per CPU; 1: one after another in this process). Default: ${WORKERS_ENV}, else auto.")
@click.option("--log", "log_to", type=click.Choice(["none", "tensorboard"]), default="none", show_default=True,
              help="Live curves of each run: tensorboard logs losses, sample grids and final metrics under "
                   "<out>/tensorboard (pip install '.[tensorboard]'; then tensorboard --logdir <out>/tensorboard).")
@click.option("--plugin", "plugins", multiple=True, type=click.Path(path_type=Path),
              help="A Python file that registers extra models, benchmarks or metrics (repeatable).")
@click.option("-v", "--verbose", is_flag=True, help="Log each step of the harness (INFO level).")
@click.pass_context
def cli(ctx: click.Context, models_text, dataset, profile, seeds_text, latent_text, settings, data_root, out, tuned_from,
        device,
        executor, ray_address, cpus_text, workers_text, log_to, plugins, verbose, tuned_dataset):
    """Train generative models on a benchmark with one shared runner, evaluate them with one
    metrics suite, and write leaderboards (CSV and Markdown) in the form of the GVAE paper's tables.

    Example: python runner.py --models vae,wgan_gp --dataset mnist --profile quick --seeds 0,1,2
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not sys.stderr.isatty():  # no progress bars off a terminal: a line per run start and a line every 30 s
        logging.getLogger("gvae_bench.progress").setLevel(logging.INFO)
    ctx.ensure_object(dict)
    ctx.obj.update(plugins=plugins)
    _load_plugins(plugins)
    if ctx.invoked_subcommand is not None:
        return
    if not models_text or not dataset:
        raise CLIError("give --models and --dataset (e.g. --models vae,wgan_gp --dataset mnist), or a command such as `list`; see --help")
    _guard(lambda: _precheck(models_text, dataset, profile, seeds_text, latent_text, settings))
    from gvae_bench.execution.executors import ExecutorOptions

    options = ExecutorOptions(address=ray_address, cpus_per_run=None if cpus_text is None else _cpus(cpus_text),
                              plugins=tuple(plugins), workers=_workers(workers_text))
    _guard(lambda: _sweep(models_text, dataset, profile, seeds_text, latent_text, settings, data_root, out, device,
                          executor, options, tuned_from, log_to, tuned_dataset))


def _workers(text: str) -> int | None:
    """``auto`` -> None (one worker per CPU); else a whole number of at least 1."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise CLIError(f"--workers takes auto or a whole number of at least 1 (runs at once); got {text!r}")
    return value


def _load_plugins(plugins) -> None:
    """Import the --plugin files (and with them every built-in plugin). Without any, nothing is
    imported here: the registries import their plugins when first asked for one, and `list` and the
    name checks read the built-ins' names from source (gvae_bench.cli.plugin_index)."""
    if not plugins:
        return
    from gvae_bench.registry import load_plugin_file

    def load() -> None:
        for path in plugins:
            load_plugin_file(path)

    _guard(load)


def _precheck(models_text: str, dataset: str, profile: str, seeds_text: str, latent_text: str | None,
              settings: tuple[str, ...]) -> None:
    """The sweep's checks of its text and names (_sweep and plan_sweep make them again), in their
    order and words, before the sweep's modules (torch) are imported: bad input is a one-line error at once."""
    from gvae_bench.cli.plugin_index import listing
    from gvae_bench.profiles import get_profile

    models = _names(models_text, "models")
    _ints(seeds_text, "--seeds")
    if latent_text is not None:
        _ints(latent_text, "--latent-sizes")
    _parse_settings(settings)
    registered = listing()
    for kind, names in (("model", models), ("benchmark", [dataset])):
        known = [name for name, _ in registered[f"{kind}s"]]
        for name in names:
            if name not in known:
                raise UserError(f"unknown {kind} {name!r}; registered {kind}s: {', '.join(known)}")
    get_profile(profile)


def _sweep(models_text, dataset, profile, seeds_text, latent_text, settings, data_root, out, device, executor_name,
           executor_options, tuned_from=None, log_to="none", tuned_dataset=None) -> None:
    from tqdm.auto import tqdm

    from gvae_bench.sweep import execute_sweep, plan_sweep

    models = _names(models_text, "models")
    plan = plan_sweep(models, dataset, profile=profile, seeds=_ints(seeds_text, "--seeds"),
                      latent_sizes=None if latent_text is None else _ints(latent_text, "--latent-sizes"),
                      settings=_parse_settings(settings), data_root=data_root, out=out, device=device,
                      executor=executor_name, tuned_from=tuned_from, tuned_dataset=tuned_dataset,
                      log=log_to)
    for note in plan.notes:
        click.echo(note, err=True)
    state: dict[str, Any] = {}

    def announce(executor) -> None:
        click.echo(f"{len(plan.specs)} run(s): {', '.join(plan.models)} on {dataset}, profile {profile}, seeds "
                   f"{','.join(map(str, plan.seeds))}", err=True)
        # one overall bar where the runs work out of sight (e.g. on Ray workers, whose training bars are not shown)
        state["bar"] = tqdm(total=len(plan.specs), desc="runs", unit="run", file=sys.stderr, dynamic_ncols=True,
                            disable=not executor.progress_bar, postfix="failures=0")
        state["failures"] = 0
        if hasattr(executor, "on_progress") and sys.stderr.isatty():  # parallel local runs: done, running, waiting
            # and the sweep's time left on the bar (off a terminal: a progress line every 30 s instead)
            executor.on_progress = lambda progress: state["bar"].set_postfix_str(
                f"{progress.line()}, failures={state['failures']}", refresh=True)

    def report(result) -> None:
        bar = state["bar"]
        line = f"  {result.line()}"
        if not bar.disable:
            bar.write(line, file=sys.stderr)
        else:
            click.echo(line, err=True)
        state["failures"] += result.problem
        bar.set_postfix_str(f"failures={state['failures']}", refresh=False)
        bar.update(1)

    try:
        summary = execute_sweep(plan, executor_name, executor_options, on_start=announce, on_result=report)
    finally:
        if "bar" in state:
            state["bar"].close()
    if summary.interrupted:
        click.echo(f"interrupted after {len(summary.results)} of {len(plan.specs)} run(s); finished runs are kept, "
                   "and the same command resumes the rest", err=True)
        sys.exit(summary.exit_status)
    for path in summary.leaderboards:
        if path.suffix == ".md":
            click.echo(f"leaderboard: {path}")
    if summary.report is not None:
        click.echo(f"report: {summary.report}")
    if summary.held:
        click.echo(f"{len(summary.held)} run(s) still running in another process: "
                   f"{', '.join(r.label for r in summary.held)}; the leaderboard leaves them out until they finish "
                   "(that process rewrites it then)", err=True)
    if summary.problems:
        click.echo(f"{len(summary.problems)} run(s) did not finish: {', '.join(r.label for r in summary.problems)} "
                   "(see their record.json)", err=True)
    if summary.exit_status:
        sys.exit(summary.exit_status)


@cli.command("list")
def list_command() -> None:
    """Print every registered model, benchmark and metric with a one-line description."""
    from gvae_bench.cli.plugin_index import listing
    from gvae_bench.profiles import load_profiles

    for title, entries in _guard(listing).items():
        click.echo(f"{title}:")
        for name, description in entries:
            click.echo(f"  {name:<16} {description}")
    click.echo("profiles:")
    for name, profile in load_profiles().items():
        click.echo(f"  {name:<16} {profile.get('description', '')}")


@cli.command("leaderboard")
@click.option("--dataset", required=True, metavar="NAME", help="Benchmark whose run records to tabulate.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder (the committed reference results: results/reference).")
@click.option("--protocol", "protocol_path", type=click.Path(path_type=Path), default=None,
              help="Study protocol TOML the tables answer (default: OUT/protocol.toml when present; docs/protocol.md).")
def leaderboard_command(dataset: str, out: Path, protocol_path: Path | None) -> None:
    """Rebuild the leaderboards of one dataset from its run records alone."""
    from gvae_bench.results.collect import records_read_once
    from gvae_bench.results.leaderboard import build_leaderboard
    from gvae_bench.results.protocol import protocol_for
    from gvae_bench.report import write_report

    protocol = _guard(lambda: protocol_for(out, protocol_path))
    with records_read_once():  # the tables and the report share one read of each record
        tables = build_leaderboard(out, dataset, protocol)
        if not tables.files:
            raise CLIError(f"no finished run records under {out / 'runs' / dataset}; run a sweep first")
        for path in tables.files:
            click.echo(f"leaderboard: {path}")
        click.echo(f"report: {write_report(out, {dataset: tables})}")


@cli.command("power")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder whose runs are the pilot (before the protocol's own runs exist).")
@click.option("--protocol", "protocol_path", type=click.Path(path_type=Path), default=None,
              help="Study protocol TOML (default: OUT/protocol.toml); power.csv/.md are written beside it.")
def power_command(out: Path, protocol_path: Path | None) -> None:
    """A-priori power: the seeds each confirmatory paired test needs, from the pilot runs' spread."""
    from gvae_bench.results.power import write_power
    from gvae_bench.results.protocol import PROTOCOL_FILE, read_protocol

    path = protocol_path or out / PROTOCOL_FILE
    protocol = _guard(lambda: read_protocol(path))
    for written in _guard(lambda: write_power(out, protocol, path.parent)):
        click.echo(f"power: {written}")


@cli.command("report")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder whose records and leaderboards to show (the committed ones: results/reference).")
def report_command(out: Path) -> None:
    """Write the static HTML report OUT/report/ (every leaderboard beside its models' pictures)."""
    from gvae_bench.report import write_report

    if not (out / "runs").is_dir():
        raise CLIError(f"no run records under {out / 'runs'}; run a sweep first, or pass --out results/reference")
    click.echo(f"report: {_guard(lambda: write_report(out))}")


cli.add_command(tune_command)
cli.add_command(reproduce_command)
cli.add_command(release_command)
cli.add_command(score_command)
for command in (rescore_command, curve_command, export_nifti_command, classifier_command):
    cli.add_command(command)


def main() -> None:
    """The command line; Ctrl-C anywhere ends it with exit status 130 (finished records are kept)."""
    try:
        status = cli.main(prog_name="runner.py", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted; finished runs and written files are kept, and the same command resumes", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    main()
