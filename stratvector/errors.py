"""The project's exception hierarchy.

Every error a user can cause derives from :class:`StratVectorError`; the CLI turns
those into a one-line message and exit code 2. Anything else is a bug and keeps its
traceback. Each error names the place (file, key, row) and what would be accepted.
"""

from __future__ import annotations


class StratVectorError(Exception):
    """Base class of errors caused by user input or environment, shown without traceback."""


class ConfigError(StratVectorError):
    """A configuration file or value is invalid."""


class DataError(StratVectorError):
    """Market data is missing, malformed or fails validation."""


class StrategyError(StratVectorError):
    """A strategy cannot be found, loaded, parameterized, or broke its contract."""


class LookaheadError(StrategyError):
    """A strategy's target at some bar depends on later bars."""
