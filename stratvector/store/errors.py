"""Errors raised by the journal.

All derive from :class:`stratvector.errors.StratVectorError`, so the CLI shows them as one
line and exits nonzero. Messages name the journal URL with its password masked.
"""

from __future__ import annotations

from stratvector.errors import StratVectorError


class JournalError(StratVectorError):
    """The journal cannot be opened, migrated, or asked to do something inconsistent."""


class NotFoundError(JournalError):
    """A record the caller named (order ref, exec id, run id, ...) is not in the journal."""


class UnknownOrderError(NotFoundError):
    """An ``order_ref`` the journal has never seen was named."""


class IntentConflictError(JournalError):
    """An ``order_ref`` was reused for a different order.

    Order refs are deterministic in (strategy, symbol, bar time), so a replay must carry
    the same side, quantity, type and prices. A different payload under the same ref means
    two different orders would share one identity at IB: the journal refuses it.
    ``existing`` is the order already journaled under the ref.
    """

    def __init__(self, message: str, existing: object = None) -> None:
        super().__init__(message)
        self.existing = existing


class OrderIdConflictError(JournalError):
    """An intent already submitted under one IB order id was reported under another.

    That would mean the same intent reached IB twice; the gateway must stop and reconcile.
    """


class JournalUnavailableError(JournalError):
    """The journal's database could not be reached or stayed locked past the busy timeout.

    Raised for reads and writes after a successful open (a dropped PostgreSQL connection,
    a SQLite file locked by another writer for longer than ``busy_timeout``). Nothing of
    the failed call was committed; the caller decides whether to retry or stop.
    """
