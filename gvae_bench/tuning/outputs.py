"""The outputs of the tuning studies of one dataset: ``table_tuning.csv`` and ``.md``, the budget curve
(best validation score so far against trials, every model on one axis; Lucic et al. 2018), each
model's distribution of trial scores, and ``best_configs.toml``, the best configuration of each model
as data that ``tuned_overrides`` turns into sweep settings. Rebuilt from the study storage alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import tomllib
from pathlib import Path
from typing import Any

from gvae_bench.atomic import atomic_write_text
from gvae_bench.errors import UserError
from gvae_bench.profiles import tuned_entry
from gvae_bench.tuning.storage import _quiet_optuna, _storage, default_storage, tuning_folder

#: what a trial is scored by: the unbiased squared MMD to held-out training rows (lower is better)
SCORE_NAME = "val_mmd2"
#: the columns of table_tuning.csv, one row per (model, profile)
TABLE_COLUMNS = ("model", "profile", "trials", "finished", "pruned", "failed", "running", "best_score",
                 "median_score", "best_trial", "best_config", "steps_per_trial", "train_seconds", "score",
                 "direction", "split", "study")


def _dataset_studies(url: str, dataset: str) -> list[Any]:
    import optuna

    with _quiet_optuna():
        rdb = _storage(url)
    found = []
    for name in optuna.study.get_all_study_names(storage=rdb):
        study = optuna.load_study(study_name=name, storage=rdb)
        if study.user_attrs.get("dataset") == dataset:
            found.append(study)
    return sorted(found, key=lambda s: s.study_name)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_outputs(out: Path | str, dataset: str, storage: str | None = None) -> list[Path]:
    """Write the table, plots and ``best_configs.toml`` of every study of ``dataset`` in the storage."""
    from optuna.trial import TrialState

    url = storage or default_storage(out, dataset)
    folder = tuning_folder(out, dataset)
    studies = _dataset_studies(url, dataset)
    rows, curves, scores, best_configs = [], {}, {}, {}
    for study in studies:
        attrs = study.user_attrs
        model, profile = attrs["model"], attrs["profile"]
        frozen = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        complete = [t for t in frozen if t.state == TrialState.COMPLETE and t.value is not None]
        values = [t.value for t in complete]
        best = min(complete, key=lambda t: t.value) if complete else None
        seconds: dict[str, float] = {}
        for t in frozen:  # a run shared by two trials (same parameters) trained once
            run_dir = t.user_attrs.get("run_dir")
            seconds[run_dir or f"trial{t.number}"] = float(t.user_attrs.get("train_seconds") or 0.0)
        steps = sorted({t.user_attrs["steps"] for t in frozen if "steps" in t.user_attrs})
        best_fields = best.user_attrs.get("fields") if best else None
        label = f"{model} ({profile})"
        running, best_so_far = math.inf, []
        for t in frozen:
            if t.state == TrialState.COMPLETE and t.value is not None:
                running = min(running, t.value)
            best_so_far.append(running if math.isfinite(running) else math.nan)
        curves[label], scores[label] = best_so_far, values
        split = attrs.get("split", {})
        rows.append({
            "model": model, "profile": profile, "trials": len(frozen), "finished": len(complete),
            "pruned": sum(1 for t in frozen if t.state == TrialState.PRUNED),
            "failed": sum(1 for t in frozen if t.state == TrialState.FAIL),
            "running": sum(1 for t in frozen if t.state == TrialState.RUNNING),
            "best_score": best.value if best else None,
            "median_score": statistics.median(values) if values else None,
            "best_trial": best.number if best else None,
            "best_config": json.dumps(best_fields, sort_keys=True) if best_fields else "",
            "steps_per_trial": ",".join(str(s) for s in steps), "train_seconds": round(sum(seconds.values()), 2),
            "score": attrs.get("score", SCORE_NAME), "direction": study.direction.name.lower(),
            "split": (f"fit first {split['n_fit']} / val last {split['n_val']} of {split['n_pool']} train rows"
                      if split else ""),
            "study": study.study_name,
        })
        if best:
            best_configs.setdefault(model, {})[profile] = {"study": study.study_name, "trial": best.number,
                                                           "score": attrs.get("score", SCORE_NAME),
                                                           "value": best.value, "model": best_fields}
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(v) for k, v in row.items()})
    atomic_write_text(folder / "table_tuning.csv", buffer.getvalue())
    from tabulate import tabulate

    text = (f"# Tuning on {dataset}\n\nAn equal budget of trials per model (Lucic et al. 2018). Selection score "
            f"{SCORE_NAME} (unbiased squared MMD to held-out training rows; lower is better), never the test split.\n\n"
            + tabulate([[_fmt(r[c]) for c in TABLE_COLUMNS] for r in rows], headers=TABLE_COLUMNS, tablefmt="github")
            + "\n")
    atomic_write_text(folder / "table_tuning.md", text)
    written += [folder / "table_tuning.csv", folder / "table_tuning.md"]
    lines = [f"# best configuration per model and profile on {dataset} (gvae_bench.tuning); read with tuned_overrides\n"]
    for model, profiles in best_configs.items():
        for profile, entry in profiles.items():
            lines.append(f"[{model}.{profile}]")
            lines += [f"{key} = {_toml_value(entry[key])}" for key in ("study", "trial", "score", "value")]
            lines.append(f"[{model}.{profile}.model]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(entry["model"].items())]
            lines.append("")
    atomic_write_text(folder / "best_configs.toml", "\n".join(lines) + "\n")
    written.append(folder / "best_configs.toml")
    written += _plots(folder, dataset, curves, scores)
    return written


def _plots(folder: Path, dataset: str, curves: dict[str, list[float]], scores: dict[str, list[float]]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def save(fig, name: str) -> Path:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        from gvae_bench.atomic import atomic_write_bytes

        atomic_write_bytes(folder / name, buffer.getvalue())
        return folder / name

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", label=label)
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(f"best {SCORE_NAME} so far (lower is better)")
    ax.set_title(f"{dataset}: best validation score against the tuning budget")
    if curves and all(v > 0 for curve in curves.values() for v in curve):
        ax.set_yscale("log")  # the models' scores can differ by a factor of ten
    if curves:
        ax.legend()
    first = save(fig, "budget_curve.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(scores)
    for i, label in enumerate(labels):
        ax.scatter([i] * len(scores[label]), scores[label], alpha=0.7)
    data = [scores[label] for label in labels]
    if any(data):
        ax.boxplot([d if d else [math.nan] for d in data], positions=list(range(len(labels))), widths=0.4)
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set_ylabel(f"{SCORE_NAME} of finished trials")
    if any(data) and all(v > 0 for d in data for v in d):
        ax.set_yscale("log")
    ax.set_title(f"{dataset}: trial scores per model")
    return [first, save(fig, "trial_scores.png")]


def tuned_overrides(out: Path | str, dataset: str, model: str, profile: str | None = None) -> dict[str, list[tuple[str, Any]]]:
    """The best configuration of ``model`` on ``dataset`` as ``plan_sweep`` settings (``{"model": [...]}``),
    from ``<out>/tuning/<dataset>/best_configs.toml``; ``profile`` picks among several tuned profiles."""
    fields, _ = tuned_entry(out, dataset, model, profile)
    return {"model": fields}
