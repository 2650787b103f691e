"""Errors that reach the user as one line (the CLI turns them into exit status 2)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message says what was wrong and what would be right."""


class DataMissingError(UserError):
    """A benchmark's files are not under the data root and cannot be downloaded."""


class PluginError(UserError):
    """A plugin could not be imported or does not follow the plugin contract."""


def refuse_old_top_level(module_name: str, package: str) -> None:
    """Raise an ImportError naming the new module when a plugin package of the checkout is imported
    by its old top-level name (``import models`` instead of ``import gvae_bench.models``)."""
    if module_name != f"gvae_bench.{package}":
        raise ImportError(f"the top-level package '{package}' is now 'gvae_bench.{package}': write "
                          f"'import gvae_bench.{package}.<module>' (the contracts are in 'gvae_bench.contracts'), and "
                          "install the harness with 'pip install -e .' from its checkout")
