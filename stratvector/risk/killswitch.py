"""The kill switch: a halt persisted in the journal, tripped by risk breaches.

The state lives in the journal (:mod:`stratvector.store.control`), not in this object:
a trip survives restarts, ``stratvector halt`` from another process stops the daemon,
and ``stratvector resume`` clears it. :class:`KillSwitch` only adds the risk side:
who trips (``actor="risk"``), the ``kill_switch`` event, and a ``limit_breach`` event
carrying the breaches that caused it.

Contract with the gateway (the one place that acts on a trip):

1. Before each order: if :meth:`KillSwitch.is_halted` is true, do not send it. Else
   ``decision = checker.check(order, account)``; if not ``decision.allowed``, do not
   send it, and if ``decision.trips_kill`` call :meth:`KillSwitch.trip` with
   ``decision.breaches``. If allowed: journal the intent, send, then
   ``checker.record_sent(order)``.
2. On every bar and fill: ``breaches = checker.check_account(account, now)``; if any
   has ``trips_kill`` and the switch is not already halted, :meth:`trip` with them.
3. When the switch is (or becomes) halted -- by a trip here or a halt from the CLI --
   the gateway cancels every open order of the halted scope and, if
   ``RiskLimits.flatten_on_kill``, sends closing orders for its positions. Closing
   orders are risk-reducing, so :meth:`RiskChecker.check` always allows them; the
   gateway sends them past its own halt gate (they are the purpose of the halt).
4. A resume does not clear the cause. If equity is still past the daily loss or
   drawdown limit, the next ``check_account`` trips again: raise the limit, wait for
   the next day's ``day_start_equity``, or reset the peak before resuming.

Failure: every call may raise :class:`~stratvector.store.JournalError` (e.g.
``JournalUnavailableError`` when the database stays locked). Treat a raising call as
halted (fail closed). A trip whose halt could not be written is latched in this
object: :meth:`is_halted` returns true and retries the write on each call until it
reaches the journal; from then on the journal alone decides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stratvector.risk.limits import Breach
from stratvector.store.control import GLOBAL
from stratvector.store.errors import JournalError
from stratvector.store.events import KILL_SWITCH, LIMIT_BREACH

if TYPE_CHECKING:
    from stratvector.store import Journal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Trip:
    reason: str
    breaches: tuple[Breach, ...]
    actor: str
    at: datetime


class KillSwitch:
    """The halt flag of one scope: everything (default) or one ``strategy``. No I/O here.

    ``is_halted`` reads the journal on every call (one small query), so a halt or resume
    by another process takes effect at the next check. A strategy-scoped switch is also
    halted by a global halt; tripping it halts only that strategy.
    """

    def __init__(self, journal: Journal, *, strategy: str | None = None) -> None:
        if strategy is not None and (not isinstance(strategy, str) or strategy in ("", GLOBAL)):
            raise ValueError(f"strategy must be a strategy name, or None for all, not {strategy!r}")
        self._journal = journal
        self._strategy = strategy
        self._pending_halt: _Trip | None = None  # tripped, halt not yet written
        self._pending_log: _Trip | None = None  # tripped, breach event not yet written

    @property
    def scope(self) -> str:
        """The journal halt scope: the strategy name, or ``"*"`` for everything."""
        return self._strategy or GLOBAL

    @property
    def strategy(self) -> str | None:
        return self._strategy

    def trip(
        self,
        reason: str,
        breaches: Sequence[Breach] = (),
        actor: str = "risk",
        *,
        at: datetime | None = None,
    ) -> None:
        """Halt :attr:`scope` in the journal and log why.

        Writes the halt (with a ``kill_switch`` event) unless the scope is already
        halted -- then the first halt's reason, actor and time are kept -- and, when
        ``breaches`` are given, a ``limit_breach`` event (severity ``error``) whose detail
        lists them. ``at`` (tz-aware) stamps both; default now. Call it once per trip
        (check :meth:`is_halted` first) to avoid repeated events.

        Raises :class:`~stratvector.store.JournalError` if the journal cannot be written;
        the trip stays latched (see the module docstring) and the caller must still
        cancel and flatten.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError("a kill switch trip needs a reason")
        if at is not None and (at.tzinfo is None or at.utcoffset() is None):
            raise ValueError(f"at must be tz-aware (UTC), got naive {at.isoformat()}")
        when = at.astimezone(UTC) if at is not None else datetime.now(UTC)
        trip = _Trip(reason.strip(), tuple(breaches), actor, when)
        self._pending_halt = trip
        self._pending_log = trip if trip.breaches else None
        log.warning("kill switch %s tripped by %s: %s", self.scope, actor, trip.reason)
        self._flush()

    def is_halted(self) -> bool:
        """True if this scope (or everything) is halted in the journal, or a trip of this
        object has not reached the journal yet."""
        if self._pending_halt or self._pending_log:
            try:
                self._flush()
            except JournalError as exc:
                log.warning("kill switch %s: journal write still failing: %s", self.scope, exc)
                if self._pending_halt is not None:
                    return True
        return self._journal.control.is_halted(self._strategy)

    def reason(self) -> str | None:
        """Why this scope is halted (a global halt first), or ``None`` if it is not."""
        if self._pending_halt is not None:
            return self._pending_halt.reason
        control = self._journal.control
        for scope in dict.fromkeys((GLOBAL, self.scope)):
            state = control.state(scope)
            if state.halted:
                return state.reason
        return None

    def _flush(self) -> None:
        trip = self._pending_halt
        if trip is not None:
            control = self._journal.control
            if not control.state(self.scope).halted:
                control.halt(
                    trip.reason,
                    actor=trip.actor,
                    scope=self.scope,
                    at=trip.at,
                    event_kind=KILL_SWITCH,
                )
            self._pending_halt = None
        trip = self._pending_log
        if trip is not None:
            self._journal.events.record_event(
                LIMIT_BREACH,
                {
                    "scope": self.scope,
                    "reason": trip.reason,
                    "actor": trip.actor,
                    "breaches": [asdict(b) for b in trip.breaches],
                },
                message=f"kill switch {self.scope}: " + "; ".join(b.message for b in trip.breaches),
                severity="error",
                strategy=self._strategy,
                at=trip.at,
            )
            self._pending_log = None
