"""The tuning's search space and validation split (``gvae_bench.tuning`` runs the studies).

The search space is data, ``gvae_bench/tuning/search_space.toml``: per model, each tuned config field's
range (``low``/``high``, ``log``) or ``choices`` with the source of the range, and per profile the
budget (trials, steps per trial, the held-out fraction). The validation split is carved from the
training split (the first rows fit, the last validate) and never touches the test set.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from gvae_bench.errors import UserError

SEARCH_SPACE_FILE = Path(__file__).with_name("search_space.toml")

def load_search_space(path: Path = SEARCH_SPACE_FILE) -> dict[str, Any]:
    """The search-space file as a dict (model tables and the ``budget`` table)."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def budget_defaults(profile: str, dataset: str | None = None, path: Path = SEARCH_SPACE_FILE) -> dict[str, Any]:
    """``[budget.<profile>]`` of the search-space file, with ``[budget.<profile>.<dataset>]`` over it
    (empty when the profile has none)."""
    table = dict(load_search_space(path).get("budget", {}).get(profile, {}))
    values = {key: value for key, value in table.items() if not isinstance(value, dict)}
    if dataset is not None and isinstance(table.get(dataset), dict):
        values.update(table[dataset])
    return values


def _distributions(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna distributions of one model's parameters, checked against its Config's fields."""
    import dataclasses

    import optuna.distributions as od

    from gvae_bench.registry import MODELS

    if not isinstance(params, Mapping) or not params:
        raise UserError(f"the search space of {model} is empty; give it parameters with low/high or choices")
    fields = {f.name: f for f in dataclasses.fields(MODELS.get(model).Config)}
    found: dict[str, Any] = {}
    members: dict[str, set[int]] = {}
    for name, spec in params.items():
        where = f"search space {model}.{name}"
        if not isinstance(spec, Mapping):
            raise UserError(f"{where} is a table with low/high (and log) or choices, and source")
        target = spec.get("field", name)
        if target not in fields:
            raise UserError(f"{where}: {model}'s Config has no field {target!r}; its fields are: {', '.join(fields)}")
        if "field" in spec:
            index = spec.get("index")
            if not isinstance(fields[target].default, tuple) or not isinstance(index, int) or isinstance(index, bool):
                raise UserError(f"{where}: field/index name a member of a tuple field, e.g. field = \"betas\", index = 0")
            members.setdefault(target, set()).add(index)
        elif target in members:
            raise UserError(f"{where}: {target} is also searched member by member")
        if not isinstance(spec.get("source"), str) or not spec["source"].strip():
            raise UserError(f"{where} needs a source: where the range comes from")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise UserError(f"{where}: choices is a non-empty list")
            found[name] = od.CategoricalDistribution(choices)
        elif "low" in spec and "high" in spec:
            low, high, use_log = spec["low"], spec["high"], bool(spec.get("log", False))
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
            if not numbers or not low < high or (use_log and low <= 0):
                raise UserError(f"{where}: low < high, numbers (and low > 0 with log); got {low!r}..{high!r}")
            if isinstance(low, int) and isinstance(high, int) and not isinstance(fields[target].default, float):
                found[name] = od.IntDistribution(low, high, log=use_log)
            else:
                found[name] = od.FloatDistribution(float(low), float(high), log=use_log)
        else:
            raise UserError(f"{where}: give low and high (and log), or choices")
    for target, indices in members.items():
        size = len(fields[target].default)
        if indices != set(range(size)):
            raise UserError(f"search space {model}: {target} has {size} members; give index 0..{size - 1} once each")
    return found


def params_to_fields(model: str, params: Mapping[str, Any], space: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters as the model's config fields (tuple members joined: beta1, beta2 -> betas)."""
    values: dict[str, Any] = {}
    tuples: dict[str, dict[int, Any]] = {}
    for name, value in params.items():
        spec = space[model][name]
        if "field" in spec:
            tuples.setdefault(spec["field"], {})[spec["index"]] = value
        else:
            values[name] = value
    for target, members in tuples.items():
        values[target] = tuple(members[i] for i in range(len(members)))
    return values


# --- validation split ----------------------------------------------------------------------------


def split_sizes(n_pool: int, fraction: float) -> tuple[int, int]:
    """(N_fit, N_val) of a pool of ``n_pool`` training rows; ``UserError`` when either is too small."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 < fraction < 1.0:
        raise UserError(f"the validation fraction is a number between 0 and 1 (e.g. 0.1); got {fraction!r}")
    n_val = int(round(fraction * n_pool))
    n_fit = n_pool - n_val
    if n_val < 2 or n_fit < 1:
        raise UserError(f"a validation fraction of {fraction} of {n_pool} training rows leaves {n_fit} to fit and "
                        f"{n_val} to validate; it needs at least 1 and 2")
    return n_fit, n_val


def validation_split(train: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fit_idx, val_idx)``: the first N_fit rows of ``train`` to fit, the last N_val to validate.

    Positional because a run can only be limited to the first N training rows
    (``BenchmarkConfig.train_limit``); the sets depend on ``len(train)`` and ``fraction`` alone, so
    they are the same for every model. ``seed`` fixes the order of ``val_idx`` (a seeded
    permutation), which matters only when a subset of the validation rows is used. Disjoint, and
    both within the training split: the test split is never touched.
    """
    n_fit, n_val = split_sizes(len(train), fraction)
    fit_idx = torch.arange(n_fit)
    val_idx = n_fit + torch.randperm(n_val, generator=torch.Generator().manual_seed(int(seed)))
    return fit_idx, val_idx


def _rows_sha256(rows: torch.Tensor) -> str:
    return hashlib.sha256(rows.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


@dataclass(frozen=True)
class Split:
    """The validation split of one (dataset, profile): the pool's rows and the held-out ones."""

    n_pool: int
    n_fit: int
    n_val: int
    seed: int
    val_rows: torch.Tensor
    val_sha256: str

    def info(self) -> dict[str, Any]:
        return {"n_pool": self.n_pool, "n_fit": self.n_fit, "n_val": self.n_val, "seed": self.seed,
                "how": f"first {self.n_fit} of the profile's {self.n_pool} training rows to fit "
                       f"(benchmark.train_limit), last {self.n_val} to validate; test split unused",
                "val_sha256": self.val_sha256}

    def text(self) -> str:
        return f"fit first {self.n_fit} / val last {self.n_val} of {self.n_pool} train rows"


def make_split(dataset: str, profile: str, fraction: float, seed: int, data_root: Path,
               model: str = "vae") -> Split:
    """The split of ``dataset`` under ``profile``: the pool is its training split as the profile gives it."""
    from gvae_bench.execution.runs import RunSpec, resolve

    spec = RunSpec(model=model, benchmark=dataset, profile=profile, seed=seed, data_root=Path(data_root),
                   out=Path("."))
    pool = resolve(spec).benchmark.load().train
    _, val_idx = validation_split(pool, fraction, seed)
    rows = pool[val_idx].clone()
    n_fit, n_val = split_sizes(len(pool), fraction)
    return Split(len(pool), n_fit, n_val, seed, rows, _rows_sha256(pool[n_fit:]))
