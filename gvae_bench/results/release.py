"""Whether a folder of run records is a release of a study protocol.

A release (docs/protocol.md, "Making the release") is the protocol's declared runs, every model at
every declared seed on every declared dataset under the declared profile, made from one clean
commit in one environment and scored in one feature space. :func:`audit_release` reads a
dataset's records and says, from the records alone:

- **which declared runs exist** and which are missing: a run counts when the confirmatory family
  would take it (``confirmatory.declared_runs``: finished, at the declared profile and seeds, one
  configuration per model);
- **whether they agree** on each field that makes a release one: the commit (``git.commit``), a
  clean tree (``git.dirty`` false), the CPU model, the torch threads (the protocol's
  ``torch_threads`` when it declares them), the device, the software versions, the pinned
  classifier of every feature-space metric (its sha256) and the dataset the tuned configurations
  came from (the protocol's ``tuned_from_dataset``). Each field that takes more than one value is
  one line naming its values and the runs that hold each.

Runs of the folder outside the declaration (other seeds, profiles or settings) are counted, never
judged: a release folder may hold other work. The platform string (kernel and C library) is shown
when it varies but is not a disagreement: the protocol fixes the software the harness records, not
the host's kernel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gvae_bench.execution.records import RunRecord, RunStatus
from gvae_bench.results.collect import at_profile_settings, read_records
from gvae_bench.results.eval_protocols import classifier_of
from gvae_bench.results.protocol import Protocol

#: a declared run: (model, seed)
RunKey = tuple[str, int]
#: why ``declared_runs`` takes no run of a model whose declared runs disagree on their configuration
SEVERAL_CONFIGURATIONS = "several configurations"


def profile_runs(records: list[RunRecord], model: str, profile: str, seeds: tuple[int, ...] | None = None
                 ) -> tuple[list[RunRecord], str]:
    """The finished runs of ``model`` under ``profile`` (at ``seeds`` when given) that share one
    configuration: all of them when they do, else those at the profile's own settings (a tuned
    profile's: with its tuned fields) when they do. [] and why when there are none."""
    runs = [r for r in records if r.model == model and r.profile == profile
            and r.status == RunStatus.FINISHED and (seeds is None or r.seed in seeds)]
    hashes = {r.config_hash for r in runs}
    if len(hashes) > 1:
        runs = [r for r in runs if at_profile_settings(r)]
    if len({r.config_hash for r in runs}) > 1 or (len(hashes) > 1 and not runs):
        return [], (f"{model}: {SEVERAL_CONFIGURATIONS} under profile {profile} ({', '.join(sorted(hashes))}), "
                    f"{'several' if runs else 'none'} at the profile's own settings")
    if not runs:
        return [], f"{model}: no finished run under profile {profile}" + (" at the declared seeds" if seeds else "")
    return runs, ""


def declared_runs(records: list[RunRecord], protocol: Protocol, model: str) -> tuple[list[RunRecord], str]:
    """The runs of ``model`` a protocol declares, the ones its confirmatory tests and aggregate take:
    ``profile_runs`` at the declared profile and seeds."""
    return profile_runs(records, model, protocol.profile, protocol.seeds)


def _commit(record: RunRecord) -> str:
    commit = (record.git or {}).get("commit")
    return str(commit)[:12] if commit else "not recorded"


def _tree(record: RunRecord) -> str:
    dirty = (record.git or {}).get("dirty")
    return {False: "clean", True: "dirty"}.get(dirty, "not recorded")


def _environment(key: str, missing: str) -> Callable[[RunRecord], str]:
    def value(record: RunRecord) -> str:
        found = (record.environment or {}).get(key)
        return missing if found is None else str(found)
    return value


def _versions(record: RunRecord) -> str:
    return json.dumps(record.versions, sort_keys=True) if record.versions else "not recorded"


def _classifiers(record: RunRecord) -> str:
    """The classifiers that embedded this run's feature-space values, or 'none'."""
    found = sorted({classifier_of(result.get("details") or {}).removeprefix("classifier ")
                    for result in record.metrics.values() if result.get("value") is not None} - {""})
    return " + ".join(found) or "none"


#: the fields one release shares, each as (label, the value a record holds)
RELEASE_FIELDS: tuple[tuple[str, Callable[[RunRecord], str]], ...] = (
    ("commit", _commit),
    ("tree", _tree),
    ("CPU", _environment("cpu", "not recorded")),
    ("torch threads", _environment("torch_threads", "not recorded")),
    ("device", lambda r: str(r.device)),
    ("versions", _versions),
    ("classifier", _classifiers),
    ("tuned on", lambda r: str((r.tuning or {}).get("tuned_on", "not recorded"))),
)


