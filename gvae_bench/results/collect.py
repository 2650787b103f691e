"""The run records of a results folder and the tables they feed: ``read_records`` reads a dataset's
``record.json`` files, ``tables_of`` names the leaderboards a stored metric result is a column of, and
``at_profile_settings`` tells a run at its profile's own settings from one with ``--set`` or
``--latent-sizes`` overrides. The leaderboards, the comparisons, the power table and the report all
build on this module, which imports none of them.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Iterator

from gvae_bench.execution.records import RECORD_FILE, RecordError, RunRecord, as_written, read_record, record_folder

log = logging.getLogger(__name__)

TABLE_TITLES = {
    "table4": "Table 4 form: distribution distance (MMD) and sample diversity (MS-SSIM)",
    "table5": "Table 5 form: effect of the latent size on MMD and MS-SSIM",
    "table_modes": "Mode coverage on mixtures with known modes (VEEGAN's Table 1 form)",
    "table6": "Table 6 form: likelihood terms of the models with an encoder (nats per test image)",
    "table7": "Table 7 form: bounds on the negative log-likelihood, -log p(x) <= value (nats per test image)",
    "table7_bounds": "Table 7's bounds run by run: each run's IWAE bound ± its standard error over the test "
                     "images, and AIS beside it on the same images (nats per test image)",
    "table_novelty": "Novelty and diversity: data copying C_T (Meehan et al. 2020; about 0 like fresh data, well below 0 "
                     "copies the training set, well above 0 underfits; not ranked), authenticity "
                     "(Alaa et al. 2022) and the Vendi score (Friedman and Dieng 2023)",
}


def tables_of(result: dict[str, Any]) -> set[str]:
    """The leaderboards a stored metric result is a column of (``table`` is a name or a list)."""
    table = result.get("table")
    return {table} if isinstance(table, str) else set(table or ())


#: within ``records_read_once()``: each (folder, dataset)'s records and unreadable files, read once
_READ: dict[tuple[Path, str], tuple[list[RunRecord], list[str]]] | None = None


@contextlib.contextmanager
def records_read_once() -> Iterator[None]:
    """Within the block each dataset's ``record.json`` files are read from disk once: the
    leaderboards, the aggregate over the protocol's datasets, the power table and the report of one
    command share what ``read_records`` read (the records are not written meanwhile). Nested blocks
    share the outer one's reads."""
    global _READ
    outer = _READ
    if outer is None:
        _READ = {}
    try:
        yield
    finally:
        if outer is None:
            _READ = None


def read_records(out: Path, dataset: str, unreadable: list[str] | None = None) -> list[RunRecord]:
    """Every readable run record of ``dataset`` under ``out``; a record that cannot be read is
    logged, left where it is and named in ``unreadable`` (when given), never fatal."""
    if _READ is not None:
        key = (Path(out).resolve(), dataset)
        if key not in _READ:
            skipped: list[str] = []
            _READ[key] = (_read_records(out, dataset, skipped), skipped)
        records, skipped = _READ[key]
        if unreadable is not None:
            unreadable.extend(skipped)
        return list(records)
    return _read_records(out, dataset, unreadable)


def records_beside(out: Path, dataset: str, in_memory: list[RunRecord],
                   unreadable: list[str] | None = None) -> list[RunRecord]:
    """The dataset's run records: ``in_memory`` (e.g. a sweep's own runs) as they are, and only the
    folder's other records read from disk."""
    known = {record_folder(out, r).resolve(): r for r in in_memory if r.benchmark == dataset}
    records = [_without_inestimable(as_written(r)) for r in known.values()]
    records += _read_records(out, dataset, unreadable, skip=set(known))
    return sorted(records, key=lambda r: record_folder(out, r))  # as read_records orders them: by folder


def _read_records(out: Path, dataset: str, unreadable: list[str] | None, skip: set[Path] = frozenset()
                  ) -> list[RunRecord]:
    root = Path(out) / "runs" / dataset
    records = []
    for path in sorted(root.glob(f"**/{RECORD_FILE}")):
        if skip and path.parent.resolve() in skip:
            continue
        try:
            record = read_record(path.parent)
        except (OSError, RecordError) as exc:
            log.warning("left out of the leaderboards, unreadable: %s", exc)
            if unreadable is not None:
                unreadable.append(str(path))
            continue
        if record is not None:
            records.append(_without_inestimable(record))
    return records


def _without_inestimable(record: RunRecord) -> RunRecord:
    """``record`` with every Frechet distance (FID, FRD) fitted from no more samples than feature
    dimensions shown as n/a with the reason (``too_few_for_covariance``), records written before
    the metrics refused such a fit included; the record on disk is not changed."""
    from gvae_bench.functional.fid import too_few_for_covariance

    for name, result in record.metrics.items():
        features = (result.get("details") or {}).get("features")
        if result.get("value") is None or not isinstance(features, int) or not result.get("n_real"):
            continue
        reason = too_few_for_covariance(int(result.get("n_generated") or 0), int(result["n_real"]), features,
                                        name.upper())
        if reason is not None:
            record.metrics[name] = {**result, "value": None, "reference": None, "na": reason}
    return record


_PROFILE_HASHES: dict[tuple[str, str, str], str | None] = {}


def at_profile_settings(record: RunRecord) -> bool:
    """Whether a run used its profile's settings unchanged (no ``--latent-sizes`` or ``--set``):
    its config hash is the one the profile resolves to. Unknown (a plugin not loaded): False."""
    if record.profile_config_hash is not None:  # named by the plan that ran it
        return record.profile_config_hash == record.config_hash
    # a record from before the plan named it: resolve the profile's own settings, once per (model, benchmark, profile)
    from gvae_bench.errors import UserError
    from gvae_bench.execution.runs import RunSpec, resolve

    key = (record.model, record.benchmark, record.profile)
    if key not in _PROFILE_HASHES:
        try:
            spec = RunSpec(record.model, record.benchmark, record.profile, record.seed, Path("data"), Path("."))
            _PROFILE_HASHES[key] = resolve(spec).config_hash
        except UserError:
            _PROFILE_HASHES[key] = None
    expected = _PROFILE_HASHES[key]
    return expected is not None and expected == record.config_hash
