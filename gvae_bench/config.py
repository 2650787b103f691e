"""Config dataclasses: validated on construction, serialisable, hashed to name run folders.

Hash stability: a run folder is named by the hash of its resolved config, so adding a field to a
config dataclass would rename every existing run of that config and split its seeds from new
ones. A field added after runs exist is therefore declared with ``added_field(default, since=...)``:
it is left out of the hash while it holds its default (the behaviour the old runs had), and hashed
like any other field once it is set to something else. Records always store every field.

Field types: on construction every field's value is checked against its annotation (``int``, ``float``,
``bool``, ``str``, ``X | None``, ``Literal[...]``, ``tuple[float, float]``, ``tuple[int, ...]`` and unions of
these; other annotations are not checked). A bool is neither an int nor a float; an int given for a float is
stored as that float (``kl_weight=1`` and ``kl_weight=1.0`` are one config with one hash); a float given for an
int is refused, whole or not; a list given for a tuple is stored as a tuple.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
import typing
from typing import Any, Literal, TypeVar, Union

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
            self.check_types()
            self.validate()
        except ValueError as exc:
            raise UserError(f"invalid {type(self).__name__}: {exc}") from None

    def validate(self) -> None:
        """Raise ValueError naming the bad field, its value and what is allowed."""

    def check_types(self) -> None:
        """Raise ValueError naming the first field whose value does not fit its annotation; store the
        conversions the annotation allows (int -> float, list -> tuple)."""
        hints = _field_types(type(self))
        for f in dataclasses.fields(self):
            if f.name not in hints:
                continue
            value = getattr(self, f.name)
            try:
                converted = _conform(value, hints[f.name])
            except _Unchecked:
                continue
            except _Mismatch as exc:
                raise ValueError(f"{f.name} {_describe_mismatch(value, hints[f.name], exc)}") from None
            if converted is not value:
                setattr(self, f.name, converted)

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
            if isinstance(known[key].default, tuple) and isinstance(value, list) and not _checks(cls, key, value):
                value = tuple(value)  # JSON and TOML give lists where the config holds tuples
            elif isinstance(known[key].default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # `--set model.kl_weight=1` and `kl_weight = 1.0`: one config, one hash
            coerced[key] = value
        return cls(**coerced)

    def replace(self: C, **changes: Any) -> C:
        """A copy with the given fields changed, validated again."""
        return self.from_dict({**self.to_dict(), **changes})


class _Mismatch(Exception):
    """The value does not fit the annotation; ``args[0]``, when given, is a note for the message."""


class _Unchecked(Exception):
    """The annotation is of a form not checked here."""


_TYPE_CACHE: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of each field of ``cls``; a field whose annotation cannot be resolved (a name
    imported only under TYPE_CHECKING, say) is left out."""
    if cls not in _TYPE_CACHE:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # resolve what can be resolved, one annotation at a time
            hints = {}
            for klass in reversed(cls.__mro__):
                namespace = vars(sys.modules[klass.__module__]) if klass.__module__ in sys.modules else {}
                for name, annotation in vars(klass).get("__annotations__", {}).items():
                    try:
                        hints[name] = eval(annotation, dict(namespace), dict(vars(klass))) \
                            if isinstance(annotation, str) else annotation
                    except Exception:
                        hints.pop(name, None)
        names = {f.name for f in dataclasses.fields(cls)}
        _TYPE_CACHE[cls] = {name: hint for name, hint in hints.items() if name in names}
    return _TYPE_CACHE[cls]


