"""When a forming bar has closed, and one timer per feed that says so.

IB's keepUpToDate stream keeps its last bar forming; the feed learns that bar t closed
when bar t+1 first appears. Inside a session that is within one update (~5 s) of the
bar's end, but the session's last bar would wait for the next session's first bar, and
every daily bar for the next open. The backtest decides a bar at its close, so the feed
also closes a forming bar by the clock: at its end plus a grace period
(:class:`CloseTimer`), whichever comes first.

End of a bar (:func:`bar_end`)
------------------------------
- Intraday: start + bar size, or the close of the session holding the start when that
  is earlier (a bar cut short by the close).
- Daily: the close of the trade day's sessions in the contract's hours
  (:class:`~stratvector.gateway.contracts.TradingHours`). A day the hours list as
  ``CLOSED`` or do not list at all ends at the latest at local midnight (no session of a
  trade day ends later), which is safe but late (for a day beyond the list the feed asks
  IB for fresh hours: see below).
- Longer than a day, or no hours for a daily bar: unknown (``None``): the bar closes
  when the next one appears, as before.

Grace
-----
:data:`CLOSE_GRACE` (6 s) after an intraday bar's end: IB pushes keepUpToDate updates
about every 5 s, so by then the update holding the bar's last seconds has arrived (and
inside a session bar t+1 has usually appeared and closed bar t already).
:data:`SESSION_CLOSE_GRACE` (300 s) after a session's close, for daily bars and for an
intraday bar that ends at the close: the closing auction prints and IB finalises the
day's bar in the first minutes after the close, and waiting costs nothing, since an
order sent after the close fills at the next open either way.

Timer
-----
:class:`CloseTimer` keeps one deadline per symbol in a heap and one callback on the
clock for the earliest: arming, moving and firing cost O(log n), never a timer per
symbol or bar. :class:`Clock` is what it runs on: :class:`WallClock` (POSIX time on the
running event loop) in production, a simulated clock in tests. A callback that fires
early (a wall clock set back) re-arms itself. Hazard: deadlines are read on the host's
clock, so keep it synchronised (NTP); a clock ahead of IB's by more than the grace would
close bars before IB has finished them (each later change is then warned about).

IB lists hours about a week ahead and the trader reads them at every (re)connect; a bar
whose day lies beyond the list gets the safe local-midnight deadline at first, and
:class:`HoursRefresher` asks IB for that symbol's details again in the background, once
per such day, after which the deadline is set from the fresh hours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from stratvector.gateway.contracts import ContractBook, TradingHours

if TYPE_CHECKING:
    from ib_async import IB

log = logging.getLogger("stratvector.gateway.sessions")

#: Seconds after an intraday bar's end before it is closed by the clock.
CLOSE_GRACE = 6.0
#: Seconds after a session's close (daily bars, a session's last intraday bar).
SESSION_CLOSE_GRACE = 300.0

_S = 1_000_000_000
_DAY = 86400 * _S


class Handle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """POSIX time in seconds, and a callback at a POSIX time."""

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle: ...


class WallClock:
    """The system clock, with callbacks on the running event loop."""

    def time(self) -> float:
        return time.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - time.time()), callback)


class BarEnd(NamedTuple):
    """When a bar ends (ns), whether that is a session's close, and whether the hours
    listed the bar's day (False: ``end`` is the safe local midnight)."""

    end: int
    at_close: bool
    listed: bool


