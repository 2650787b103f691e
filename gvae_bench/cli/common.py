"""The command line's shared helpers: the one-line error, the parsers of comma-separated options and
the guard that turns a library's ``UserError`` into that error. Every command module of ``gvae_bench.cli``
imports them from here, so no command module imports another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import click

from gvae_bench.errors import UserError

T = TypeVar("T")


class CLIError(click.ClickException):
    """A one-line 'Error: ...' on stderr and exit status 2."""

    exit_code = 2


def _names(text: str, what: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise CLIError(f"--{what} needs at least one name, e.g. --{what} vae,wgan_gp")
    return names


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CLIError(f"{option} takes comma-separated whole numbers, e.g. {option} 0,1,2; got {text!r}") from None
    if not values:
        raise CLIError(f"{option} takes comma-separated whole numbers, e.g. {option} 0,1,2; got {text!r}")
    return values


def _cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise CLIError(f"--cpus-per-run takes a positive number of CPUs, e.g. 1, 2 or 0.5; got {text!r}")
    return value


def _guard(action: Callable[[], T]) -> T:
    """Turn bad input into a one-line error with exit status 2."""
    try:
        return action()
    except UserError as exc:
        raise CLIError(str(exc)) from None


def _parse_settings(settings: tuple[str, ...]) -> dict[str, tuple[tuple[str, object], ...]]:
    """``benchmark.mode=3d`` -> {"benchmark": (("mode", "3d"),), ...}; values read as JSON when they
    parse (numbers, true/false, null), else kept as text."""
    parsed: dict[str, list] = {"benchmark": [], "model": [], "train": [], "eval": []}
    for item in settings:
        target, _, rest = item.partition(".")
        name, eq, text = rest.partition("=")
        if target not in parsed or not name or not eq:
            raise CLIError(f"--set takes {'|'.join(parsed)}.FIELD=VALUE, e.g. --set benchmark.mode=3d "
                           f"or --set train.precision=bf16; got {item!r}")
        parsed[target].append((name, _parse_value(text)))
    return {key: tuple(values) for key, values in parsed.items()}


def _parse_value(text: str) -> object:
    """A setting's value: JSON when it parses (numbers, true/false, null), else the text."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
