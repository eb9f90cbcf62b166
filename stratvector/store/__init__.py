"""The journal: orders, fills, positions, runs, reports and events (SQLAlchemy).

SQLite by default (one file, WAL mode), PostgreSQL by URL; the schema is created and
upgraded by the packaged Alembic migrations when the journal is opened::

    from stratvector.store import open_journal, make_order_ref

    with open_journal("sqlite:////var/lib/stratvector/journal.db") as journal:
        ref = make_order_ref("momentum", "AAPL", bar_time)
        order = journal.orders.record_intent(ref, "momentum", "AAPL", bar_time, "BUY", 100)
        ...
        journal.fills.positions()
        journal.control.halt("manual stop", actor="ops")

See :mod:`stratvector.store.engine` for opening and concurrency, and
:mod:`stratvector.store.orders` for the write-ahead order protocol.
"""

from __future__ import annotations

from stratvector.store.control import GLOBAL, HaltRecord
from stratvector.store.engine import Journal, default_journal_path, mask_url, open_journal
from stratvector.store.errors import (
    IntentConflictError,
    JournalError,
    JournalUnavailableError,
    NotFoundError,
    OrderIdConflictError,
    UnknownOrderError,
)
from stratvector.store.events import EventRecord
from stratvector.store.fills import FillRecord
from stratvector.store.orders import (
    ABANDONED,
    INTENT,
    TERMINAL_STATUSES,
    Intent,
    OrderRecord,
    StatusRecord,
    make_order_ref,
    parse_order_ref,
)
from stratvector.store.positions import Position, net_positions
from stratvector.store.reports import DriftReportRecord, RiskReportRecord
from stratvector.store.runs import RunRecord, RunResultRecord, StrategyConfigRecord
from stratvector.store.snapshots import AccountSnapshotRecord, PositionLine, PositionSnapshotRecord

__all__ = [
    "ABANDONED",
    "GLOBAL",
    "INTENT",
    "TERMINAL_STATUSES",
    "AccountSnapshotRecord",
    "DriftReportRecord",
    "EventRecord",
    "FillRecord",
    "HaltRecord",
    "Intent",
    "IntentConflictError",
    "Journal",
    "JournalError",
    "JournalUnavailableError",
    "NotFoundError",
    "OrderIdConflictError",
    "OrderRecord",
    "Position",
    "PositionLine",
    "PositionSnapshotRecord",
    "RiskReportRecord",
    "RunRecord",
    "RunResultRecord",
    "StatusRecord",
    "StrategyConfigRecord",
    "UnknownOrderError",
    "default_journal_path",
    "make_order_ref",
    "mask_url",
    "net_positions",
    "open_journal",
    "parse_order_ref",
]
