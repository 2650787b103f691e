"""Config dataclasses: validated on construction, serialisable, hashed to name run folders."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, TypeVar

from gvae_bench.errors import UserError

C = TypeVar("C", bound="ConfigBase")


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
            coerced[key] = value
        return cls(**coerced)

    def replace(self: C, **changes: Any) -> C:
        """A copy with the given fields changed, validated again."""
        return self.from_dict({**self.to_dict(), **changes})


def config_hash(config: dict[str, Any], length: int = 10) -> str:
    """A short SHA-256 of the canonical JSON of a resolved config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
