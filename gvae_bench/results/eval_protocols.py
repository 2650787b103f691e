"""The evaluation protocol a metric value was measured under, and the rule that values measured
under different protocols are never pooled into one cell nor compared.

A value's protocol is what, beyond the trained model, decides the number: the sample counts
(generated and real), the likelihood settings (k importance samples, AIS chains, steps and
leapfrog steps, held-out images) and, for the feature-space metrics, the domain classifier that
embedded the images. A classifier is named by its pinned weights' sha256 and version
(``details.classifier_sha256`` / ``classifier_version``); older records carry only
``details.classifier_key``, which names how it was trained, not the weights, and counts as a
different classifier from any pinned one. The profile is part of a row's identity already
(rows are grouped by profile), so two rows of one profile can still differ in protocol.
"""

from __future__ import annotations

import logging
from typing import Any

from gvae_bench.execution.records import RunRecord

log = logging.getLogger(__name__)

#: detail fields that change what a value measures (likelihood and KID settings; not ``heldout_images``,
#: the images a GAN's observation noise was chosen on, which is part of the model being scored)
PROTOCOL_DETAILS = ("k", "chains", "steps", "leapfrog", "elbo_samples", "n_subsets",
                    "subset_size")


def classifier_of(details: dict[str, Any]) -> str:
    """``sha256 <first 12 hex> (version V)``, or ``key K`` for records made before classifiers were
    pinned, or '' when the value is not in a classifier's feature space."""
    sha = details.get("classifier_sha256")
    if sha:
        version = details.get("classifier_version")
        return f"classifier sha256 {str(sha)[:12]}" + (f" (version {version})" if version is not None else "")
    key = details.get("classifier_key")
    return f"classifier key {key} (weights not pinned)" if key else ""


def evaluation_protocol(record: RunRecord, metric: str) -> str:
    """A readable description of the protocol behind ``record``'s value of ``metric``; equal
    strings mean comparable values. '' when the record holds no value of it."""
    result = record.metrics.get(metric) or {}
    if result.get("value") is None:
        return ""
    details = result.get("details") or {}
    parts = []
    generated, real = result.get("n_generated"), result.get("n_real")
    if generated:
        parts.append(f"{generated} generated / {real} real")
    elif real:
        parts.append(f"{real} test images")
    for key in PROTOCOL_DETAILS:
        if key in details and not isinstance(details[key], (dict, list)):
            parts.append(f"{key} {details[key]}")
    classifier = classifier_of(details)
    if classifier:
        parts.append(classifier)
    return "; ".join(parts)


def row_protocols(records: list[RunRecord], metric: str) -> dict[str, list[int]]:
    """The protocols of one row's finished values of ``metric``, each with the seeds scored under it."""
    found: dict[str, list[int]] = {}
    for record in records:
        text = evaluation_protocol(record, metric)
        if text:
            found.setdefault(text, []).append(record.seed)
    return found


def pooling_refusal(records: list[RunRecord], metric: str, row: str = "") -> str:
    """'' when one row's values of ``metric`` share one protocol (they may be pooled), else the
    one-line reason they are not, naming the seeds under each; a warning is logged."""
    found = row_protocols(records, metric)
    if len(found) <= 1:
        return ""
    reason = "not pooled: seeds scored under different protocols (" + "; ".join(
        f"seeds {' '.join(map(str, sorted(seeds)))}: {text}" for text, seeds in sorted(found.items())) + ")"
    log.warning("%s%s: %s", f"{row} " if row else "", metric, reason)
    return reason


def comparison_refusal(protocol_a: str, protocol_b: str) -> str:
    """'' when two rows' values were measured under one protocol, else why they are not compared."""
    if protocol_a == protocol_b:
        return ""
    return f"not compared: different evaluation protocols (A: {protocol_a}; B: {protocol_b})"
