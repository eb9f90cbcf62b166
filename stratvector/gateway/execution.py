"""Orders out, fills in: the write-ahead order protocol and everything IB reports back.

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
4. ``mark_submitted`` and every later ``orderStatus`` are journaled in order.

Receiving: every execution (live ``execDetails`` or recovered by ``reqExecutions``) goes
through :meth:`Executor.ingest_fill` -- journaled idempotently by ``execId`` and booked
into its strategy's ledger once; commission reports follow. Latency is measured twice:
the symbol's bar received -> ``placeOrder`` returned (``send_latency``), the
decision's last bar received -> ``placeOrder`` returned (``decision_latency``: the
part the trader controls once sizing can run; not counted for the catch-up decision
after a start or reconnect, which enters every position at once), and ``placeOrder`` -> IB's ``Filled``
status (``fill_latency``, the ``order_latency_seconds`` metric).

Order types: market by default; ``limit`` sends a limit at the sizing close plus
(buys) or minus (sells) ``limit_offset_bps``, rounded to the contract's tick away from
the offset (never paying more than the offset allows).
"""

from __future__ import annotations

import asyncio
import logging
import math
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
from stratvector.gateway.runner import OrderPlan
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import Intent, make_order_ref, parse_order_ref
from stratvector.store.events import LIMIT_BREACH

log = logging.getLogger("stratvector.gateway.execution")

EXIT_LEGS = frozenset({"stop", "trail", "tp", "exit"})
ACK_TIMEOUT = 10.0
FILL_WAIT = 2.0  # seconds a fill waits for its commission report before it is journaled
UNSET = 1.7976931348623157e308
ORDER_REJECTED = "order_rejected"


@dataclass
class Tracked:
    """An order of ours: sent in this process or found at IB by reconciliation."""

    ref: str
    strategy: str
    symbol: str
    bar_time: datetime
    leg: str | None
    quantity: float  # signed
    trade: Trade | None = None
    sent_at: float | None = None
    filled_at: float | None = None
    closed: bool = False  # not at IB after a reconnect: finished while we were away

    @property
    def done(self) -> bool:
        if self.closed:
            return True
        return self.trade is not None and self.trade.orderStatus.status in OrderStatus.DoneStates


@dataclass
class ExecStats:
    sent: int = 0
    replayed: int = 0
    refused: int = 0
    rejected: int = 0
    fills: int = 0
    send_latency: LatencyWindow = field(default_factory=LatencyWindow)
    decision_latency: LatencyWindow = field(default_factory=LatencyWindow)
    checks: LatencyWindow = field(default_factory=LatencyWindow)
    intent: LatencyWindow = field(default_factory=LatencyWindow)
    place: LatencyWindow = field(default_factory=LatencyWindow)
    fill_latency: LatencyWindow = field(default_factory=LatencyWindow)


@dataclass
class _Outgoing:
    """A plan made ready to send: its IB order, bracket children and journal intents."""

    plan: OrderPlan
    ref: str
    order: Order
    children: list[tuple[str, str, Order, ExitSpec]]
    intents: list[Intent]


@dataclass
class Staged:
    """A batch checked and handed to the journal (:meth:`Executor.stage`), to deliver."""

    batch: list[_Outgoing] = field(default_factory=list)
    written: Future[list[Any]] | None = None  # the intents' commit on the writer thread
    asked: float = 0.0
    refused: list[tuple[OrderPlan, str, Any]] = field(default_factory=list)
    kill: tuple[str, tuple[Any, ...]] | None = None  # a breach that trips the kill switch


