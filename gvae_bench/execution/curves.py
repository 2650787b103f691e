"""A metric against training time: evaluate the weight snapshots of one run (``snapshot_every``).

``metric_curve`` rebuilds the run's model from its record, loads each ``snapshots/step<N>.pt`` in
turn (and the final checkpoint), evaluates one registered metric with the run's evaluation
settings (optionally changed, e.g. fewer images), and writes ``curve_<metric>.csv`` and
``curve_<metric>.png`` into the run folder: step, epoch (step x batch size / training images),
value, and the settings that produced it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from gvae_bench.execution import pictures
from gvae_bench.errors import UserError
from gvae_bench.execution.evaluation import evaluate
from gvae_bench.profiles import EvalConfig
from gvae_bench.atomic import atomic_write_text
from gvae_bench.execution.records import git_commit, read_record
from gvae_bench.registry import METRICS
from gvae_bench.execution.run import load_finished_run
from gvae_bench.execution.checkpoints import CHECKPOINT_FILE, safe_load
from gvae_bench.execution.training import SNAPSHOT_FOLDER
from gvae_bench.execution.classifier import ClassifierConfig


def _snapshots(run_dir: Path) -> list[tuple[int, Path]]:
    found = []
    for path in (run_dir / SNAPSHOT_FOLDER).glob("step*.pt"):
        match = re.fullmatch(r"step(\d+)\.pt", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def metric_curve(run_dir: Path, data_root: Path, metric: str,
                 eval_changes: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Evaluate ``metric`` at every snapshot of a finished run; returns and writes the rows."""
    run_dir = Path(run_dir)
    if metric not in METRICS.names():
        raise UserError(f"unknown metric {metric!r}; metrics: {', '.join(METRICS.names())}")
    record = read_record(run_dir)
    snapshots = _snapshots(run_dir)
    if not snapshots:
        raise UserError(f"{run_dir} has no {SNAPSHOT_FOLDER}/step<N>.pt; train with train.snapshot_every > 0")
    model, benchmark = load_finished_run(run_dir, data_root)
    config = record.config
    eval_config = EvalConfig.from_dict({**config["eval"], **(eval_changes or {})})
    splits = benchmark.load()
    batch_size = config["train"]["batch_size"]
    final = safe_load(run_dir / CHECKPOINT_FILE)
    points = [(step, path) for step, path in snapshots if step != int(final["step"])] + [(int(final["step"]), None)]
    rows = []
    for step, path in points:
        state = final if path is None else safe_load(path)
        model.load_state_dict(state["model"])
        result = evaluate(model, benchmark, splits, eval_config, record.seed,
                          ClassifierConfig.from_dict(config.get("classifier", {})), only={metric})[metric]
        rows.append({"step": step, "epoch": round(step * batch_size / len(splits.train), 3),
                     "value": result["value"], "n_real": result.get("n_real")})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["step", "epoch", "value", "n_real"])
    writer.writeheader()
    writer.writerows(rows)
    settings = {k: v for k, v in eval_config.to_dict().items() if k != "grid_size"}
    header = (f"# {metric} of {record.model} on {record.benchmark} ({record.profile}, seed {record.seed}, "
              f"config {record.config_hash}), commit {git_commit()}; eval settings {settings}\n")
    atomic_write_text(run_dir / f"curve_{metric}.csv", header + buffer.getvalue())
    pictures.save_metric_curve(run_dir / f"curve_{metric}.png", [r["epoch"] for r in rows], [r["value"] for r in rows],
                               metric, title=f"{record.model} / {record.benchmark} / seed {record.seed}")
    return rows
