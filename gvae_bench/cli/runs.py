"""Commands on finished runs and on the feature classifiers: rescore, curve, export-nifti, classifier."""

from __future__ import annotations

from pathlib import Path

import click

from gvae_bench.cli.common import CLIError, _guard, _parse_settings, _parse_value
from gvae_bench.errors import UserError
from gvae_bench.paths import DATA_ROOT_ENV, DEFAULT_OUT, resolve_data_root


@click.command("rescore")
@click.option("--dataset", required=True, metavar="NAME", help="Benchmark whose finished runs to rescore.")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True,
              help="Results folder (the committed reference results: results/reference).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder (default ${DATA_ROOT_ENV}, else ./data).")
def rescore_command(dataset: str, out: Path, data_root: Path | None) -> None:
    """Add metrics registered since the runs finished (from their checkpoints), then rebuild the leaderboards."""
    from gvae_bench.results.leaderboard import write_leaderboards
    from gvae_bench.execution.run import rescore

    root = resolve_data_root(data_root)
    for record_path in sorted((out / "runs" / dataset).glob("**/record.json")):
        added = _guard(lambda: rescore(record_path.parent, root))
        if added:
            click.echo(f"  {record_path.parent}: added {', '.join(added)}", err=True)
    for path in write_leaderboards(out, dataset):
        click.echo(f"leaderboard: {path}")


@click.command("curve")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--metric", required=True, metavar="NAME", help="A registered metric, e.g. iwae_nll.")
@click.option("--set", "changes", multiple=True, metavar="eval.FIELD=VALUE",
              help="Change an evaluation setting for the curve, e.g. --set eval.likelihood_images=1000.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder the run was trained on (default ${DATA_ROOT_ENV}, else ./data).")
def curve_command(run_dir: Path, metric: str, changes: tuple[str, ...], data_root: Path | None) -> None:
    """Evaluate METRIC at every weight snapshot of a finished run (train.snapshot_every) and write
    RUN_DIR/curve_METRIC.csv and .png."""
    from gvae_bench.execution.curves import metric_curve

    eval_changes = {}
    for item in changes:
        key, _, value = item.partition("=")
        if not key.startswith("eval.") or not value:
            raise CLIError(f"--set {item!r}: expected eval.FIELD=VALUE, e.g. eval.likelihood_images=1000")
        eval_changes[key[len("eval."):]] = _parse_value(value)
    root = resolve_data_root(data_root)
    for row in _guard(lambda: metric_curve(run_dir, root, metric, eval_changes)):
        click.echo(f"step {row['step']:>8}  epoch {row['epoch']:>9}  {metric} {row['value']:.4f}")
    click.echo(f"curve: {run_dir / f'curve_{metric}.csv'}")


@click.command("export-nifti")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("-n", "count", default=8, show_default=True, help="How many samples to generate.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder the run was trained on (default ${DATA_ROOT_ENV}, else ./data).")
def export_nifti_command(run_dir: Path, count: int, data_root: Path | None) -> None:
    """Write samples of a finished CT run as NIfTI (HU, training spacing) into RUN_DIR/nifti/."""
    import torch

    from gvae_bench.execution.run import load_finished_run

    root = resolve_data_root(data_root)
    model, benchmark = _guard(lambda: load_finished_run(run_dir, root))
    if not benchmark.can_export_nifti:
        raise CLIError(f"{benchmark.registered_name} is not a CT benchmark; export-nifti takes runs of ct_folder or pancreas_ct")
    torch.manual_seed(0)
    for path in benchmark.write_nifti(model.sample_in_batches(count), run_dir / "nifti"):
        click.echo(str(path))


@click.command("classifier")
@click.option("--dataset", required=True, metavar="NAME",
              help="A labelled benchmark: mnist, fashion_mnist, cifar10, or image_folder with class subfolders.")
@click.option("--set", "settings", multiple=True, metavar="benchmark.FIELD=VALUE",
              help="A benchmark setting, e.g. --set benchmark.root=DIR for image_folder (repeatable).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help=f"Data folder (default ${DATA_ROOT_ENV}, else ./data).")
@click.option("--retrain", is_flag=True,
              help="Train DATASET's pinned classifier afresh and pin it as a new version (gvae_bench/pinned/); runs "
                   "scored by the old version keep naming its SHA-256 and are not paired with new ones.")
def classifier_command(dataset: str, settings: tuple[str, ...], data_root: Path | None, retrain: bool) -> None:
    """Load the domain classifier of the feature-space metrics and print its record: the one a run on
    DATASET with these settings uses, at the classifier's default training settings. MNIST and
    Fashion-MNIST have pinned classifiers (weights shipped with the package, SHA-256 checked on every
    load); other labelled datasets' are trained on first use and cached."""
    import json

    from gvae_bench.execution.classifier import PINNED_DIR, cache_root, retrain_pinned, train_classifier
    from gvae_bench.registry import BENCHMARKS

    if retrain:
        if settings:
            raise CLIError("--retrain pins a registered dataset's classifier at its default settings; leave out --set")
        entry = _guard(lambda: retrain_pinned(dataset, resolve_data_root(data_root)))
        click.echo(json.dumps({"version": entry["version"], "file": entry["file"], "sha256": entry["sha256"],
                               "test_accuracy": entry["record"]["test_accuracy"]}, indent=2))
        click.echo(f"pinned in {PINNED_DIR}; commit the new file and classifiers.json", err=True)
        return
    parsed = _parse_settings(settings)
    others = [f"{target}.{name}" for target, values in parsed.items() if target != "benchmark" for name, _ in values]
    if others:
        raise CLIError(f"classifier takes only benchmark settings (--set benchmark.FIELD=VALUE); got {', '.join(others)}")
    root = resolve_data_root(data_root)

    def train():
        benchmark_cls = BENCHMARKS.get(dataset)
        benchmark = benchmark_cls(root, benchmark_cls.Config.from_dict(dict(parsed["benchmark"])))
        source = benchmark.classifier_source()
        if source is None and benchmark.classifier_dataset is None and len(benchmark.spec.shape) == 3:
            raise UserError(f"{dataset}: its data have no class labels here, so it has no domain classifier "
                            "(for image_folder: put each class's images in a subfolder of its own)")
        return train_classifier(benchmark.classifier_dataset or dataset, root, source=source)

    model, record = _guard(train)
    fields = ("dataset", "version", "sha256", "test_accuracy", "n_train", "n_test", "config", "key")
    click.echo(json.dumps({k: record[k] for k in fields if k in record}, indent=2))
    click.echo(f"pinned in {PINNED_DIR}" if record.get("pinned") else f"cached in {cache_root()}", err=True)
