"""Orders out: the write-ahead order protocol.

Sending (:meth:`Executor.submit`), for each :class:`~stratvector.gateway.runner.OrderPlan`:

1. the halt gate (strategy orders only; ``flatten`` and protective legs pass) and the
   pre-trade risk check. A refused order is still journaled -- as an intent closed at
   once as ``Abandoned`` with the reason -- plus a ``limit_breach`` event, so the refusal
   is on record and a replay of the same decision is refused the same way;
2. ``ref = make_order_ref(strategy, symbol, bar time[, leg])``; the intents of the
   whole decision (with their protective children) are committed to the journal in one
   transaction (on the journal thread, awaited): one disk sync per bar, not per order;
3. only if the journal says the intent is new: ``placeOrder`` with ``orderRef=ref``.
   A replayed intent (a restart or reconnect re-deciding the same bar) is never sent
   again: reconciliation matches it to IB's orders and executions instead;
4. ``mark_submitted`` is journaled, and every later ``orderStatus`` in order (by the
   :class:`~stratvector.gateway.receiver.Receiver`).

Latency is measured here twice: the symbol's bar received -> ``placeOrder`` returned
(``send_latency``), the decision's last bar received -> ``placeOrder`` returned
(``decision_latency``: the part the trader controls once sizing can run; not counted
for the catch-up decision after a start or reconnect, which enters every position at
once). ``placeOrder`` -> IB's ``Filled`` (``fill_latency``) is measured on receipt.

What a plan becomes at IB and in the journal (order types, limit prices, bracket
children) is built by :mod:`~stratvector.gateway.outgoing`; the committed batch is placed
by :mod:`~stratvector.gateway.placing`.

:class:`Executor` is the one object the rest of the gateway holds. It sends, and it
composes the :class:`~stratvector.gateway.order_book.OrderBook` (our orders: pure state
and queries) and the :class:`~stratvector.gateway.receiver.Receiver` (fills,
commissions, statuses and order echoes from IB), whose entry points it offers as its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ib_async import IB, Fill, Order, Trade
from ib_async.order import OrderStatus

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.exits import ExitSpec
from stratvector.gateway.guard import Guard
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.latency import LatencyWindow
from stratvector.gateway.order_book import EXIT_LEGS, OrderBook, Tracked
from stratvector.gateway.outgoing import Outgoing, build, limit_price
from stratvector.gateway.placing import Placer
from stratvector.gateway.receiver import Receiver
from stratvector.gateway.runner import OrderPlan
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import make_order_ref, parse_order_ref
from stratvector.store.events import LIMIT_BREACH

__all__ = ["EXIT_LEGS", "ExecStats", "Executor", "Staged", "Tracked", "limit_price"]

log = logging.getLogger("stratvector.gateway.execution")


@dataclass
class ExecStats:
    """The executor's counters and latency windows, sending and receiving side."""

    sent: int = 0
    replayed: int = 0
    refused: int = 0
    rejected: int = 0
    fills: int = 0
    send_latency: LatencyWindow = field(default_factory=LatencyWindow)
    decision_latency: LatencyWindow = field(default_factory=LatencyWindow)
    checks: LatencyWindow = field(default_factory=LatencyWindow)
    intent: LatencyWindow = field(default_factory=LatencyWindow)
    intent_cpu: LatencyWindow = field(default_factory=LatencyWindow)  # inline commits
    place: LatencyWindow = field(default_factory=LatencyWindow)
    # after a batch's write handed its orders over, the wait for a CPU inside the write
    write_wait: LatencyWindow = field(default_factory=LatencyWindow)
    fill_latency: LatencyWindow = field(default_factory=LatencyWindow)


@dataclass
class Staged:
    """A batch checked and handed to the journal (:meth:`Executor.stage`), to deliver."""

    batch: list[Outgoing] = field(default_factory=list)
    written: Future[list[Any]] | None = None  # the intents' commit on the writer thread
    asked: float = 0.0
    refused: list[tuple[OrderPlan, str, Any]] = field(default_factory=list)
    kill: tuple[str, tuple[Any, ...]] | None = None  # a breach that trips the kill switch
    sent: list[str] | None = None  # placed already (:meth:`Executor.send_committed`)


