"""From a strategy's decision to orders, and what a halt does to them.

:class:`Acting` is the runners' sink and the kill switch's hand: each decision's orders
are checked and journaled (:meth:`~stratvector.gateway.execution.Executor.stage`) in
the event-loop callback that completed the bar time and sent once the journal has
them (in that same callback when the intents were committed inline); a strategy's
drawdown halt or an account limit trips the switch first. A halt
(from a breach, a strategy's drawdown or an operator) cancels the open orders in its
scope and, with ``flatten_on_kill``, closes the positions with orders that pass the
halt gate. A position left without a configured protective exit, because IB refused
it (:mod:`~stratvector.gateway.receiver`), trips its strategy's kill switch
(:meth:`Acting.unprotected`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping

from stratvector.gateway.execution import Executor, Staged
from stratvector.gateway.guard import Guard
from stratvector.gateway.runner import SETTLE_ALL, OrderPlan, StrategyRunner
from stratvector.gateway.sizing import Decision
from stratvector.risk.limits import Breach
from stratvector.store.control import GLOBAL

log = logging.getLogger("stratvector.gateway.acting")


class Acting:
    """Decisions to orders, halts to cancels and flattening. No I/O of its own."""

    def __init__(
        self,
        guard: Guard,
        executor: Executor,
        runners: Mapping[str, StrategyRunner],
        *,
        flatten_on_kill: bool,
        on_global_halt: Callable[[str], None],
        changed: Callable[[], None],
    ) -> None:
        self.guard = guard
        self.executor = executor
        self.runners = runners
        self.flatten_on_kill = flatten_on_kill
        self.on_global_halt = on_global_halt
        self.changed = changed
        self.trips: set[asyncio.Future[None]] = set()  # kill switches being tripped
        executor.receiver.on_unprotected = self.unprotected

    def sink(
        self, runner: StrategyRunner, decision: Decision, plans: list[OrderPlan]
    ) -> Awaitable[None]:
        """Act on a decision: checked and handed to the journal now, sent when the
        intents are committed (the returned awaitable). A strategy halted by this
        decision or an account limit tripped first takes the slower path."""
        when = dt.datetime.fromtimestamp(decision.time / 1e9, tz=dt.UTC)
        kill = self.guard.account_kill(when)
        if decision.halted_now or kill:
            return self._halting(runner, decision, plans, kill)
        staged = self.executor.stage(plans) if plans else None
        if staged is not None:
            self.executor.send_committed(staged)
        return self._deliver(staged)

    async def _deliver(self, staged: Staged | None) -> None:
        if staged is not None:
            await self.executor.deliver(staged)
        self.changed()

    async def _halting(
        self,
        runner: StrategyRunner,
        decision: Decision,
        plans: list[OrderPlan],
        kill: tuple[Breach, ...],
    ) -> None:
        if decision.halted_now:
            await self.guard.trip(
                runner.id,
                f"{runner.id}: equity {decision.equity:,.2f} at or below "
                f"{1 - runner.settings.max_drawdown:.0%} of its peak "
                f"{runner.ledger.peak_equity:,.2f} ([risk] max_drawdown); positions closed",
            )
        if kill:
            await self.guard.trip(None, "; ".join(b.message for b in kill), kill)
        if plans:
            await self.executor.submit(plans)
        self.changed()

    def unprotected(self, strategy: str, reason: str) -> None:
        """IB refused a protective exit of a position of ``strategy`` (the receiver's
        ``on_unprotected``): trip the strategy's kill switch, which cancels its open
        orders and, with ``flatten_on_kill``, closes its positions. Called from IB's
        events: the trip runs as a task (in :attr:`trips` until it is done)."""
        if self.guard.halted(strategy):
            log.warning("%s (already halted)", reason)
            return
        task = asyncio.ensure_future(self.guard.trip(strategy, reason))
        self.trips.add(task)
        task.add_done_callback(self._tripped)
        self.changed()

    def _tripped(self, task: asyncio.Future[None]) -> None:
        self.trips.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("kill switch trip failed: %s", task.exception())
        self.changed()

    async def on_halt(self, scope: str, reason: str) -> None:
        """The kill switch of ``scope`` (a strategy id, or :data:`GLOBAL`) tripped."""
        strategy = None if scope == GLOBAL else scope
        cancelled = self.executor.cancel_open(strategy)
        log.warning("halted %s (%s): cancelled %d open order(s)", scope, reason, cancelled)
        if self.flatten_on_kill:
            await self.executor.submit(self.flatten_plans(strategy), check_risk=False)
        if strategy is None:
            self.on_global_halt(reason)
        self.changed()

    def flatten_plans(self, strategy: str | None = None) -> list[OrderPlan]:
        """Closing orders for every position of ``strategy`` (None: all strategies)."""
        plans = []
        for sid, runner in self.runners.items():
            if strategy is not None and sid != strategy:
                continue
            ledger = runner.ledger
            ledger.settle(SETTLE_ALL)
            last = runner.last_decided or runner.feed.latest()
            if last is None:
                continue
            when = dt.datetime.fromtimestamp(last / 1e9, tz=dt.UTC)
            for j, sym in enumerate(ledger.symbols):
                qty = float(ledger.pos[j])
                if qty == 0:
                    continue
                plans.append(
                    OrderPlan(
                        sid,
                        sym,
                        when,
                        -qty,
                        runner.feed.windows[sym].last_close,
                        0.0,
                        leg="flatten",
                        reducing=True,
                    )
                )
        return plans
