"""Errors that reach the user as one line (the CLI turns them into exit status 2)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message says what was wrong and what would be right."""


class DataMissingError(UserError):
    """A benchmark's files are not under the data root and cannot be downloaded."""


class PluginError(UserError):
    """A plugin could not be imported or does not follow the plugin contract."""
