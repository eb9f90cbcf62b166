"""The event log: connects, disconnects, limit breaches, kill switch, halts, errors.

Events are facts for people (the dashboard's timeline, post-mortems), not state the
daemon reads back; the kill switch's state lives in :mod:`stratvector.store.control`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratvector.store._types import jsonable, opt_utc, to_utc, utc_now
from stratvector.store.models import Event

CONNECTED = "connect"
DISCONNECTED = "disconnect"
LIMIT_BREACH = "limit_breach"
KILL_SWITCH = "kill_switch"
HALT = "halt"
RESUME = "resume"
RECONCILE = "reconcile"
ERROR = "error"
SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    severity: str
    strategy: str | None
    symbol: str | None
    message: str | None
    detail: dict[str, Any] | None


def _record(e: Event) -> EventRecord:
    return EventRecord(e.id, e.at, e.kind, e.severity, e.strategy, e.symbol, e.message, e.detail)


def add_event(
    s: Session,
    kind: str,
    detail: dict[str, Any] | None = None,
    *,
    message: str | None = None,
    severity: str = "info",
    strategy: str | None = None,
    symbol: str | None = None,
    at: datetime | None = None,
) -> Event:
    """Add an event to an open write session (for repositories that log as they write)."""
    if not kind or len(kind) > 64:
        raise ValueError(f"event kind must be 1-64 characters, not {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    event = Event(
        at=opt_utc(at, "at") or utc_now(),
        kind=kind,
        severity=severity,
        strategy=strategy,
        symbol=symbol,
        message=message,
        detail=jsonable(detail),
    )
    s.add(event)
    s.flush()
    return event


class Events:
    """The event log. Get it as ``journal.events``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def record_event(
        self,
        kind: str,
        detail: dict[str, Any] | None = None,
        *,
        message: str | None = None,
        severity: str = "info",
        strategy: str | None = None,
        symbol: str | None = None,
        at: datetime | None = None,
    ) -> EventRecord:
        """Append an event (``kind`` e.g. :data:`CONNECTED`; ``detail`` any JSON)."""
        with self._journal.write() as s:
            return _record(
                add_event(
                    s,
                    kind,
                    detail,
                    message=message,
                    severity=severity,
                    strategy=strategy,
                    symbol=symbol,
                    at=at,
                )
            )

    def list_events(
        self,
        *,
        kind: str | None = None,
        severity: str | None = None,
        strategy: str | None = None,
        since: datetime | None = None,
        limit: int | None = 100,
    ) -> list[EventRecord]:
        """Events newest first."""
        with self._journal.read() as s:
            stmt = select(Event).order_by(Event.at.desc(), Event.id.desc())
            if kind is not None:
                stmt = stmt.where(Event.kind == kind)
            if severity is not None:
                stmt = stmt.where(Event.severity == severity)
            if strategy is not None:
                stmt = stmt.where(Event.strategy == strategy)
            if since is not None:
                stmt = stmt.where(Event.at >= to_utc(since, "since"))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [_record(e) for e in s.scalars(stmt)]
