"""The command line's ``score`` command: the harness's metrics of two sets of images, outside a run.

    python runner.py score --real benchmark:mnist:test --fake samples/ --dataset mnist --out scores/

Registered on ``gvae_bench.cli.cli`` by ``cli.add_command(score_command)``; torch and the metrics are imported only
when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from gvae_bench.errors import UserError

__all__ = ["score_command"]

_SET_HELP = ("a folder of PNG/JPEG images (8-bit grey or RGB, one size), a .npy/.npz array ((N, H, W), (N, C, H, W) "
             "or (N, H, W, C); uint8 pixels, or floats in --range), or benchmark:NAME:SPLIT such as "
             "benchmark:mnist:test")


class _ScoreError(click.ClickException):
    """A one-line 'Error: ...' on stderr and exit status 2 (as ``gvae_bench.cli.CLIError``)."""

    exit_code = 2


def _range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise _ScoreError(f"--range takes LOW,HIGH, e.g. --range 0,1; got {text!r}") from None
    if not low < high:
        raise _ScoreError(f"--range needs LOW < HIGH; got {text!r}")
    return low, high


@click.command("score")
@click.option("--real", required=True, metavar="PATH", help=f"The real (reference) set: {_SET_HELP}.")
@click.option("--fake", required=True, metavar="PATH", help="The set to score, in the same forms as --real.")
@click.option("--dataset", default=None, metavar="NAME",
              help="The registered benchmark whose domain classifier gives the feature space of fid, kid, precision, "
                   "recall, density, coverage, vendi, copying and authenticity (e.g. mnist); without it they are n/a.")
@click.option("--metrics", "metrics_text", default=None, metavar="A,B",
              help="Comma-separated metrics (default: all of mmd, ms_ssim, fid, kid, precision, recall, density, "
                   "coverage, vendi, copying, authenticity).")
@click.option("--train", default=None, metavar="PATH",
              help="The training set the model learnt from: the real-train references, and copying and authenticity.")
@click.option("-n", "n", type=int, default=None, help="Samples per set (default: all fake samples; the real set gives "
              "a seeded subset of n, as a run's evaluation draws its real test samples).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw (a run's seed).")
@click.option("--pairs", type=int, default=2000, show_default=True, help="Random pairs for MS-SSIM.")
@click.option("--range", "range_text", default=None, metavar="LOW,HIGH",
              help="The range of floating-point arrays (default -1,1, the harness's); 8-bit pixels are 0..255.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Data folder for benchmark:NAME:SPLIT sets (default $GVAE_BENCH_DATA, else ./data).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("scores"), show_default=True,
              help="Folder for scores.csv and scores.json.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the real set's cached features.")
def score_command(real: str, fake: str, dataset: str | None, metrics_text: str | None, train: str | None,
                  n: int | None, seed: int, pairs: int, range_text: str | None, data_root: Path | None, out: Path,
                  no_cache: bool) -> None:
    """Score a set of images against a real set with the harness's metrics; prints a table and writes
    OUT/scores.csv and OUT/scores.json (sample counts, the sets' and the classifier's SHA-256, versions,
    each metric's seconds); a line on stderr as each metric starts and ends."""
    import logging

    from gvae_bench.scoring import score

    logging.getLogger("gvae_bench.progress").setLevel(logging.INFO)  # a line on stderr as each metric starts and ends
    metrics = None
    if metrics_text is not None:
        metrics = [part.strip() for part in metrics_text.split(",") if part.strip()]
        if not metrics:
            raise _ScoreError("--metrics needs at least one name, e.g. --metrics mmd,ms_ssim")
    try:
        result = score(real, fake, metrics, dataset, train=train, n=n, seed=seed, ms_ssim_pairs=pairs,
                       data_root=data_root, value_range=_range(range_text), cache=not no_cache)
        json_path, csv_path = result.write(out)
    except UserError as exc:
        raise _ScoreError(str(exc)) from None
    provenance = result.provenance
    click.echo(f"fake: {provenance['fake']['source']}, {result.provenance['n']} used; "
               f"real: {provenance['real']['source']}, {provenance['n_real_used']} used")
    if provenance.get("classifier"):
        classifier = provenance["classifier"]
        click.echo(f"features: {classifier['feature_space']}, {classifier.get('version') or classifier.get('key')}, "
                   f"sha256 {classifier['sha256'][:16]}...")
    click.echo(result.table())
    click.echo(f"wrote {csv_path} and {json_path}", err=True)