class Executor:
    """Sends planned orders through the journal and books what IB reports. No I/O here."""

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
        self.ledgers = ledgers
        self.guard = guard
        self.client_id = client_id
        self.order_type = order_type
        self.limit_offset_bps = limit_offset_bps
        self.tif = time_in_force
        self.account = ""
        self.on_change = on_change
        self.on_latency = on_latency
        self.orders: dict[str, Tracked] = {}
        self.stats = ExecStats()
        self._fix: dict[str, list[tuple[str, str, ExitSpec]]] = {}  # parent ref -> children
        # refs with a cancel or modify IB has not confirmed: (since, expected order fields)
        self._acks: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._seen: set[str] = set()
        self._live: set[str] = set()  # refs of orders that may still be working
        self._unjournaled: dict[str, dict[str, Any]] = {}  # fills waiting for commission
        self._bound = False

    # ------------------------------------------------------------------ wiring

    def bind(self) -> None:
        if self._bound:
            return
        self.ib.execDetailsEvent += self._on_exec
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.openOrderEvent += self._on_open_order
        self._bound = True

    def unbind(self) -> None:
        if not self._bound:
            return
        self.ib.execDetailsEvent -= self._on_exec
        self.ib.commissionReportEvent -= self._on_commission
        self.ib.orderStatusEvent -= self._on_status
        self.ib.openOrderEvent -= self._on_open_order
        self._bound = False

    # ------------------------------------------------------------------ sending

    async def submit(self, plans: list[OrderPlan], *, check_risk: bool = True) -> list[str]:
        """Gate, check, journal and send ``plans`` in order; returns the refs sent."""
        return await self.deliver(self.stage(plans, check_risk=check_risk))

    def stage(self, plans: list[OrderPlan], *, check_risk: bool = True) -> Staged:
        """Gate and check ``plans`` and hand their intents to the journal's writer, without
        waiting: the commit runs on the writer thread while the caller's event loop goes
        on. :meth:`deliver` then sends what the journal wrote.

        A breach that trips the kill switch stops the batch: none of its orders is sent
        (the kill switch cancels and flattens instead)."""
        staged = Staged()
        checked = time.perf_counter()
        # the account once: IB's positions, our working orders, then each order checked
        account = (
            self.guard.account(plans[0].bar_time, self._working_quantities())
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
        staged.batch = [self._build(plan, ref) for plan, ref in ready]
        if staged.batch:
            staged.asked = time.perf_counter()
            staged.written = self.jq.begin(
                self.journal.orders.record_intents,
                [intent for item in staged.batch for intent in item.intents],
                urgent=True,
            )
        return staged

    async def deliver(self, staged: Staged) -> list[str]:
        """Wait for the staged intents' commit and place the orders the journal wrote now
        (not replays); then journal the refusals and trip the kill switch if one asked."""
        sent = await self._send(staged) if staged.written is not None else []
        for plan, ref, decision in staged.refused:
            await self._refuse(plan, ref, decision)
        if staged.kill is not None:
            message, kill = staged.kill
            await self.guard.trip(None, message, kill)
        return sent

    async def _send(self, staged: Staged) -> list[str]:
        assert staged.written is not None
        records = await asyncio.wrap_future(staged.written)
        self.stats.intent.add(time.perf_counter() - staged.asked)
        written: dict[str, Any] = {}
        for rec in records:
            if isinstance(rec, Exception):
                log.error("not sent: %s", rec)
            else:
                written[rec.order_ref] = rec
        sent = []
        for item in staged.batch:
            ref = item.ref
            rec = written.get(ref)
            if rec is None or any(i.order_ref not in written for i in item.intents):
                continue
            if not rec.created:
                self.stats.replayed += 1
                log.info("%s is already journaled (%s); not sent again", ref, rec.status)
                continue
            if not self.ib.isConnected():
                log.warning("%s journaled but not sent: disconnected (reconciled later)", ref)
                continue
            self._place_with_children(item.plan, ref, item.order, item.children)
            now = time.perf_counter()
            self.stats.send_latency.add(now - item.plan.received)
            if item.plan.complete is not None and not item.plan.catch_up:
                self.stats.decision_latency.add(now - item.plan.complete)
            sent.append(ref)
        return sent

    def _build(self, plan: OrderPlan, ref: str) -> _Outgoing:
        """The IB order of a plan, its protective children and all their intents."""
        inst = self.contracts.get(plan.symbol)
        side = plan.side
        qty = abs(plan.quantity)
        order_type, limit = "MKT", None
        if self.order_type == "limit" and plan.leg is None:
            order_type = "LMT"
            limit = limit_price(plan.ref_price, side, self.limit_offset_bps, inst.min_tick)
        account = self.account or None
        intents = [
            Intent(
                ref,
                plan.strategy,
                plan.symbol,
                plan.bar_time,
                side,
                qty,
                order_type,
                limit_price=limit,
                time_in_force=self.tif,
                account=account,
                target=plan.target,
                detail={"ref_price": plan.ref_price, "leg": plan.leg},
            )
        ]
        order = Order(
            action=side,
            totalQuantity=qty,
            orderType=order_type,
            tif=self.tif,
            orderRef=ref,
            account=self.account,
        )
        if limit is not None:
            order.lmtPrice = limit
        children: list[tuple[str, str, Order, ExitSpec]] = []
        spec = plan.exits if plan.leg is None else None
        for leg in spec.legs() if spec is not None else ():
            cref = make_order_ref(plan.strategy, plan.symbol, plan.bar_time, leg)
            child, lmt, stp = spec.order(leg, cref, self.tif, self.account, inst.min_tick)
            intents.append(
                Intent(
                    cref,
                    plan.strategy,
                    plan.symbol,
                    plan.bar_time,
                    child.action,
                    abs(spec.quantity),
                    child.orderType,
                    limit_price=lmt,
                    stop_price=stp,
                    time_in_force=self.tif,
                    account=account,
                    detail={"parent": ref, "exits": _spec_dict(spec)},
                )
            )
            children.append((cref, leg, child, spec))
        return _Outgoing(plan, ref, order, children, intents)

    def _place_with_children(
        self,
        plan: OrderPlan,
        ref: str,
        order: Order,
        children: list[tuple[str, str, Order, ExitSpec]],
    ) -> None:
        """Place a strategy order and its bracket children (the last one transmits all),
        after cancelling the exits of the position it changes."""
        self._cancel_exits(plan.strategy, plan.symbol)
        if children:
            order.transmit = False
        placing = time.perf_counter()
        trade = self._place(ref, plan, order)
        self.stats.place.add(time.perf_counter() - placing)
        for i, (cref, leg, child, spec) in enumerate(children):
            child.parentId = trade.order.orderId
            child.transmit = i == len(children) - 1
            cplan = OrderPlan(
                plan.strategy, plan.symbol, plan.bar_time, spec.quantity, plan.ref_price, None, leg
            )
            self._place(cref, cplan, child)
            if spec.needs_fixing(leg):
                self._fix.setdefault(ref, []).append((cref, leg, spec))

    def _cancel_exits(self, strategy: str, symbol: str) -> None:
        """Cancel the working protective orders of a position about to change."""
        for t in self._live_orders():
            if (
                t.strategy == strategy
                and t.symbol == symbol
                and t.leg in EXIT_LEGS
                and t.trade is not None
                and not t.done
            ):
                self.ib.cancelOrder(t.trade.order)
                self._acks[t.ref] = (time.monotonic(), None)

    def _place(self, ref: str, plan: OrderPlan, order: Order) -> Trade:
        inst = self.contracts.get(plan.symbol)
        trade = self.ib.placeOrder(inst.contract, order)
        self.orders[ref] = Tracked(
            ref,
            plan.strategy,
            plan.symbol,
            plan.bar_time,
            plan.leg,
            plan.quantity,
            trade,
            sent_at=time.perf_counter(),
        )
        self._live.add(ref)
        self.stats.sent += 1
        self.jq.submit(
            self.journal.orders.mark_submitted,
            ref,
            trade.order.orderId,
            None,
            client_id=self.client_id,
            account=self.account or None,
        )
        self.on_change()
        return trade

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
            tick = self.contracts.get(intent.symbol).min_tick
            child, _, _ = spec.order(cparts.leg, c.order_ref, c.time_in_force, self.account, tick)
            rebuilt.append((c.order_ref, cparts.leg, child, spec))
        self._place_with_children(plan, intent.order_ref, order, rebuilt)
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
        self._fix.setdefault(pref, []).append((child.order_ref, parts.leg, spec))
        if parent is not None and parent.status == "Filled" and parent.avg_fill_price:
            self._fix_children(pref, float(parent.avg_fill_price))

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

    # ------------------------------------------------------------------ state queries

    def _working_quantities(self) -> dict[str, float]:
        """Signed quantities still to fill of our working orders, by symbol."""
        out: dict[str, float] = {}
        for t in self._live_orders():
            if t.trade is None:
                continue
            rem = float(t.trade.orderStatus.remaining or 0.0)
            if t.trade.orderStatus.status == OrderStatus.PendingSubmit or rem <= 0:
                rem = abs(t.quantity) - float(t.trade.orderStatus.filled or 0.0)
            out[t.symbol] = out.get(t.symbol, 0.0) + math.copysign(max(rem, 0.0), t.quantity)
        return out

    def _live_orders(self) -> list[Tracked]:
        """Orders that may still be working (done ones are dropped from the set)."""
        out = []
        for ref in list(self._live):
            t = self.orders.get(ref)
            if t is None or t.done:
                self._live.discard(ref)
            else:
                out.append(t)
        return out

    def working(self, strategy: str, before: datetime) -> set[str]:
        """The symbols in which a strategy order of ``strategy`` decided before ``before``
        is still working at IB (so they are not decided again yet)."""
        return {
            t.symbol
            for t in self._live_orders()
            if t.strategy == strategy
            and t.leg not in EXIT_LEGS
            and t.bar_time < before
            and t.trade is not None
        }

    def in_flight(self) -> int:
        """Orders sent and not yet acknowledged by IB (still PendingSubmit)."""
        return sum(
            1
            for t in self._live_orders()
            if t.trade is not None and t.trade.orderStatus.status == OrderStatus.PendingSubmit
        )

    def pending_acks(self) -> int:
        """Cancels and modifications IB has not confirmed yet (stale ones are dropped)."""
        now = time.monotonic()
        for ref, (at, _) in list(self._acks.items()):
            if now - at > ACK_TIMEOUT:
                log.warning(
                    "%s: no confirmation of a cancel/modify from IB in %.0f s", ref, ACK_TIMEOUT
                )
                del self._acks[ref]
        return len(self._acks)

    def resync(self, trades: list[Trade]) -> None:
        """After a (re)connect: bind our orders to IB's current ``Trade`` objects; an order
        IB no longer lists finished while we were away (its fills are recovered)."""
        by_ref = {t.order.orderRef: t for t in trades if parse_order_ref(t.order.orderRef)}
        for ref, tracked in list(self.orders.items()):
            trade = by_ref.pop(ref, None)
            if trade is not None:
                tracked.trade, tracked.closed = trade, False
                self._live.add(ref)
            elif not tracked.done:
                tracked.closed = True
        for trade in by_ref.values():
            self.track(trade)
        self._prune()

    def _prune(self, keep: int = 10_000) -> None:
        if len(self.orders) <= keep:
            return
        done = [ref for ref, t in self.orders.items() if t.done]
        for ref in done[: len(self.orders) - keep]:
            del self.orders[ref]

    def track(self, trade: Trade) -> Tracked | None:
        """Adopt an order IB knows (after a reconnect) under its ref; None if not ours."""
        ref = trade.order.orderRef
        parts = parse_order_ref(ref)
        if parts is None:
            return None
        t = self.orders.get(ref)
        signed = float(trade.order.totalQuantity) * (1 if trade.order.action == "BUY" else -1)
        if t is None:
            t = Tracked(ref, parts.strategy, parts.symbol, parts.bar_time, parts.leg, signed)
            self.orders[ref] = t
        t.trade = trade
        if not t.done:
            self._live.add(ref)
        return t

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
                self._acks[trade.order.orderRef] = (time.monotonic(), None)
            n += 1
        return n

    # ------------------------------------------------------------------ receiving

    def ingest_fill(self, fill: Fill) -> bool:
        """Journal and book one execution (live or recovered); False if already known."""
        ex = fill.execution
        exec_id = ex.execId
        if not exec_id or exec_id in self._seen:
            report = fill.commissionReport
            if exec_id and report is not None and report.execId == exec_id:
                self._commission(exec_id, report)
            return False
        self._seen.add(exec_id)
        ref = ex.orderRef or None
        parts = parse_order_ref(ref)
        symbol = self.contracts.symbol_for(fill.contract) or fill.contract.symbol
        side = "BUY" if ex.side in ("BOT", "BUY") else "SELL"
        qty = float(ex.shares)
        price = float(ex.price)
        when = ex.time
        report = fill.commissionReport
        commission = None
        if report is not None and report.execId == exec_id and report.commission < UNSET:
            commission = float(report.commission)
        record = {
            "args": (exec_id, ref, when, qty, price, side),
            "symbol": symbol,
            "strategy": parts.strategy if parts else None,
            "commission": commission,
            "commission_currency": (report.currency or None) if commission is not None else None,
            "realized_pnl": _finite(report.realizedPNL) if commission is not None else None,
            "ib_order_id": ex.orderId or None,
            "perm_id": ex.permId or None,
            "exchange": ex.exchange or None,
            "account": ex.acctNumber or None,
        }
        if commission is None:
            # IB sends the commission report right after: journal both in one write
            self._unjournaled[exec_id] = record
            asyncio.get_running_loop().call_later(FILL_WAIT, self._journal_fill, exec_id)
        else:
            self._write_fill(record)
        if parts is not None:
            ledger = self.ledgers.get(parts.strategy)
            if ledger is not None:
                signed = qty if side == "BUY" else -qty
                ledger.add_fill(
                    exec_id,
                    symbol,
                    signed,
                    price,
                    commission,
                    _ns(when),
                    exit_leg=parts.leg in EXIT_LEGS,
                )
        self.stats.fills += 1
        self.on_change()
        return True

    def _on_open_order(self, trade: Trade) -> None:
        """IB echoes an order: a modification is confirmed when the echo carries it."""
        ref = trade.order.orderRef
        pending = self._acks.get(ref)
        if pending is None or pending[1] is None:
            return
        o = trade.order
        if all(getattr(o, k) == v for k, v in pending[1].items()):
            del self._acks[ref]
            self.on_change()

    def _fix_children(self, parent_ref: str, fill_price: float) -> None:
        """The parent filled: move its children to their exact (fill-relative) prices."""
        self._acks.pop(parent_ref + "#fix", None)
        self.on_change()
        for cref, leg, spec in self._fix.pop(parent_ref, []):
            t = self.orders.get(cref)
            if t is None or t.trade is None or t.done or t.trade.orderStatus.filled:
                continue
            order = spec.fixed(
                leg, t.trade.order, fill_price, self.contracts.get(t.symbol).min_tick
            )
            expected = {
                "orderType": order.orderType,
                "auxPrice": order.auxPrice,
                "lmtPrice": order.lmtPrice,
            }
            self.ib.placeOrder(t.trade.contract, order)
            self._acks[cref] = (time.monotonic(), expected)
            price = order.auxPrice if leg == "stop" else order.lmtPrice
            log.info(
                "%s fixed at %s %.6f after the entry filled at %.6f",
                cref,
                order.orderType,
                price,
                fill_price,
            )

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        self.ingest_fill(fill)

    def _on_commission(self, trade: Trade, fill: Fill, report: Any) -> None:
        self._commission(fill.execution.execId, report)

    def _write_fill(self, record: dict[str, Any]) -> None:
        kwargs = {k: v for k, v in record.items() if k != "args"}
        self.jq.submit(self.journal.fills.record_fill, *record["args"], **kwargs)

    def _journal_fill(self, exec_id: str) -> None:
        record = self._unjournaled.pop(exec_id, None)
        if record is not None:
            self._write_fill(record)

    def flush_fills(self) -> None:
        """Journal the fills still waiting for their commission report."""
        for exec_id in list(self._unjournaled):
            self._journal_fill(exec_id)

    def _commission(self, exec_id: str, report: Any) -> None:
        if report.commission >= UNSET:
            return
        parts = parse_order_ref(self._ref_of(exec_id))
        if parts is not None and parts.strategy in self.ledgers:
            self.ledgers[parts.strategy].set_commission(exec_id, float(report.commission))
        record = self._unjournaled.pop(exec_id, None)
        if record is not None:
            record["commission"] = float(report.commission)
            record["commission_currency"] = report.currency or None
            record["realized_pnl"] = _finite(report.realizedPNL)
            self._write_fill(record)
            self.on_change()
            return
        self.jq.submit(
            self.journal.fills.record_commission,
            exec_id,
            float(report.commission),
            report.currency or None,
            _finite(report.realizedPNL),
        )
        self.on_change()

    def _ref_of(self, exec_id: str) -> str | None:
        f = self.ib.wrapper.fills.get(exec_id)
        return f.execution.orderRef if f is not None else None

    def _on_status(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if parse_order_ref(ref) is None:
            return
        st = trade.orderStatus
        if st.status in ("ValidationError", OrderStatus.PendingSubmit, ""):
            return
        t = self.orders.get(ref)
        if t is None:
            t = self.track(trade)
        message = None
        code = 0
        if trade.log:
            last = trade.log[-1]
            message, code = (last.message or None), last.errorCode
        if ref in self._acks and st.status in OrderStatus.DoneStates:
            del self._acks[ref]
        if st.status == OrderStatus.Filled and ref in self._fix:
            # after the messages already received (a child may have filled in the same bar)
            self._acks[ref + "#fix"] = (time.monotonic(), None)
            asyncio.get_running_loop().call_soon(self._fix_children, ref, float(st.avgFillPrice))
        if st.status == OrderStatus.Filled and t is not None and t.filled_at is None:
            t.filled_at = time.perf_counter()
            if t.sent_at is not None:
                latency = t.filled_at - t.sent_at
                self.stats.fill_latency.add(latency)
                if self.on_latency is not None:
                    self.on_latency(latency)
        if st.status == OrderStatus.Filled:
            # the journal closes the order itself when its fills cover the quantity
            self.on_change()
            return
        self.jq.submit(
            self.journal.orders.record_status,
            ref,
            st.status,
            float(st.filled or 0.0),
            float(st.remaining) if st.remaining is not None else None,
            float(st.avgFillPrice) if st.avgFillPrice else None,
            last_fill_price=float(st.lastFillPrice) if st.lastFillPrice else None,
            ib_order_id=trade.order.orderId or None,
            perm_id=trade.order.permId or st.permId or None,
            message=message,
        )
        if code and st.status in (OrderStatus.Cancelled, OrderStatus.Inactive):
            self.stats.rejected += 1
            parts = parse_order_ref(ref)
            self.jq.submit(
                self.journal.events.record_event,
                ORDER_REJECTED,
                {"order_ref": ref, "code": code},
                message=f"{ref}: {message}",
                severity="error",
                strategy=parts.strategy if parts else None,
                symbol=parts.symbol if parts else None,
            )
        self.on_change()


def _spec_dict(spec: ExitSpec) -> dict[str, Any]:
    return {k: getattr(spec, k) for k in spec.__dataclass_fields__}


def limit_price(ref: float, side: str, offset_bps: float, tick: float) -> float:
    """The limit of a marketable limit order: ``ref`` moved ``offset_bps`` against us,
    rounded to ``tick`` toward ``ref`` (a buy never pays more than the offset allows)."""
    tick = tick if tick > 0 else 0.01
    if side == "BUY":
        raw = ref * (1.0 + offset_bps * 1e-4)
        return round(math.floor(raw / tick + 1e-9) * tick, 10)
    raw = ref * (1.0 - offset_bps * 1e-4)
    return round(math.ceil(raw / tick - 1e-9) * tick, 10)


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) and abs(v) < 1e300 else None


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000) * 1000
