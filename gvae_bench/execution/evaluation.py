"""Runs every registered metric on a trained model; "n/a" with the reason where one does not apply.

The evaluation builds what the metrics share and hands it to the ``EvalContext``: the generated
samples (drawn once, lazily) and, when a metric that needs it will run, the benchmark's domain
classifier (trained once per dataset and config, then read from its cache).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any

import torch

from gvae_bench.execution.classifier import ClassifierConfig, train_classifier
from gvae_bench.contracts.benchmark import Benchmark, DataSplits
from gvae_bench.contracts.metric import EvalContext, Metric, NotApplicable
from gvae_bench.contracts.model import GenerativeModel
from gvae_bench.profiles import EvalConfig
from gvae_bench.registry import METRICS

log = logging.getLogger(__name__)


def evaluate(model: GenerativeModel, benchmark: Benchmark, splits: DataSplits, config: EvalConfig,
             seed: int, classifier: ClassifierConfig | None = None,
             only: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every registered metric's result for ``model``, as JSON-able dicts keyed by metric name.

    Each entry has ``value`` (None for n/a), ``higher_is_better``, ``table`` and, for n/a, ``na``
    with what was missing (or why the samples left it undefined: ``NotApplicable``); for computed
    ones the sample counts, ``reference`` and ``details``.
    ``only``: evaluate just these metric names. ``classifier``: the domain classifier's training
    config (its defaults when None).
    """
    metrics: list[tuple[str, Metric]] = [(entry.name, entry.obj()) for entry in METRICS.entries()
                                         if only is None or entry.name in only]
    applicable = {name for name, metric in metrics if not metric.missing(model, benchmark)}
    domain_classifier, classifier_record = None, None
    if any(metric.uses_classifier(benchmark) for name, metric in metrics if name in applicable):
        domain_classifier, classifier_record = train_classifier(
            benchmark.classifier_dataset, benchmark.data_root, classifier or ClassifierConfig(),
            source=benchmark.classifier_source())
    ctx = EvalContext(model=model, benchmark=benchmark, splits=splits, config=config, seed=seed,
                      classifier=domain_classifier, classifier_record=classifier_record)
    results: dict[str, dict[str, Any]] = {}
    model.eval()
    for name, metric in metrics:
        base = {"higher_is_better": metric.higher_is_better, "table": metric.table,
                **({} if metric.ranked else {"ranked": False})}
        if name not in applicable:
            results[name] = {**base, "value": None, "na": f"needs {', '.join(metric.missing(model, benchmark))}"}
            continue
        began = time.perf_counter()
        try:
            with torch.no_grad():
                result = metric.compute(ctx)
        except NotApplicable as exc:
            results[name] = {**base, "value": None, "na": str(exc)}
            log.warning("%s: n/a: %s", name, exc)
            continue
        results[name] = {**base, **asdict(result), "seconds": round(time.perf_counter() - began, 3)}
        log.info("%s = %.6g (%d generated, %d real)", name, result.value, result.n_generated, result.n_real)
    return results
