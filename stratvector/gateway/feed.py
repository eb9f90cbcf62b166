"""Live bars per symbol: warmup from history, keepUpToDate subscriptions, gap backfill.

For one bar size, :class:`BarFeed` keeps a :class:`~stratvector.gateway.window.BarWindow`
per symbol and reports every newly *closed* bar to ``on_bar``.

- Warmup and backfill go through the pacing-aware, Parquet-cached
  :class:`~stratvector.gateway.history.HistoryScheduler` (closed bars only).
- Live bars come from ``reqHistoricalData(keepUpToDate=True)``, one subscription per
  symbol. ``updates="forming"`` is IB's behaviour: the last bar of the stream is still
  forming, so bar t is reported closed when bar t+1 first appears. ``updates="closed"``
  is ibsim's: every update is a bar that has just closed, reported at once.
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
from stratvector.gateway.pacing import PacingGate, RequestKey
from stratvector.gateway.window import BarWindow

log = logging.getLogger("stratvector.gateway.feed")

_S = 1_000_000_000
_FATAL_REASONS = ("unknown_contract", "invalid", "rejected")


@dataclass(frozen=True, slots=True)
class ClosedBar:
    """A bar of ``symbol`` starting at ``time`` (ns, UTC) has closed; ``received`` is the
    ``time.perf_counter()`` when the gateway learnt it (the latency clock's start)."""

    symbol: str
    bar_size: str
    time: int
    received: float


class BarFeed:
    """Closed bars of a set of symbols at one bar size. Constructor does no I/O."""

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

    async def subscribe(self, ib: IB, gate: PacingGate | None = None) -> None:
        """(Re)subscribe every symbol; bars in the initial answers are merged as catch-up.

        A subscription is a historical request to IB and counts against its pacing
        limits: with ``gate`` (the history scheduler's), each waits for and is recorded
        in the same gate as the warmup requests, so they never cause error 162 together.
        """
        self.unsubscribe(ib)
        await asyncio.gather(*(self._subscribe_one(ib, s, gate) for s in self.symbols))

    @property
    def subscribed(self) -> bool:
        return len(self._subs) == len(self.symbols)

    async def _subscribe_one(self, ib: IB, symbol: str, gate: PacingGate | None = None) -> None:
        contract = self.contracts.get(symbol).contract
        delay = self.retry_delay
        for attempt in range(self.subscribe_retries + 1):
            # the first round depends on the clock: a restarted process does not repeat the
            # request its predecessor made seconds ago (IB refuses identical ones for 15 s)
            self._rounds[symbol] = self._rounds.get(symbol, int(time.time() // 2)) + 1
            duration = self._duration(self._rounds[symbol])
            if gate is not None:
                key = RequestKey(
                    symbol.upper(), self.what_to_show, self.ib_size, duration, "", self.use_rth
                )
                while (wait := gate.wait_time(key, time.monotonic())) > 0:
                    await asyncio.sleep(wait)
                gate.record(key, time.monotonic())
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
            self._append(window, b)
        handler = self._make_handler(symbol)
        bars.updateEvent += handler
        self._subs[symbol] = bars
        self._handlers[symbol] = handler

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

    def _make_handler(self, symbol: str) -> Callable[[BarDataList, bool], None]:
        window = self.windows[symbol]

        def on_update(bars: BarDataList, has_new_bar: bool) -> None:
            received = time.perf_counter()
            if not has_new_bar:
                return  # the forming bar changed (IB) or a closed bar was revised
            closed = bars[-1] if self.updates == "closed" else (bars[-2] if len(bars) > 1 else None)
            if len(bars) > 16:
                del bars[:-4]
            if closed is None or not self._append(window, closed):
                return
            if self.live:
                self.on_bar(ClosedBar(symbol, self.bar_size, int(window.last_time or 0), received))

        return on_update

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