def _checks(cls: type, name: str, value: Any) -> bool:
    """Whether the type check of ``cls`` rules on ``value`` for field ``name`` (and so converts a list for a tuple
    itself, and names the value as given when it does not fit)."""
    hints = _field_types(cls)
    if name not in hints:
        return False
    try:
        _conform(value, hints[name])
    except _Unchecked:
        return False
    except _Mismatch:
        pass
    return True


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _conform(value: Any, hint: Any) -> Any:
    """``value`` as stored for a field annotated ``hint``; _Mismatch if it does not fit, _Unchecked if ``hint``
    is of a form not checked here."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch()
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            raise _Mismatch(f"a float is not taken for an int, even a whole one: write {int(value)}")
        raise _Mismatch()
    if hint is float:
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise _Mismatch("too large for a float") from None
        raise _Mismatch()
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch()
    if hint is None or hint is type(None):
        if value is None:
            return value
        raise _Mismatch()
    origin = typing.get_origin(hint)
    if origin is Literal:
        for choice in typing.get_args(hint):
            if value == choice and type(value) is type(choice):
                return value
        raise _Mismatch()
    if _is_union(hint):
        unchecked = False
        fits, notes = [], []
        for option in typing.get_args(hint):
            try:
                fits.append(_conform(value, option))
            except _Mismatch as exc:
                notes.extend(exc.args)
                continue
            except _Unchecked:
                unchecked = True
                continue
            if fits[-1] is value:  # fits as it is: no conversion
                return value
        if fits:
            return fits[0]
        if unchecked:
            raise _Unchecked()
        raise _Mismatch(*notes[:1])
    if hint is tuple or origin is tuple:
        if not isinstance(value, (tuple, list)):
            raise _Mismatch()
        args = typing.get_args(hint)
        if hint is tuple:
            args = (Any, ...)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(value) != len(args):
            raise _Mismatch()
        try:
            items = [item if arg is Any else _conform(item, arg) for item, arg in zip(value, args)]
        except _Mismatch:
            raise _Mismatch() from None  # the message shows the whole value; an item's note would not fit it
        if isinstance(value, tuple) and all(new is old for new, old in zip(items, value)):
            return value
        return tuple(items)
    raise _Unchecked()


_NOUNS = {bool: ("a bool", "bools"), int: ("an int", "ints"), float: ("a float", "floats"),
          str: ("a string", "strings"), type(None): ("None", "Nones")}


def _expected(hint: Any, plural: bool = False) -> str:
    """What ``hint`` asks for, in words: 'an int', 'a tuple of 2 floats', "one of '2d', '3d'"."""
    if hint is None:
        hint = type(None)
    if hint in _NOUNS:
        return _NOUNS[hint][plural]
    origin = typing.get_origin(hint)
    if origin is Literal:
        return ("values " if plural else "") + "one of " + ", ".join(repr(c) for c in typing.get_args(hint))
    if _is_union(hint):
        words = [_expected(option, plural) for option in typing.get_args(hint)]
        return " or ".join((", ".join(words[:-1]), words[-1]))
    if hint is tuple or origin is tuple:
        args = typing.get_args(hint)
        noun = "tuples" if plural else "a tuple"
        if hint is tuple:
            return noun
        if args == ():
            return f"{'empty tuples' if plural else 'an empty tuple'}"
        if len(args) == 2 and args[1] is Ellipsis:
            return f"{noun} of {_expected(args[0], plural=True)}"
        if len(set(args)) == 1:
            return f"{noun} of {len(args)} {_expected(args[0], plural=True)}"
        return f"{noun} of {len(args)} items ({', '.join(_expected(arg) for arg in args)})"
    return getattr(hint, "__name__", str(hint))


def _describe_mismatch(value: Any, hint: Any, exc: _Mismatch) -> str:
    """'must be an int, got 2.5 (float)', or for a Literal "must be one of '2d', '3d', got '4d'"."""
    if typing.get_origin(hint) is Literal:
        return f"must be {_expected(hint)}, got {value!r}"
    note = f"; {exc.args[0]}" if exc.args else ""
    return f"must be {_expected(hint)}, got {value!r} ({type(value).__name__}{note})"


def _as_plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def config_hash(config: dict[str, Any], length: int = 10) -> str:
    """A short SHA-256 of the canonical JSON of a resolved config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
