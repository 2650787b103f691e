"""Runs every registered metric on a trained model; "n/a" with the reason where one does not apply."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import torch

from benchmarks.base import Benchmark, DataSplits
from gvae_bench.profiles import EvalConfig
from gvae_bench.registry import METRICS
from metrics.base import EvalContext
from metrics.classifier import ClassifierConfig
from models.base import GenerativeModel

log = logging.getLogger(__name__)


def evaluate(model: GenerativeModel, benchmark: Benchmark, splits: DataSplits, config: EvalConfig,
             seed: int, classifier: ClassifierConfig | None = None,
             only: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every registered metric's result for ``model``, as JSON-able dicts keyed by metric name.

    Each entry has ``value`` (None for n/a), ``higher_is_better``, ``table`` and, for n/a, ``na``
    with what was missing; for computed ones the sample counts, ``reference`` and ``details``.
    ``only``: evaluate just these metric names.
    """
    ctx = EvalContext(model=model, benchmark=benchmark, splits=splits, config=config, seed=seed,
                      classifier_config=classifier or ClassifierConfig())
    results: dict[str, dict[str, Any]] = {}
    model.eval()
    for entry in METRICS.entries():
        if only is not None and entry.name not in only:
            continue
        metric = entry.obj()
        base = {"higher_is_better": metric.higher_is_better, "table": metric.table}
        missing = metric.missing(model, benchmark)
        if missing:
            results[entry.name] = {**base, "value": None, "na": f"needs {', '.join(missing)}"}
            continue
        began = time.perf_counter()
        with torch.no_grad():
            result = metric.compute(ctx)
        results[entry.name] = {**base, **asdict(result), "seconds": round(time.perf_counter() - began, 3)}
        log.info("%s = %.6g (%d generated, %d real)", entry.name, result.value, result.n_generated, result.n_real)
    return results