@dataclass
class ReleaseAudit:
    """One dataset's declared runs against its records (see the module docstring)."""

    protocol: str
    dataset: str
    declared: list[RunKey]
    found: dict[RunKey, RunRecord]
    outside: int = 0
    disagreements: list[str] = field(default_factory=list)
    shared: dict[str, str] = field(default_factory=dict)
    platforms: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[RunKey]:
        return [key for key in self.declared if key not in self.found]

    @property
    def consistent(self) -> bool:
        """Every found run agrees on every release field (and on the declared thread count)."""
        return not self.disagreements

    @property
    def complete(self) -> bool:
        return not self.missing

    def training_left(self) -> tuple[float, list[str]]:
        """The missing runs' training time, each at the mean ``train_seconds`` of its model's found
        runs that trained from step 0 (one run's time, as the release ran it), and the models
        with no such run to go by."""
        seconds, unknown = 0.0, []
        for model, _ in self.missing:
            times = [r.train_seconds for (m, _), r in self.found.items()
                     if m == model and r.train_seconds and not r.resumed_from_step]
            if times:
                seconds += sum(times) / len(times)
            elif model not in unknown:
                unknown.append(model)
        return seconds, unknown

    def machine_line(self, cpu: str) -> str | None:
        """Whether a run made on a machine with CPU model ``cpu`` could join the runs found (the CPU is a
        release field: the same commit and thread count give other numbers on another CPU); None before
        any run exists or while the found runs disagree on their CPU."""
        release_cpu = self.shared.get("CPU")
        if release_cpu is None:
            return None
        if cpu == release_cpu:
            return f"  this machine: {cpu}, the release's CPU: a run made here can join it"
        return (f"  this machine: {cpu}, not the release's {release_cpu}: a run made here would not join it "
                "(make the release's runs on a machine of its CPU model)")

    def lines(self) -> list[str]:
        """What a person reads: the count, the missing runs by model, then agreement or each disagreement."""
        head = f"{self.dataset}: {len(self.found)} of {len(self.declared)} declared runs of {self.protocol}"
        if self.outside:
            head += f" ({self.outside} other run(s) in the folder, not part of it)"
        lines = [head]
        by_model: dict[str, list[int]] = {}
        for model, seed in self.missing:
            by_model.setdefault(model, []).append(seed)
        if by_model:
            lines.append("  missing: " + "; ".join(f"{m} seed {' '.join(map(str, s))}" for m, s in by_model.items()))
        if self.found and self.consistent:
            lines.append("  one release: " + "; ".join(f"{label} {value}" for label, value in self.shared.items()
                                                       if label != "versions"))
            lines.append(f"  versions {self.shared.get('versions', '')}")
        lines.extend(f"  differ: {line}" for line in self.disagreements)
        if len(self.platforms) > 1:
            lines.append(f"  platforms (not a release field): {' | '.join(self.platforms)}")
        return lines


def _label(key: RunKey) -> str:
    return f"{key[0]} seed {key[1]}"


def audit_records(records: list[RunRecord], dataset: str, protocol: Protocol) -> ReleaseAudit:
    """The audit of ``dataset``'s declared runs among ``records`` (any folder's, any dataset's)."""
    declared = [(model, seed) for model in protocol.models for seed in protocol.seeds]
    mine = [r for r in records if r.benchmark == dataset]
    found: dict[RunKey, RunRecord] = {}
    disagreements: list[str] = []
    for model in protocol.models:
        runs, why = declared_runs(mine, protocol, model)  # the runs the confirmatory family takes
        if SEVERAL_CONFIGURATIONS in why:
            disagreements.append(why)
        for record in runs:
            found.setdefault((record.model, record.seed), record)
    audit = ReleaseAudit(protocol.label, dataset, declared, found, outside=len(mine) - len(found),
                         disagreements=disagreements)
    for label, value_of in RELEASE_FIELDS:
        holders: dict[str, list[RunKey]] = {}
        for key, record in sorted(found.items()):
            holders.setdefault(value_of(record), []).append(key)
        if len(holders) == 1:
            audit.shared[label] = next(iter(holders))
        elif holders:
            audit.disagreements.append(f"{label}: " + " | ".join(
                f"{value} ({', '.join(map(_label, keys))})" for value, keys in sorted(holders.items())))
    dirty = [key for key, record in sorted(found.items()) if _tree(record) != "clean"]
    if dirty and "tree" in audit.shared:
        audit.disagreements.append(f"tree: {audit.shared.pop('tree')} ({', '.join(map(_label, dirty))})")
    threads = audit.shared.get("torch threads")
    if protocol.torch_threads is not None and threads is not None and threads != str(protocol.torch_threads):
        audit.disagreements.append(f"torch threads: {audit.shared.pop('torch threads')}, "
                                   f"the protocol declares {protocol.torch_threads}")
    tuned_on = audit.shared.get("tuned on")
    declared_tuning = protocol.tuned_from_dataset.get(dataset)
    if protocol.profile == "tuned" and declared_tuning and tuned_on is not None and tuned_on != declared_tuning:
        audit.disagreements.append(f"tuned on: {audit.shared.pop('tuned on')}, the protocol declares {declared_tuning}")
    audit.platforms = sorted({str((r.environment or {}).get("platform", "not recorded")) for r in found.values()})
    return audit


def audit_release(out: Path, protocol: Protocol, datasets: list[str] | None = None) -> list[ReleaseAudit]:
    """The audit of each of ``datasets`` (default: the protocol's) from the records under ``out``."""
    audits = []
    for dataset in datasets or list(protocol.datasets):
        audits.append(audit_records(read_records(out, dataset), dataset, protocol))
    return audits

