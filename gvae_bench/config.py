"""Config dataclasses: validated on construction, serialisable, hashed to name run folders.

Hash stability: a run folder is named by the hash of its resolved config, so adding a field to a
config dataclass would rename every existing run of that config and split its seeds from new
ones. A field added after runs exist is therefore declared with ``added_field(default, since=...)``:
it is left out of the hash while it holds its default (the behaviour the old runs had), and hashed
like any other field once it is set to something else. Records always store every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, TypeVar

from gvae_bench.errors import UserError

C = TypeVar("C", bound="ConfigBase")

ADDED_IN = "added_in"


def added_field(default: Any, *, since: str) -> Any:
    """A config field added after runs were made (version ``since``): hashed only when not at its
    default, so the runs made before it existed keep their folders."""
    return dataclasses.field(default=default, metadata={ADDED_IN: since})


@dataclasses.dataclass
class ConfigBase:
    """Base of every config dataclass (pythae style: one per model, validated, saved with weights)."""

    def __post_init__(self) -> None:
        try:
            self.validate()
        except ValueError as exc:
            raise UserError(f"invalid {type(self).__name__}: {exc}") from None

    def validate(self) -> None:
        """Raise ValueError naming the bad field, its value and what is allowed."""

    def require(self, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
        """Raise ValueError naming the first field that is not > 0 (``positive``) or >= 0."""
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def require_at_least(self, minimum: float, *names: str) -> None:
        """Raise ValueError naming the first of ``names`` whose value is below ``minimum``."""
        for name in names:
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash_dict(self) -> dict[str, Any]:
        """``to_dict`` without the added fields (``added_field``) that still hold their default."""
        values = self.to_dict()
        for f in dataclasses.fields(self):
            if ADDED_IN in f.metadata and values[f.name] == _as_plain(f.default):
                del values[f.name]
        return values

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        """Build from a mapping; unknown keys are a UserError that lists the known fields."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UserError(
                f"{cls.__name__} has no field(s) {', '.join(unknown)}; its fields are: {', '.join(known)}"
            )
        coerced = {}
        for key, value in values.items():
            if isinstance(known[key].default, tuple) and isinstance(value, list):
                value = tuple(value)  # JSON and TOML give lists where the config holds tuples
            elif isinstance(known[key].default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # `--set model.kl_weight=1` and `kl_weight = 1.0`: one config, one hash
            coerced[key] = value
        return cls(**coerced)

    def replace(self: C, **changes: Any) -> C:
        """A copy with the given fields changed, validated again."""
        return self.from_dict({**self.to_dict(), **changes})


def _as_plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def config_hash(config: dict[str, Any], length: int = 10) -> str:
    """A short SHA-256 of the canonical JSON of a resolved config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