def bar_end(t: int, step: int, hours: TradingHours | None) -> BarEnd | None:
    """The end of the bar starting at ``t`` (ns) of ``step`` ns (see the module
    docstring); ``None`` when it cannot be known. Daily bars are labelled at UTC midnight
    of their trade day."""
    if step >= _DAY:
        if step > _DAY or hours is None:
            return None
        day = dt.datetime.fromtimestamp(t // _S, dt.UTC).date()
        close = hours.close_of_day(day)
        if close is not None:
            return BarEnd(close, True, True)
        return BarEnd(hours.end_of_day(day), True, hours.covers(day))
    end = t + step
    if hours is None:
        return BarEnd(end, False, False)
    session = hours.session_at(t)
    if session is not None and session[1] <= end:
        return BarEnd(session[1], True, True)
    return BarEnd(end, False, hours.covers(hours.local_day(t)))


class CloseTimer:
    """The deadline of each symbol's forming bar behind one clock callback.

    :meth:`arm` sets a symbol's deadline (replacing its previous one), :meth:`disarm`
    drops it; when a deadline passes, ``on_due(symbol, bar_time)`` is called once.
    :meth:`cancel` drops everything (unsubscribe, disconnect, stop).
    """

    def __init__(self, clock: Clock, on_due: Callable[[str, int], None]) -> None:
        self.clock = clock
        self.on_due = on_due
        self._heap: list[tuple[float, int, str, int]] = []
        self._armed: dict[str, tuple[int, float]] = {}  # symbol -> (bar time, deadline)
        self._seq = 0
        self._handle: Handle | None = None
        self._at = math.inf  # when the callback is due

    @property
    def active(self) -> bool:
        """A clock callback is scheduled."""
        return self._handle is not None

    def armed(self, symbol: str) -> int | None:
        """The bar time whose deadline is pending for ``symbol``."""
        entry = self._armed.get(symbol)
        return entry[0] if entry else None

    def deadline(self, symbol: str) -> float | None:
        entry = self._armed.get(symbol)
        return entry[1] if entry else None

    def __len__(self) -> int:
        return len(self._armed)

    def arm(self, symbol: str, t: int, deadline: float) -> None:
        self._armed[symbol] = (t, deadline)
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, symbol, t))
        self._prune()

    def disarm(self, symbol: str, t: int | None = None) -> None:
        """Drop ``symbol``'s deadline (only if it is for bar ``t``, when given)."""
        entry = self._armed.get(symbol)
        if entry is not None and (t is None or entry[0] == t):
            del self._armed[symbol]
            self._prune()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._at = math.inf
        self._heap.clear()
        self._armed.clear()

    def _live(self, entry: tuple[float, int, str, int]) -> bool:
        deadline, _, symbol, t = entry
        return self._armed.get(symbol) == (t, deadline)

    def _prune(self) -> None:
        """Drop stale heads; keep the callback at the earliest live deadline."""
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        if not self._heap:
            if self._handle is not None:
                self._handle.cancel()
            self._handle, self._at = None, math.inf
        elif self._heap[0][0] != self._at:
            self._schedule(self._heap[0][0])

    def _schedule(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = when
        self._handle = self.clock.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle, self._at = None, math.inf
        now = self.clock.time()
        due: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if self._live(entry):
                del self._armed[entry[2]]
                due.append((entry[2], entry[3]))
        self._prune()
        for symbol, t in due:
            try:
                self.on_due(symbol, t)
            except Exception:  # one symbol's failure must not stop the others' closes
                log.exception("closing the forming %s bar of %d failed", symbol, t)


class HoursRefresher:
    """Fetches a symbol's trading hours again in the background (IB lists about a week),
    once per day its list did not reach, and calls ``on_done(symbol)`` when they came.
    ``ib`` is the connection to ask (``None``: not subscribed, nothing is asked)."""

    def __init__(
        self, contracts: ContractBook, timeout: float, on_done: Callable[[str], None]
    ) -> None:
        self.contracts = contracts
        self.timeout = timeout
        self.on_done = on_done
        self.ib: IB | None = None
        self._asked: dict[str, dt.date] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def ask(self, symbol: str, day: dt.date) -> None:
        if self.ib is None or symbol in self._tasks or self._asked.get(symbol) == day:
            return
        self._asked[symbol] = day
        task = asyncio.get_running_loop().create_task(self._fetch(self.ib, symbol))
        self._tasks[symbol] = task

    def cancel(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self.ib = None

    async def _fetch(self, ib: IB, symbol: str) -> None:
        try:
            ok = await self.contracts.refresh_hours(ib, symbol, self.timeout)
        except Exception as exc:  # the late, safe deadline stays
            log.warning("%s: fetching fresh trading hours failed: %s", symbol, exc)
            return
        finally:
            self._tasks.pop(symbol, None)
        if ok:
            self.on_done(symbol)
