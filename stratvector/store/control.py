"""The persisted kill switch (``stratvector halt`` / ``stratvector resume``).

A halt is stored per scope: :data:`GLOBAL` stops every strategy, a strategy name stops
that one. The gateway asks :meth:`Control.is_halted` before sending any order; because
the flag is in the journal, a halt set from the CLI (another process) or by the risk
kill switch survives restarts until someone resumes. Every change is also written to
the event log in the same transaction, with who did it and why.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from stratvector.store._sql import for_update, insert_ignore
from stratvector.store._types import opt_utc, utc_now
from stratvector.store.events import HALT, RESUME, add_event
from stratvector.store.models import HaltState

GLOBAL = "*"
"""The scope that halts everything."""


@dataclass(frozen=True, slots=True)
class HaltRecord:
    """The halt flag of one scope. ``changed_at`` is ``None`` if it was never set."""

    scope: str
    halted: bool
    reason: str | None
    actor: str | None
    changed_at: datetime | None


def default_actor() -> str:
    """``user@host`` of this process (who halted or resumed)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Control:
    """Halt and resume. Get it as ``journal.control``."""

    def __init__(self, journal: Any) -> None:
        self._journal = journal

    def halt(
        self,
        reason: str,
        *,
        actor: str | None = None,
        scope: str = GLOBAL,
        at: datetime | None = None,
        event_kind: str = HALT,
    ) -> HaltRecord:
        """Set the halt flag of ``scope`` and log it. The risk kill switch passes
        ``event_kind="kill_switch"``. Halting a halted scope updates reason and actor."""
        if not reason or not reason.strip():
            raise ValueError("a halt needs a reason")
        return self._set(scope, True, reason, actor, at, event_kind)

    def resume(
        self,
        *,
        actor: str | None = None,
        reason: str | None = None,
        scope: str = GLOBAL,
        at: datetime | None = None,
    ) -> HaltRecord:
        """Clear the halt flag of ``scope`` and log it."""
        return self._set(scope, False, reason, actor, at, RESUME)

    def state(self, scope: str = GLOBAL) -> HaltRecord:
        with self._journal.read() as s:
            row = s.get(HaltState, scope)
            return _record(row) if row else HaltRecord(scope, False, None, None, None)

    def is_halted(self, strategy: str | None = None) -> bool:
        """True if everything is halted, or ``strategy`` (when given) is."""
        scopes = [GLOBAL] if strategy is None else [GLOBAL, strategy]
        with self._journal.read() as s:
            found = s.scalars(
                select(HaltState.scope).where(
                    HaltState.scope.in_(scopes), HaltState.halted.is_(True)
                )
            ).first()
            return found is not None

    def halted_scopes(self) -> list[HaltRecord]:
        """Every scope currently halted."""
        with self._journal.read() as s:
            rows = s.scalars(
                select(HaltState).where(HaltState.halted.is_(True)).order_by(HaltState.scope)
            )
            return [_record(r) for r in rows]

    def _set(
        self,
        scope: str,
        halted: bool,
        reason: str | None,
        actor: str | None,
        at: datetime | None,
        event_kind: str,
    ) -> HaltRecord:
        if not scope or len(scope) > 128:
            raise ValueError(f"scope must be 1-128 characters, not {scope!r}")
        actor = actor or default_actor()
        when = opt_utc(at, "at") or utc_now()
        with self._journal.write() as s:
            insert_ignore(
                s, HaltState, {"scope": scope, "halted": False, "changed_at": when}, ["scope"]
            )
            row = s.scalars(for_update(s, select(HaltState).where(HaltState.scope == scope))).one()
            was = row.halted
            row.halted, row.reason, row.actor, row.changed_at = halted, reason, actor, when
            add_event(
                s,
                event_kind,
                {"scope": scope, "actor": actor, "reason": reason, "was_halted": was},
                message=f"{'halted' if halted else 'resumed'} {scope} by {actor}"
                + (f": {reason}" if reason else ""),
                severity="warning" if halted else "info",
                strategy=None if scope == GLOBAL else scope,
                at=when,
            )
            s.flush()
            return _record(row)


def _record(row: HaltState) -> HaltRecord:
    return HaltRecord(row.scope, row.halted, row.reason, row.actor, row.changed_at)
