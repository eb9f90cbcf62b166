"""The live runner: ``Strategy.target`` on closed bars, then the backtest's sizing.

For each strategy, :class:`StrategyRunner` collects the closed bars of its symbols,
and when every symbol has reported bar time t (or ``batch_timeout`` passed, for symbols
without a bar at t) it decides bar t in one step:

1. for each symbol, ``strategy.target(bars)`` on the last ``history_bars`` closed bars
   ending at t (the same method the backtester calls on the whole history) and the last
   value taken; fewer than ``strategy.warmup`` bars means no view (NaN);
2. the strategy's fills up to t are settled into its ledger, and
   :meth:`~stratvector.gateway.sizing.StrategyLedger.decide` turns target changes into
   signed quantities with the kernel's own sizing function;
3. the quantities become :class:`OrderPlan` values handed to ``sink`` (the executor).

No other code decides trades. Decisions of one strategy are serialized and strictly
increasing in bar time; ``catch_up`` decides once on the newest bar after a reconnect or
restart (older missed bars are not traded late).

Parity hazard: a strategy whose target depends on its whole history (a latch, an
exponential average) gives the backtest's values only when ``history_bars`` covers the
history the backtest saw; ``warmup`` bars are enough for finite-memory strategies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from stratvector.backtest.costs import SqrtImpactSlippage, slipped_price
from stratvector.backtest.settings import BacktestSettings
from stratvector.errors import StrategyError
from stratvector.gateway.exits import ExitSpec
from stratvector.gateway.feed import BarFeed, ClosedBar
from stratvector.gateway.latency import LatencyWindow
from stratvector.gateway.sizing import Decision, StrategyLedger
from stratvector.strategy.base import Strategy

log = logging.getLogger("stratvector.gateway.runner")

SETTLE_ALL = 2**62


@dataclass(frozen=True)
class OrderPlan:
    """One order a strategy decided at the close of ``bar_time``.

    ``quantity`` is signed shares; ``ref_price`` the close it was sized on; ``leg`` is
    ``None`` for a strategy order, or ``"flatten"`` for closing orders that pass the halt
    gate; ``reducing`` marks orders that only reduce risk. For latency accounting,
    ``received`` is the ``perf_counter`` when this symbol's deciding bar arrived and
    ``complete`` when the decision's last input arrived (every symbol's bar at this time:
    the earliest moment the shared-account sizing can run).
    """

    strategy: str
    symbol: str
    bar_time: datetime
    quantity: float
    ref_price: float
    target: float | None
    leg: str | None = None
    reducing: bool = False
    received: float = field(default_factory=time.perf_counter)
    exits: ExitSpec | None = None
    complete: float | None = None
    catch_up: bool = False  # decided by catch_up() after a (re)start: every entry at once

    @property
    def side(self) -> str:
        return "BUY" if self.quantity > 0 else "SELL"


class _Inputs:
    """A bar time's decision inputs, filled in symbol by symbol as its bars arrive (the
    decision then reads arrays, not one record per symbol): each symbol's mark, high,
    low and close (``BarWindow.view_at``), the strategy's target, and when the bar was
    received. A symbol whose bar has not arrived is read at the decision."""

    __slots__ = ("arrived", "count", "received", "rows", "targeted", "targets")

    def __init__(self, n: int) -> None:
        self.rows = np.full((4, n), math.nan)  # mark, high, low, close
        self.targets = np.full(n, math.nan)
        self.targeted = np.zeros(n, dtype=bool)  # the target was computed on arrival
        self.arrived = np.zeros(n, dtype=bool)
        self.received: list[float | None] = [None] * n
        self.count = 0  # symbols arrived

    def add(self, j: int, row: tuple[float, ...], target: float | None, received: float) -> None:
        if not self.arrived[j]:
            self.arrived[j] = True
            self.count += 1
        self.rows[:, j] = row
        self.targeted[j] = target is not None
        self.targets[j] = math.nan if target is None else target
        self.received[j] = received


# Called synchronously with a decision's orders (so checks and the journal hand-off can
# start in the same event-loop callback that completed the bar time); returns what is
# left to await (the intents' commit, the sends).
Sink = Callable[["StrategyRunner", Decision, list[OrderPlan]], Awaitable[None]]


class StrategyRunner:
    """One strategy over its symbols at one bar size. Constructor does no I/O."""

    def __init__(
        self,
        strategy_id: str,
        strategy: Strategy,
        settings: BacktestSettings,
        symbols: list[str],
        feed: BarFeed,
        sink: Sink,
        *,
        batch_timeout: float = 2.0,
        may_decide: Callable[[str], bool] = lambda sid: True,
        working: Callable[[str, datetime], set[str]] = lambda sid, t: set(),
        hold: Callable[[bool], None] = lambda on: None,
    ) -> None:
        self.id = strategy_id
        self.strategy = strategy
        self.settings = settings
        self.symbols = list(symbols)
        self.feed = feed
        self.sink = sink
        self.batch_timeout = batch_timeout
        self.may_decide = may_decide
        self.working = working
        self.hold = hold
        # bar time -> what its decision reads, taken as its bars arrive
        self._inputs: dict[int, _Inputs] = {}
        self.ledger = StrategyLedger(self.symbols, settings)
        self.warmup = max(int(strategy.warmup), 1)
        self.last_decided: int | None = None
        self.decisions = 0
        self.target_seconds = 0.0  # time spent in Strategy.target (for benchmarks)
        # seconds: first bar received -> decision starts ("wait"), last bar received ->
        # decision starts ("start": that bar's own target and bookkeeping), one symbol's
        # target ("targets"), reading every symbol's bar at the decided time ("gather"),
        # sizing
        self.timing: dict[str, LatencyWindow] = {
            k: LatencyWindow() for k in ("wait", "start", "targets", "gather", "sizing")
        }
        self._reported: dict[str, int] = {}
        self._received: dict[int, float] = {}  # bar time -> first arrival
        self._complete: dict[int, float] = {}  # bar time -> when its last input arrived
        self._pending: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        # bar times to decide, in order: (time, first arrival, catch-up, holds the journal)
        self._queue: deque[tuple[int, float, bool, bool]] = deque()
        self._busy = False  # a decision's orders are still being sent
        self._tasks: set[asyncio.Task[None]] = set()
        self.idle = asyncio.Event()
        self.idle.set()
        self._sqrt = isinstance(settings.slippage, SqrtImpactSlippage)

    # ------------------------------------------------------------------ bar events

    def on_bar(self, bar: ClosedBar) -> None:
        """A closed bar of one of this strategy's symbols (from the feed)."""
        if bar.symbol not in self.ledger.index:
            return
        self._reported[bar.symbol] = max(self._reported.get(bar.symbol, 0), bar.time)
        if self.last_decided is not None and bar.time <= self.last_decided:
            return
        self._received.setdefault(bar.time, bar.received)
        if bar.time not in self._pending:
            # from the first bar of a new time until it is decided, the journal's main
            # lane waits: the bars still arriving and the intents then written do not
            # queue for the GIL or the database behind the last bar's fills and statuses
            self._pending.add(bar.time)
            self.hold(True)
        # this symbol's part of the decision now, while the other bars are on the way:
        # its bar as the decision reads it, and the strategy's view of it
        target = None
        if self.may_decide(self.id):
            started = time.perf_counter()
            target = self.target_at(bar.symbol, bar.time)
            self.timing["targets"].add(time.perf_counter() - started)
        inputs = self._inputs.get(bar.time)
        if inputs is None:
            inputs = self._inputs[bar.time] = _Inputs(len(self.symbols))
        row = self.feed.windows[bar.symbol].view_at(bar.time)
        inputs.add(self.ledger.index[bar.symbol], row, target, bar.received)
        self._check(arrived=bar.received)

    def _check(self, force: bool = False, arrived: float | None = None) -> None:
        """Queue the pending bar times every symbol has reported (``force``: the oldest
        one anyway). A bar time completed by a bar is complete from when that bar was
        received (``arrived``): the latency the trader reports then includes the last
        symbol's own strategy call, not only what follows it."""
        while self._pending:
            t = min(self._pending)
            inputs = self._inputs.get(t)
            # every symbol's bar at t arrived (the usual last arrival: no scan), or every
            # symbol reported t or later (a symbol without a bar at t)
            complete = (inputs is not None and inputs.count == len(self.symbols)) or all(
                self._reported.get(s, -1) >= t for s in self.symbols
            )
            if not complete and not force:
                if self._timer is None:
                    loop = asyncio.get_running_loop()
                    self._timer = loop.call_later(self.batch_timeout, self._on_timeout)
                return
            self._pending.discard(t)
            self._complete[t] = (
                arrived if arrived is not None and not force else time.perf_counter()
            )
            self._enqueue(t, self._received.pop(t, time.perf_counter()), held=True)
            force = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        missing = [
            s
            for s in self.symbols
            if self._pending and self._reported.get(s, -1) < min(self._pending)
        ]
        if missing:
            log.info(
                "%s: no bar from %s in %.1f s; deciding without",
                self.id,
                missing,
                self.batch_timeout,
            )
        self._check(force=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        self.idle.clear()
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not self._tasks:
                self.idle.set()
            if not t.cancelled() and t.exception() is not None:
                log.error("%s: decision failed", self.id, exc_info=t.exception())

        task.add_done_callback(done)

    @property
    def deciding(self) -> bool:
        """A bar time has started arriving and is not decided and sent yet."""
        return bool(self._pending or self._queue or self._busy)

    def _enqueue(
        self, t: int, received: float, *, catch_up: bool = False, held: bool = False
    ) -> None:
        self._queue.append((t, received, catch_up, held))
        self._next()

    def _next(self) -> None:
        """Decide the queued bar times in order, one at a time.

        A decision is made synchronously, in the event-loop callback that completed its
        bar time (a spawned task would first wait for every other ready callback); what
        its sink returns (the intents' commit and the sends) is awaited in a task, and
        the next bar time is decided when it is done."""
        while self._queue and not self._busy:
            t, received, catch_up, held = self._queue.popleft()
            try:
                pending = self._decide(t, received, catch_up)
            except Exception:
                log.exception("%s: decision failed", self.id)
                pending = None
            if pending is None:
                if held:
                    self.hold(False)
                continue
            self._busy = True
            self._spawn(self._finish(pending, held))

    async def _finish(self, pending: Awaitable[None], held: bool) -> None:
        try:
            await pending
        finally:
            if held:
                self.hold(False)
            self._busy = False
            self._next()

    def catch_up(self) -> None:
        """Decide on the newest held bar if it was not decided yet (after a sync)."""
        self._drop_pending()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        latest = max(
            (
                w.last_time
                for s in self.symbols
                if (w := self.feed.windows[s]).last_time is not None
            ),
            default=None,
        )
        for s in self.symbols:
            w = self.feed.windows[s]
            if w.last_time is not None:
                self._reported[s] = max(self._reported.get(s, 0), w.last_time)
        if latest is None or (self.last_decided is not None and latest <= self.last_decided):
            return
        self._enqueue(latest, time.perf_counter(), catch_up=True)

    def _drop_pending(self) -> None:
        """Forget the bar times waiting for their other symbols or their turn (releasing
        their holds)."""
        for _ in self._pending:
            self.hold(False)
        self._pending.clear()
        for *_, held in self._queue:
            if held:
                self.hold(False)
        self._queue.clear()

    def cancel(self) -> None:
        self._drop_pending()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for t in list(self._tasks):
            t.cancel()

    # ------------------------------------------------------------------ the decision

    def prime(self) -> None:
        """Run the strategy once on a warm window, the result discarded, so the kernels
        it uses are loaded during the trader's start-up (before its memory release) and
        not at the first bar. ``target`` is a pure function of its bars (the strategy
        contract), so this changes nothing; a strategy that fails here fails again, and
        is reported, at its first real bar."""
        for s in self.symbols:
            w = self.feed.windows[s]
            if w.last_time is not None and len(w) >= self.warmup:
                with contextlib.suppress(Exception):
                    self.strategy.target(w.frame())
                return

    def target_at(self, symbol: str, t: int) -> float:
        """The strategy's target for ``symbol`` at bar time ``t`` (NaN: no view or no bar)."""
        window = self.feed.windows[symbol]
        if window.index_of(t) is None:
            return math.nan
        bars = window.frame(upto=t)
        if len(bars) < self.warmup:
            return math.nan
        started = time.perf_counter()
        out = self.strategy.target(bars)
        self.target_seconds += time.perf_counter() - started
        if not isinstance(out, pd.Series) or len(out) != len(bars):
            raise StrategyError(
                f"{type(self.strategy).__name__}.target for {symbol} must return a Series "
                "on bars.index"
            )
        value = float(out.iloc[-1])
        if abs(value) > 1.0 + 1e-12:
            raise StrategyError(
                f"{type(self.strategy).__name__}.target for {symbol} at {_ts(t)}: "
                f"{value!r} is outside [-1, 1]"
            )
        return value

    def _decide(self, t: int, received: float, catch_up: bool) -> Awaitable[None] | None:
        """Decide bar time ``t`` now; what the sink left to await (None: nothing to do)."""
        if self.last_decided is not None and t <= self.last_decided:
            return None
        if not self.may_decide(self.id):
            log.info("%s: bar %s not decided (not trading now)", self.id, _ts(t))
            return None
        self.last_decided = t
        started = time.perf_counter()
        self.timing["wait"].add(started - received)
        complete = self._complete.pop(t, started)
        self.timing["start"].add(started - complete)
        gathering = time.perf_counter()
        n = len(self.symbols)
        inputs = self._inputs.pop(t, None) or _Inputs(n)
        if inputs.count < n:  # symbols without a bar yet: read now
            windows = self.feed.windows
            for j in np.flatnonzero(~inputs.arrived).tolist():
                inputs.rows[:, j] = windows[self.symbols[j]].view_at(t)
        mark, high, low, close = inputs.rows
        target = inputs.targets
        for j in np.flatnonzero(~inputs.targeted & (close == close)).tolist():
            target[j] = self.target_at(self.symbols[j], t)
        target[close != close] = math.nan  # no bar at t: no decision
        arrived = inputs.received
        when = _ts(t)
        working = self.working(self.id, when)
        skip = np.zeros(n, dtype=bool)
        if working:
            skip[:] = [s in working for s in self.symbols]
            skip &= close == close
        self.timing["gather"].add(time.perf_counter() - gathering)
        self._forget_before(t)
        sized = time.perf_counter()
        self.ledger.settle(SETTLE_ALL)  # every fill received so far is in the past
        self.ledger.observe(high, low)
        sigma = adv = None
        if self._sqrt:
            sigma, adv = self._impact_inputs(t)
        decision = self.ledger.decide(t, close, mark, target, sigma, adv, skip)
        self.decisions += 1
        plans = []
        for j, qty in decision.orders.items():
            pos = self.ledger.pos[j]
            reducing = pos != 0 and (pos > 0) != (qty > 0) and abs(qty) <= abs(pos) + 1e-9
            plans.append(
                OrderPlan(
                    strategy=self.id,
                    symbol=self.symbols[j],
                    bar_time=when,
                    quantity=qty,
                    ref_price=float(close[j]),
                    target=decision.targets.get(j),
                    leg="flatten" if self.ledger.halted else None,
                    reducing=reducing,
                    received=received if arrived[j] is None else arrived[j],
                    exits=self._exits(j, qty, float(close[j])),
                    complete=complete,
                    catch_up=catch_up,
                )
            )
        self.timing["sizing"].add(time.perf_counter() - sized)
        return self.sink(self, decision, plans)

    def _forget_before(self, t: int) -> None:
        """Drop what was kept for bar times up to ``t`` that were never decided (a symbol
        without a bar at a decided time, a time skipped by a catch-up)."""
        if self._inputs:
            for old in [k for k in self._inputs if k <= t]:
                del self._inputs[old]
        if len(self._complete) > 2:
            for old in [k for k in self._complete if k < t]:
                del self._complete[old]

    def _exits(self, j: int, qty: float, close: float) -> ExitSpec | None:
        """The protective exits the position after this order needs (None: none)."""
        s = self.settings
        if not (s.stop_loss > 0 or s.trailing_stop > 0 or s.take_profit > 0) or self.ledger.halted:
            return None
        old = float(self.ledger.pos[j])
        new = old + qty
        if abs(new) <= 1e-9:
            return None
        same_side = old != 0.0 and (old > 0) == (new > 0)
        reducing = same_side and abs(new) < abs(old)
        adding = same_side and abs(new) > abs(old)
        side = 1.0 if qty > 0 else -1.0
        estimate = slipped_price(s.slippage, close, abs(qty), side)
        entry = float(self.ledger.entry_px[j])
        peak = float(self.ledger.peak_px[j])
        return ExitSpec(
            quantity=-new,
            stop_loss=s.stop_loss,
            trailing_stop=s.trailing_stop,
            take_profit=s.take_profit,
            estimate=estimate,
            entry=entry if reducing else None,
            peak=peak if (reducing or adding) and peak == peak else None,
            old_entry=entry if adding else None,
            old_quantity=old if adding else 0.0,
        )

    def _impact_inputs(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Rolling volatility and mean volume as the engine's ``impact_inputs`` gives them
        at bar t (the values the kernel's sizing estimate uses at t's close)."""
        window = int(getattr(self.settings.slippage, "window", 20))
        n = len(self.symbols)
        sigma = np.zeros(n)
        adv = np.zeros(n)
        for j, s in enumerate(self.symbols):
            w = self.feed.windows[s]
            df = w.frame(upto=t)
            if len(df) < 2:
                continue
            close = df["close"]
            sig = close.pct_change(fill_method=None).rolling(window, min_periods=2).std().shift(1)
            av = df["volume"].rolling(window, min_periods=1).mean().shift(1)
            sigma[j] = float(sig.iloc[-1]) if sig.iloc[-1] == sig.iloc[-1] else 0.0
            adv[j] = float(av.iloc[-1]) if av.iloc[-1] == av.iloc[-1] else 0.0
        return sigma, adv


def _ts(t: int) -> datetime:
    return datetime.fromtimestamp(t / 1e9, tz=UTC)
