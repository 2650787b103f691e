"""Table 7's bounds run by run: each run's IWAE bound with its standard error over the test images, and AIS
against IWAE on the same model and images.

Table 7's cells are means over seeds, and their interval is over seeds; a likelihood protocol with one long run
(the ``likelihood`` profile) has no such interval, but its bound still has a sampling error over the test images.
For each finished run with an ``iwae_nll`` value, from its record alone:

- ``iwae_nll`` = -(1/N) sum_i L_k(x_i) over the N scored test images (Burda, Grosse and Salakhutdinov 2015, Eq. 8)
  and ``iwae_se`` = s / sqrt(N), s the sample standard deviation of the per-image bounds: the standard error of that
  mean over images (its k samples fixed);
- where the run also has ``ais_nll`` on the first M <= N of the same images: ``iwae_same_images``, the IWAE bound
  averaged over those M images, and ``ais_gap`` = ``iwae_same_images`` - ``ais_nll``. Both estimate -log p(x) from
  above in expectation (AIS's estimate of p(x) is unbiased, so -log of it is biased upwards by Jensen), and
  Wu, Burda, Salakhutdinov and Grosse 2017 (arXiv 1611.04273, Table 1) find AIS tighter than the IWAE bound by a
  fraction of a nat to about two nats on MNIST VAEs; a negative gap would mean a chain too short to beat IWAE.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gvae_bench.execution.records import RunRecord, RunStatus

__all__ = ["BOUNDS_COLUMNS", "bounds_frame", "bounds_markdown"]

BOUNDS_COLUMNS = ["model", "profile", "config_hash", "seed", "iwae_nll", "iwae_se", "iwae_images", "iwae_k",
                  "ais_nll", "ais_images", "ais_chains", "ais_steps", "iwae_same_images", "ais_gap"]


def bounds_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per finished run with an ``iwae_nll`` value (module docstring), sorted by model, profile, seed."""
    rows: list[dict[str, Any]] = []
    for record in records:
        iwae = record.metrics.get("iwae_nll") or {}
        if record.status != RunStatus.FINISHED or iwae.get("value") is None:
            continue
        details = iwae.get("details") or {}
        ais = record.metrics.get("ais_nll") or {}
        ais_details = ais.get("details") or {}
        row = {"model": record.model, "profile": record.profile, "config_hash": record.config_hash,
               "seed": record.seed, "iwae_nll": iwae["value"], "iwae_se": details.get("std_error"),
               "iwae_images": iwae.get("n_real"), "iwae_k": details.get("k"), "ais_nll": ais.get("value"),
               "ais_images": ais.get("n_real") if ais.get("value") is not None else None,
               "ais_chains": ais_details.get("chains"), "ais_steps": ais_details.get("steps"),
               "iwae_same_images": None, "ais_gap": None}
        same = details.get(f"mean_on_first_{row['ais_images']}_images") if row["ais_images"] else None
        if same is not None and row["ais_nll"] is not None:
            row["iwae_same_images"], row["ais_gap"] = same, same - row["ais_nll"]
        rows.append(row)
    frame = pd.DataFrame(rows, columns=BOUNDS_COLUMNS)
    return frame.sort_values(["model", "profile", "config_hash", "seed"], ignore_index=True)


def _number(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _count(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else str(int(value))


def bounds_markdown(frame: pd.DataFrame) -> list[str]:
    """The section of ``table7.md`` that shows ``frame`` (empty when no run has an IWAE bound)."""
    if not len(frame):
        return []
    lines = ["", "## Each run's bounds (nats per test image; from `table7_bounds.csv`)", "",
             "IWAE: -L_k over the scored test images ± its standard error over those images (Burda et al. 2015). "
             "AIS against IWAE on the same images: the IWAE bound over the first images that AIS scores, and the "
             "gap IWAE - AIS (Wu et al. 2017 find AIS tighter by a fraction of a nat to about two nats; "
             "`gvae_bench/results/bounds.py`).", "",
             "| model | profile | config | seed | iwae_nll ± SE | images, k | ais_nll | AIS images, chains, steps "
             "| IWAE on the AIS images | IWAE - AIS |", "|" + "---|" * 10]
    for row in frame.itertuples():
        lines.append(f"| {row.model} | {row.profile} | {row.config_hash} | {row.seed} | "
                     f"{_number(row.iwae_nll)} ± {_number(row.iwae_se)} | {_count(row.iwae_images)}, "
                     f"{_count(row.iwae_k)} | {_number(row.ais_nll)} | {_count(row.ais_images)}, "
                     f"{_count(row.ais_chains)}, {_count(row.ais_steps)} | {_number(row.iwae_same_images)} | "
                     f"{_number(row.ais_gap)} |")
    return lines