class Executor:
    """Sends planned orders through the journal; books what IB reports through its
    :class:`~stratvector.gateway.receiver.Receiver`. No I/O here.

    ``account`` (set by the trader once IB names it; only the sending side reads it)
    goes on every order and intent."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        contracts: ContractBook,
        ledgers: dict[str, StrategyLedger],
        guard: Guard,
        *,
        client_id: int,
        order_type: str = "market",
        limit_offset_bps: float = 10.0,
        time_in_force: str = "DAY",
        on_change: Callable[[], None] = lambda: None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.contracts = contracts
        self.guard = guard
        self.client_id = client_id
        self.order_type = order_type
        self.limit_offset_bps = limit_offset_bps
        self.tif = time_in_force
        self.on_change = on_change
        self.stats = ExecStats()
        self._inline: bool | None = None  # intents committed inline (SQLite journals)
        self.book = OrderBook()
        self.placer = Placer(
            ib, jq, contracts, self.book, self.stats, client_id=client_id, on_change=on_change
        )
        self.receiver = Receiver(
            ib,
            jq,
            contracts,
            ledgers,
            self.book,
            self.stats,
            on_change=on_change,
            on_latency=on_latency,
        )

    @property
    def account(self) -> str:
        """IB's account id, ``""`` until IB names it; on every order and intent."""
        return self.placer.account

    @account.setter
    def account(self, value: str) -> None:
        self.placer.account = value

    # ------------------------------------------------------------------ receiving

    def bind(self) -> None:
        """Start booking what IB reports (:meth:`Receiver.bind`)."""
        self.receiver.bind()

    def unbind(self) -> None:
        """Stop booking what IB reports."""
        self.receiver.unbind()

    def ingest_fill(self, fill: Fill) -> bool:
        """Journal and book one execution (live or recovered); False if already known."""
        return self.receiver.ingest_fill(fill)

    def flush_fills(self) -> None:
        """Journal the fills still waiting for their commission report."""
        self.receiver.flush_fills()

    # ------------------------------------------------------------------ the order book

    @property
    def orders(self) -> dict[str, Tracked]:
        """Our orders by ref (:attr:`OrderBook.orders`)."""
        return self.book.orders

    def working(self, strategy: str, before: datetime) -> set[str]:
        """The symbols in which a strategy order of ``strategy`` decided before ``before``
        is still working at IB (so they are not decided again yet)."""
        return self.book.working(strategy, before)

    def in_flight(self) -> int:
        """Orders sent and not yet acknowledged by IB (still PendingSubmit)."""
        return self.book.in_flight()

    def pending_acks(self) -> int:
        """Cancels and modifications IB has not confirmed yet (stale ones are dropped)."""
        return self.book.pending_acks()

    def track(self, trade: Trade) -> Tracked | None:
        """Adopt an order IB knows (after a reconnect) under its ref; None if not ours."""
        return self.book.track(trade)

    def resync(self, trades: list[Trade]) -> None:
        """After a (re)connect: bind our orders to IB's current ``Trade`` objects; an order
        IB no longer lists finished while we were away (its fills are recovered)."""
        self.book.resync(trades)

    # ------------------------------------------------------------------ sending

    async def submit(self, plans: list[OrderPlan], *, check_risk: bool = True) -> list[str]:
        """Gate, check, journal and send ``plans`` in order; returns the refs sent."""
        return await self.deliver(self.stage(plans, check_risk=check_risk))

    def stage(self, plans: list[OrderPlan], *, check_risk: bool = True) -> Staged:
        """Gate and check ``plans`` and hand their intents to the journal, without waiting
        for the commit (or, on SQLite with the writer idle, committing them inline: see
        :meth:`JournalQueue.begin`). :meth:`deliver` then sends what the journal wrote.

        A breach that trips the kill switch stops the batch: none of its orders is sent
        (the kill switch cancels and flattens instead)."""
        staged = Staged()
        checked = time.perf_counter()
        # with every limit off there is nothing to check (nor an account to read)
        check_risk = check_risk and bool(self.guard.limits.enabled)
        # the account once: IB's positions, our working orders, then each order checked
        account = (
            self.guard.account(plans[0].bar_time, self.book.working_quantities())
            if plans and check_risk
            else None
        )
        ready: list[tuple[OrderPlan, str]] = []
        for plan in plans:
            ref = make_order_ref(plan.strategy, plan.symbol, plan.bar_time, plan.leg)
            passes_gate = plan.leg is not None or plan.reducing
            if not passes_gate and self.guard.halted(plan.strategy):
                log.info("%s: halted; %s not sent", plan.strategy, ref)
                continue
            if check_risk:
                proposal, decision = self.guard.check(
                    plan.strategy,
                    plan.symbol,
                    plan.quantity,
                    plan.ref_price,
                    plan.bar_time,
                    account,
                )
                if not decision.allowed:
                    staged.refused.append((plan, ref, decision))
                    if decision.trips_kill:
                        kill = tuple(b for b in decision.breaches if b.trips_kill)
                        staged.kill = (decision.message, kill)
                        ready.clear()
                        break
                    continue
                # counted for the order rate now, so the next order of the batch sees it
                # (conservative: a replay that is then not re-sent still counts)
                self.guard.record_sent(proposal)
                account = self.guard.after(account, plan.symbol, plan.quantity)
            ready.append((plan, ref))
        if plans:
            self.stats.checks.add(time.perf_counter() - checked)
        staged.batch = [
            build(
                plan,
                ref,
                self.contracts.get(plan.symbol),
                order_type=self.order_type,
                limit_offset_bps=self.limit_offset_bps,
                tif=self.tif,
                account=self.account,
            )
            for plan, ref in ready
        ]
        if staged.batch:
            staged.asked = time.perf_counter()
            cpu = time.thread_time()
            staged.written = self.jq.begin(
                self.journal.orders.record_intents,
                [intent for item in staged.batch for intent in item.intents],
                urgent=True,
                inline=self._inline_intents(),
            )
            if staged.written.done():  # committed inline: its CPU share of the time
                self.stats.intent_cpu.add(time.thread_time() - cpu)
        return staged

    def _inline_intents(self) -> bool:
        """Commit intents on the event loop's thread when the writer is idle: only on
        SQLite (a local file, ~1 ms), never on a server whose stall would stall the loop."""
        if self._inline is None:
            self._inline = self.journal.backend == "sqlite"
        return self._inline

    def send_committed(self, staged: Staged) -> None:
        """Place the staged orders now if their intents are committed already (inline):
        in the callback that decided them, not in a task that would first wait for every
        other ready callback (the rest of the bar's messages, the last bar's fills)."""
        written = staged.written
        # a failed commit is left to deliver(), which raises it
        if (
            staged.sent is None
            and written is not None
            and written.done()
            and written.exception() is None
        ):
            staged.sent = self.placer.place_written(staged, written.result())

    async def deliver(self, staged: Staged) -> list[str]:
        """Wait for the staged intents' commit and place the orders the journal wrote now
        (not replays), unless :meth:`send_committed` placed them; then journal the
        refusals and trip the kill switch if one asked."""
        if staged.sent is not None:
            sent = staged.sent
        else:
            sent = await self._send(staged) if staged.written is not None else []
        for plan, ref, decision in staged.refused:
            await self._refuse(plan, ref, decision)
        if staged.kill is not None:
            message, kill = staged.kill
            await self.guard.trip(None, message, kill)
        return sent

    async def _send(self, staged: Staged) -> list[str]:
        assert staged.written is not None
        written_now = staged.written
        records = (
            written_now.result()
            if written_now.done()  # committed inline: no loop round trip
            else await asyncio.wrap_future(written_now)
        )
        return self.placer.place_written(staged, records)

    async def resend(self, intent: Any, children: list[Any] = ()) -> bool:
        """Send a journaled intent that never reached IB (found by reconciliation), under
        its own ref, unchanged, with its journaled protective children."""
        parts = parse_order_ref(intent.order_ref)
        if parts is None or not self.ib.isConnected():
            return False
        order = Order(
            action=intent.side,
            totalQuantity=intent.quantity,
            orderType=intent.order_type,
            tif=intent.time_in_force,
            orderRef=intent.order_ref,
            account=self.account,
        )
        if intent.limit_price is not None:
            order.lmtPrice = intent.limit_price
        plan = OrderPlan(
            intent.strategy,
            intent.symbol,
            intent.bar_time,
            intent.signed_quantity,
            float((intent.detail or {}).get("ref_price") or 0.0),
            intent.target,
            parts.leg,
        )
        rebuilt = []
        for c in children:
            cparts = parse_order_ref(c.order_ref)
            spec = ExitSpec(**(c.detail or {}).get("exits", {}))
            tick = self.contracts.get(intent.symbol)  # its tick_at: the increment at a price
            child, _, _ = spec.order(cparts.leg, c.order_ref, c.time_in_force, self.account, tick)
            rebuilt.append((c.order_ref, cparts.leg, child, spec))
        self.placer.place_with_children(plan, intent.order_ref, order, rebuilt)
        return True

    def restore_fix(self, child: Any, parent: Any) -> None:
        """After a restart: a child still waiting for its parent's fill price gets fixed
        when the parent fills, or now if it already has."""
        parts = parse_order_ref(child.order_ref)
        exits = (child.detail or {}).get("exits")
        if parts is None or not exits:
            return
        spec = ExitSpec(**exits)
        if not spec.needs_fixing(parts.leg):
            return
        pref = (child.detail or {}).get("parent")
        self.book.fix.setdefault(pref, []).append((child.order_ref, parts.leg, spec))
        if parent is not None and parent.status == "Filled" and parent.avg_fill_price:
            self.receiver.fix_children(pref, float(parent.avg_fill_price))

    async def _refuse(self, plan: OrderPlan, ref: str, decision: Any) -> None:
        self.stats.refused += 1
        log.warning("%s refused by pre-trade risk: %s", ref, decision.message)
        journal = self.journal

        def write() -> None:
            rec = journal.orders.record_intent(
                ref,
                plan.strategy,
                plan.symbol,
                plan.bar_time,
                plan.side,
                abs(plan.quantity),
                "MKT",
                account=self.account or None,
                target=plan.target,
                detail={"ref_price": plan.ref_price, "refused": decision.message},
            )
            if rec.created:
                journal.orders.abandon(ref, f"refused by pre-trade risk: {decision.message}")
            journal.events.record_event(
                LIMIT_BREACH,
                {"order_ref": ref, "breaches": [b.limit for b in decision.breaches]},
                message=f"{ref} refused: {decision.message}",
                severity="warning",
                strategy=plan.strategy,
                symbol=plan.symbol,
            )

        await self.jq.call(write, urgent=True)
        self.on_change()

    def open_trades(self, strategy: str | None = None) -> list[Trade]:
        """IB's open orders of ours (of one strategy, or all)."""
        out = []
        for trade in self.ib.openTrades():
            parts = parse_order_ref(trade.order.orderRef)
            if parts is None:
                if strategy is None:
                    out.append(trade)
                continue
            if strategy is None or parts.strategy == strategy:
                out.append(trade)
        return out

    def cancel_open(self, strategy: str | None = None) -> int:
        """Cancel our open orders (of one strategy, or every open order of this client)."""
        n = 0
        for trade in self.open_trades(strategy):
            if trade.orderStatus.status in OrderStatus.DoneStates:
                continue
            self.ib.cancelOrder(trade.order)
            if trade.order.orderRef:
                self.book.expect_ack(trade.order.orderRef)
            n += 1
        return n
