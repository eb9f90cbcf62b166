"""Live bars per symbol: warmup from history, keepUpToDate subscriptions, gap backfill.

For one bar size, :class:`BarFeed` keeps a :class:`~stratvector.gateway.window.BarWindow`
per symbol and reports every newly *closed* bar to ``on_bar``.

- Warmup and backfill go through the pacing-aware, Parquet-cached
  :class:`~stratvector.gateway.history.HistoryScheduler` (closed bars only).
- Live bars come from ``reqHistoricalData(keepUpToDate=True)``, one subscription per
  symbol. ``updates="closed"`` is ibsim's default: every update is a bar that has just
  closed, reported at once. ``updates="forming"`` is IB's behaviour (and ibsim's with
  ``forming_bars``): the last bar of the stream is still forming. Bar t is reported
  closed when bar t+1 first appears *or* when its end plus a grace period has passed
  on the clock, whichever comes first, and exactly once (:mod:`.sessions`: the end of
  a daily bar is its session's close, from the contract's trading hours; one timer per
  feed, cancelled on unsubscribe and disconnect). So the session's last bar and every
  daily bar are decided at their close, as the backtest decides them, not at the next
  session's open. Without trading hours a daily bar falls back to the next bar (logged
  once per symbol).
- A bar closed by the clock is decided with its latest values. If IB then revises it
  (a late update, or bar t+1 arriving with other values for bar t), a warning names the
  symbol, the bar and the change, and the decided values are kept: the decision is made.
- After a reconnect (ib_async drops every subscription), :meth:`resubscribe` cancels the
  old streams, backfills the gap since the last held bar from history, and subscribes
  again. Bars that arrive this way are appended silently (``catch-up``); the trader
  decides once on the newest one, since orders for older bars can no longer fill at the
  price the backtest would have used.
- A subscription that IB refuses (e.g. a pacing violation, error 162) comes back empty;
  it is retried with backoff, and failing that raises a retryable :class:`WarmupError`.

Hazard: ib_async appends every update to the subscription's bar list; the feed trims it
to the last few bars so a long-running daemon does not grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from ib_async import IB, BarDataList

from stratvector.data.resample import parse_bar_size
from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.errors import WarmupError
from stratvector.gateway.history import MAX_DURATION, HistoryError, HistoryScheduler, ib_bar_size
from stratvector.gateway.sessions import (
    CLOSE_GRACE,
    SESSION_CLOSE_GRACE,
    Clock,
    CloseTimer,
    HoursRefresher,
    WallClock,
    bar_end,
)
from stratvector.gateway.window import BarWindow

log = logging.getLogger("stratvector.gateway.feed")

_S = 1_000_000_000
_FATAL_REASONS = ("unknown_contract", "invalid", "rejected")
_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """A bar of ``symbol`` starting at ``time`` (ns, UTC) has closed; ``received`` is the
    ``time.perf_counter()`` when the gateway learnt it (the latency clock's start)."""

    symbol: str
    bar_size: str
    time: int
    received: float


class BarFeed:
    """Closed bars of a set of symbols at one bar size. Constructor does no I/O.

    ``close_grace`` / ``session_close_grace`` are the seconds after an intraday bar's
    end / a session's close before a forming bar is closed by ``clock`` (default the
    system clock; tests give a simulated one).
    """

    def __init__(
        self,
        contracts: ContractBook,
        symbols: list[str],
        bar_size: str,
        on_bar: Callable[[ClosedBar], None],
        *,
        capacity: int,
        updates: Literal["forming", "closed"] = "forming",
        what_to_show: str = "TRADES",
        use_rth: bool = True,
        request_timeout: float = 60.0,
        subscribe_retries: int = 5,
        retry_delay: float = 1.0,
        close_grace: float = CLOSE_GRACE,
        session_close_grace: float = SESSION_CLOSE_GRACE,
        clock: Clock | None = None,
    ) -> None:
        self.contracts = contracts
        self.symbols = list(dict.fromkeys(symbols))
        self.bar_size = bar_size
        self.ib_size = ib_bar_size(bar_size)
        self.step = int(parse_bar_size(bar_size).total_seconds()) * _S
        self.on_bar = on_bar
        self.updates = updates
        self.what_to_show = what_to_show
        self.use_rth = use_rth
        self.request_timeout = request_timeout
        self.subscribe_retries = subscribe_retries
        self.retry_delay = retry_delay
        self.windows = {s: BarWindow(capacity) for s in self.symbols}
        self._subs: dict[str, BarDataList] = {}
        self._handlers: dict[str, Callable[..., None]] = {}
        self.live = False  # False: updates are buffered as catch-up bars (not reported)
        self._rounds: dict[str, int] = {}
        self.refusals = 0  # subscriptions IB refused (pacing) and retried
        self.close_grace = close_grace
        self.session_close_grace = session_close_grace
        self.timer = CloseTimer(clock or WallClock(), self._on_due)
        self.timer_closes = 0  # bars closed by the clock rather than by the next bar
        self.revisions = 0  # revisions of decided bars warned about
        self.hours = HoursRefresher(contracts, request_timeout, self._hours_refreshed)
        self._decided: dict[str, tuple[int, tuple[float, ...]]] = {}  # closed by the clock
        self._revised: dict[str, tuple[float, ...]] = {}  # the last revision warned about
        self._no_timer: set[str] = set()  # symbols logged as closing by the next bar only

    @property
    def clock(self) -> Clock:
        """The clock of the close timer (settable before subscribing)."""
        return self.timer.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.timer.cancel()
        self.timer.clock = clock

    # ------------------------------------------------------------------ history

    def needs_backfill(self, now_ns: int) -> bool:
        """True if a symbol's last held bar is older than a subscription's initial answer
        surely reaches back (then history fills the gap; otherwise subscribing does).
        Margin: two days and one bar (a daily request of N days may hold N - 2 bars)."""
        reach = min(_seconds(self._duration(k)) for k in range(10)) * _S
        reach -= 2 * 86400 * _S + self.step
        for w in self.windows.values():
            last = w.last_time
            if last is None or now_ns - last > max(reach, 0):
                return True
        return False

    def latest(self) -> int | None:
        """The newest bar time held for any symbol."""
        times = [w.last_time for w in self.windows.values() if w.last_time is not None]
        return max(times) if times else None

    async def load_history(
        self, history: HistoryScheduler, start: dt.datetime, concurrency: int = 8
    ) -> int:
        """Warm up or backfill every symbol from ``start`` (or its last held bar) to now.

        Returns how many bars were added. Raises :class:`WarmupError` (retryable for
        pacing, timeouts and a lost connection).
        """
        sem = asyncio.Semaphore(concurrency)

        async def one(symbol: str) -> int:
            window = self.windows[symbol]
            since = start
            if window.last_time is not None:
                since = pd.Timestamp(window.last_time, tz="UTC").to_pydatetime()
            async with sem:
                try:
                    bars = await history.bars(
                        self.contracts.get(symbol).contract,
                        self.bar_size,
                        since,
                        None,
                        what_to_show=self.what_to_show,
                        use_rth=self.use_rth,
                    )
                except HistoryError as exc:
                    raise WarmupError(str(exc), retryable=exc.reason not in _FATAL_REASONS) from exc
            return window.extend(bars)

        counts = await asyncio.gather(*(one(s) for s in self.symbols))
        return int(sum(counts))

    # ------------------------------------------------------------------ live stream

    async def subscribe(self, ib: IB, pacing: HistoryScheduler | None = None) -> None:
        """(Re)subscribe every symbol; bars in the initial answers are merged as catch-up.

        A subscription is a historical request to IB and counts against its pacing
        limits: with ``pacing`` (the trader's history scheduler), each is admitted by it
        (:meth:`HistoryScheduler.admit`) like the warmup's requests, so together they
        never cause error 162.
        """
        self.unsubscribe(ib)
        self.hours.ib = ib
        await asyncio.gather(*(self._subscribe_one(ib, s, pacing) for s in self.symbols))

    @property
    def subscribed(self) -> bool:
        return len(self._subs) == len(self.symbols)

    async def _subscribe_one(
        self, ib: IB, symbol: str, pacing: HistoryScheduler | None = None
    ) -> None:
        contract = self.contracts.get(symbol).contract
        delay = self.retry_delay
        for attempt in range(self.subscribe_retries + 1):
            # the first round depends on the clock: a restarted process does not repeat the
            # request its predecessor made seconds ago (IB refuses identical ones for 15 s)
            self._rounds[symbol] = self._rounds.get(symbol, int(time.time() // 2)) + 1
            duration = self._duration(self._rounds[symbol])
            if pacing is not None:
                await pacing.admit(
                    contract,
                    what_to_show=self.what_to_show,
                    ib_size=self.ib_size,
                    duration=duration,
                    use_rth=self.use_rth,
                )
            bars = await ib.reqHistoricalDataAsync(
                contract,
                endDateTime="",
                durationStr=duration,
                barSizeSetting=self.ib_size,
                whatToShow=self.what_to_show,
                useRTH=self.use_rth,
                formatDate=2,
                keepUpToDate=True,
                timeout=self.request_timeout,
            )
            if bars:
                break
            with contextlib.suppress(Exception):
                ib.cancelHistoricalData(bars)
            self.refusals += 1
            if not ib.isConnected():
                raise ConnectionError(f"disconnected while subscribing to {symbol} bars")
            if attempt == self.subscribe_retries:
                raise WarmupError(
                    f"IB refused or returned no {self.ib_size} bars for {symbol} "
                    f"{self.subscribe_retries + 1} times (pacing?); will retry after reconnect"
                )
            log.warning("bar subscription for %s came back empty; retry in %.1f s", symbol, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        window = self.windows[symbol]
        initial = list(bars) if self.updates == "closed" else list(bars)[:-1]
        for b in initial:
            if not self._append(window, b):
                self._check_revision(symbol, b)  # held: changed since it was decided?
        handler = self._make_handler(symbol)
        bars.updateEvent += handler
        self._subs[symbol] = bars
        self._handlers[symbol] = handler
        if self.updates == "forming":
            self._forming(symbol, bars[-1])  # closed already if its end + grace is past

    def _duration(self, round_: int = 0) -> str:
        """The initial history of a subscription: ten bars and at least five days back
        (weekends and holidays must not leave it empty: ib_async cannot update an empty
        list), within IB's longest duration for the bar size. It differs from one
        subscription of a symbol to the next (ten variants): IB refuses an identical
        request within 15 s, and every reconnect renews every subscription."""
        step_s = self.step // _S
        longest = MAX_DURATION.get(step_s, 365 * 86400)
        secs = min(longest, max(10 * step_s, 5 * 86400))
        k = round_ % 10
        if secs >= 86400:
            days = int(np.ceil(secs / 86400))
            days = days + k if (days + k) * 86400 <= longest else max(days - k, 1)
            return f"{days} D"
        extra = k * 60
        secs = secs + extra if secs + extra <= longest else max(secs - extra, step_s)
        return f"{int(secs)} S"

    def forget(self) -> None:
        """Drop the subscriptions of a connection that is gone (no cancel is sent: after a
        reconnect their request ids may belong to new requests)."""
        for symbol, bars in list(self._subs.items()):
            with contextlib.suppress(Exception):
                bars.updateEvent -= self._handlers[symbol]
        self._subs.clear()
        self._handlers.clear()
        self._stop_timer()

    def unsubscribe(self, ib: IB) -> None:
        """Cancel the subscriptions of the current connection."""
        for symbol, bars in list(self._subs.items()):
            with contextlib.suppress(Exception):
                bars.updateEvent -= self._handlers[symbol]
            if ib.isConnected():
                with contextlib.suppress(Exception):
                    ib.cancelHistoricalData(bars)
        self._subs.clear()
        self._handlers.clear()
        self._stop_timer()

    def _stop_timer(self) -> None:
        """Cancel the close timer and any hours refresh (no subscription, no closes)."""
        self.timer.cancel()
        self.hours.cancel()

    def _make_handler(self, symbol: str) -> Callable[[BarDataList, bool], None]:
        def on_update(bars: BarDataList, has_new_bar: bool) -> None:
            received = time.perf_counter()
            if self.updates == "closed":
                if has_new_bar:
                    self._close(symbol, bars[-1], received)
            elif has_new_bar:
                if len(bars) > 1:
                    self._close(symbol, bars[-2], received)
                self._forming(symbol, bars[-1])
            else:  # the forming bar changed, or IB revised the bar the clock closed
                self._check_revision(symbol, bars[-1])
            if len(bars) > 16:
                del bars[:-4]

        return on_update

    def _close(self, symbol: str, bar: Any, received: float) -> None:
        """``bar`` is closed (the next one appeared): report it unless it is held already
        (closed by the clock: then only a revision is checked)."""
        t = _bar_ns(bar.date)
        self.timer.disarm(symbol, t)
        if not self._append(self.windows[symbol], bar):
            self._check_revision(symbol, bar)
            return
        if self.live:
            self.on_bar(ClosedBar(symbol, self.bar_size, t, received))

    # ------------------------------------------------------------------ close timer

    def _forming(self, symbol: str, bar: Any) -> None:
        """``bar`` is the forming bar of ``symbol``'s stream: set its deadline, or close
        it now if that has passed (e.g. the last bar of a subscription made after the
        close)."""
        t = _bar_ns(bar.date)
        last = self.windows[symbol].last_time
        if last is not None and t <= last:
            self._check_revision(symbol, bar)  # resubscribed: held already
            return
        hours = self.contracts.get(symbol).hours(self.use_rth)
        end = bar_end(t, self.step, hours)
        if end is None:
            if symbol not in self._no_timer:
                self._no_timer.add(symbol)
                why = (
                    f"{self.bar_size} bars are longer than a day"
                    if self.step > 86400 * _S
                    else "IB gave no readable trading hours (liquidHours/tradingHours "
                    "with timeZoneId), so a daily bar's close is unknown"
                )
                log.warning("%s: %s; each bar is decided when the next one appears", symbol, why)
            return
        if hours is not None and not end.listed:
            day = hours.local_day(t) if self.step < 86400 * _S else _utc_day(t)
            if day > hours.last_day:
                self.hours.ask(symbol, day)
        grace = self.session_close_grace if end.at_close else self.close_grace
        deadline = end.end / _S + grace
        if deadline <= self.timer.clock.time():
            self._close_forming(symbol, bar)
        else:
            self.timer.arm(symbol, t, deadline)

    def _on_due(self, symbol: str, t: int) -> None:
        bars = self._subs.get(symbol)
        if bars and _bar_ns(bars[-1].date) == t:
            self._close_forming(symbol, bars[-1])

    def _close_forming(self, symbol: str, bar: Any) -> None:
        """Close the forming ``bar`` by the clock with its latest values, once."""
        received = time.perf_counter()
        t = _bar_ns(bar.date)
        self.timer.disarm(symbol, t)
        if not self._append(self.windows[symbol], bar):
            return
        self._decided[symbol] = (t, _values(bar))
        self._revised.pop(symbol, None)
        self.timer_closes += 1
        if self.live:
            self.on_bar(ClosedBar(symbol, self.bar_size, t, received))

    def _check_revision(self, symbol: str, bar: Any) -> None:
        """Warn once per change when IB revises a bar the clock closed; keep the
        decided values (the decision is made)."""
        decided = self._decided.get(symbol)
        if decided is None or decided[0] != (t := _bar_ns(bar.date)):
            return
        now = _values(bar)
        if now == decided[1] or now == self._revised.get(symbol):
            return
        self._revised[symbol] = now
        self.revisions += 1
        change = ", ".join(
            f"{name} {a:g} -> {b:g}"
            for name, a, b in zip(_FIELDS, decided[1], now, strict=True)
            if a != b
        )
        log.warning(
            "%s %s bar %s revised by IB after it was decided: %s; keeping the decided values",
            symbol,
            self.bar_size,
            pd.Timestamp(t, tz="UTC").isoformat(),
            change,
        )

    def _hours_refreshed(self, symbol: str) -> None:
        """Fresh hours came: set the forming bar's deadline again from them."""
        bars = self._subs.get(symbol)
        if bars and self.timer.armed(symbol) == _bar_ns(bars[-1].date):
            self._forming(symbol, bars[-1])

    @staticmethod
    def _append(window: BarWindow, bar: Any) -> bool:
        return window.append(
            _bar_ns(bar.date),
            float(bar.open),
            float(bar.high),
            float(bar.low),
            float(bar.close),
            max(float(bar.volume), 0.0),
        )


def _values(bar: Any) -> tuple[float, ...]:
    return tuple(float(getattr(bar, name)) for name in _FIELDS)


def _utc_day(t: int) -> dt.date:
    return dt.datetime.fromtimestamp(t // _S, dt.UTC).date()


def _seconds(duration: str) -> int:
    n, unit = duration.split()
    return int(n) * {"S": 1, "D": 86400, "W": 7 * 86400, "Y": 365 * 86400}[unit]


def _bar_ns(value: object) -> int:
    """ib_async's bar date as UTC ns: a ``date`` is UTC midnight (as history labels it)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(pd.Timestamp(value).as_unit("ns").value)
    if isinstance(value, dt.date):
        return int(pd.Timestamp(value.year, value.month, value.day, tz="UTC").value)
    raise ValueError(f"unexpected bar date {value!r}")
