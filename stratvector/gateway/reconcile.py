"""After every (re)connect: make the journal and IB agree before anything new is sent.

In this order (each step needs the previous one):

1. :meth:`Reconciler.executions` -- every execution IB reports (the startup sync's
   ``reqExecutions`` and one more filtered from the last journaled fill) is journaled
   and booked, idempotently by ``execId``: fills that happened while disconnected or
   while the trader was down are recovered, none twice.
2. :meth:`Reconciler.orders` -- every journaled intent not known to be finished is
   matched by ``orderRef`` to IB's open and completed orders and executions. Found:
   its ids and status are journaled and the order is tracked again. Submitted but
   nowhere at IB: closed as ``Cancelled`` (source ``reconcile``). Never submitted (the
   process died between the journal write and ``placeOrder``): returned as *unsent*.
3. :meth:`Reconciler.positions` -- IB's position in each traded symbol against the
   journal's (all strategies plus unattributed fills). A difference is a position the
   journal does not know: ``adopt`` books it as a fill of the one strategy trading the
   symbol (unattributed if several or none do); ``halt`` trips the kill switch.
4. :meth:`Reconciler.resolve_unsent` -- an unsent intent is sent now, under its own ref,
   only if its bar is still the newest closed bar of its symbol (it then fills at the
   open the backtest would have used); otherwise it is abandoned and the strategy decides
   afresh on the newest bar.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ib_async import IB, ExecutionFilter

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.execution import Executor
from stratvector.gateway.guard import Guard
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import OrderRecord, parse_order_ref
from stratvector.store.events import RECONCILE

log = logging.getLogger("stratvector.gateway.reconcile")

QTY_TOL = 1e-6


@dataclass
class ReconcileReport:
    fills_recovered: int = 0
    orders_matched: int = 0
    orders_closed: int = 0
    unsent: list[OrderRecord] = field(default_factory=list)
    unknown_positions: dict[str, float] = field(default_factory=dict)
    resent: int = 0
    abandoned: int = 0


class Reconciler:
    """Matches IB's view (executions, orders, positions) with the journal's. No I/O here."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        executor: Executor,
        contracts: ContractBook,
        ledgers: dict[str, StrategyLedger],
        guard: Guard,
        *,
        owners: dict[str, list[str]],
        policy: str = "halt",
        timeout: float = 60.0,
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.executor = executor
        self.contracts = contracts
        self.ledgers = ledgers
        self.guard = guard
        self.owners = owners  # symbol -> strategies trading it
        self.policy = policy
        self.timeout = timeout
        self.account = ""

    async def executions(self, report: ReconcileReport) -> None:
        since = await self.jq.call(self.journal.fills.last_fill_time, self.account or None)
        filt = ExecutionFilter(acctCode=self.account)
        if since is not None:
            filt.time = (since - timedelta(minutes=1)).astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
        fills = await asyncio.wait_for(self.ib.reqExecutionsAsync(filt), self.timeout)
        for f in [*self.ib.fills(), *fills]:
            if self.executor.ingest_fill(f):
                report.fills_recovered += 1
        if report.fills_recovered:
            log.info("recovered %d fill(s) from IB", report.fills_recovered)

    async def orders(self, report: ReconcileReport) -> None:
        self.executor.resync(self.ib.trades())
        pending: list[OrderRecord] = await self.jq.call(self.journal.orders.pending_intents)
        if not pending:
            return
        trades = {t.order.orderRef: t for t in self.ib.trades() if t.order.orderRef}
        executed = {f.execution.orderRef for f in self.ib.fills() if f.execution.orderRef}
        for intent in pending:
            ref = intent.order_ref
            trade = trades.get(ref)
            if trade is not None:
                self.executor.track(trade)
                st = trade.orderStatus
                order_id = trade.order.orderId
                perm_id = trade.order.permId or st.permId or None
                if order_id:
                    self.jq.submit(
                        self.journal.orders.mark_submitted,
                        ref,
                        order_id,
                        perm_id,
                        client_id=trade.order.clientId or None,
                    )
                if st.status and st.status not in ("PendingSubmit", "ValidationError"):
                    self.jq.submit(
                        self.journal.orders.record_status,
                        ref,
                        st.status,
                        float(st.filled or 0.0),
                        float(st.remaining) if st.remaining is not None else None,
                        float(st.avgFillPrice) if st.avgFillPrice else None,
                        perm_id=perm_id,
                        source="reconcile",
                    )
                report.orders_matched += 1
                parent_ref = (intent.detail or {}).get("parent")
                if parent_ref and st.status not in ("Filled", "Cancelled", "ApiCancelled"):
                    parent = await self.jq.call(self.journal.orders.get, parent_ref)
                    self.executor.restore_fix(intent, parent)
            elif ref in executed:
                report.orders_matched += 1  # its fills are journaled; they close it
            elif intent.submitted:
                self.jq.submit(
                    self.journal.orders.record_status,
                    ref,
                    "Cancelled",
                    intent.filled,
                    0.0,
                    intent.avg_fill_price,
                    message="not at IB after reconnect (no open or completed order, no execution)",
                    source="reconcile",
                )
                report.orders_closed += 1
            else:
                report.unsent.append(intent)
        await self.jq.drain()

    async def positions(self, report: ReconcileReport, now: datetime) -> None:
        ib_positions = await asyncio.wait_for(self.ib.reqPositionsAsync(), self.timeout)
        at_ib: dict[str, tuple[float, float]] = {}
        for p in ib_positions:
            if self.account and p.account != self.account:
                continue
            sym = self.contracts.symbol_for(p.contract)
            if sym is None:
                continue  # not a traded symbol: not ours to reconcile
            qty, _ = at_ib.get(sym, (0.0, 0.0))
            at_ib[sym] = (qty + float(p.position), float(p.avgCost))
        self.executor.flush_fills()
        await self.jq.drain()
        journaled: dict[str, float] = {}
        for pos in await self.jq.call(self.journal.fills.positions):
            journaled[pos.symbol] = journaled.get(pos.symbol, 0.0) + pos.quantity
        for sym in self.contracts.symbols:
            ib_qty = at_ib.get(sym, (0.0, 0.0))[0]
            diff = ib_qty - journaled.get(sym, 0.0)
            if abs(diff) > QTY_TOL:
                report.unknown_positions[sym] = diff
        if not report.unknown_positions:
            return
        text = ", ".join(f"{s} {q:+g}" for s, q in report.unknown_positions.items())
        if self.policy == "adopt":
            for sym, diff in report.unknown_positions.items():
                self._adopt(sym, diff, at_ib.get(sym, (0.0, 0.0))[1], now)
            await self.jq.call(
                self.journal.events.record_event,
                RECONCILE,
                {"adopted": report.unknown_positions},
                message=f"adopted positions the journal did not know: {text}",
                severity="warning",
            )
            log.warning("adopted positions the journal did not know: %s", text)
        else:
            await self.jq.call(
                self.journal.events.record_event,
                RECONCILE,
                {"unknown_positions": report.unknown_positions},
                message=f"IB holds positions the journal does not know: {text}",
                severity="error",
            )
            await self.guard.trip(
                None,
                f"IB holds positions the journal does not know ({text}); check the account, "
                "then resume (on_unknown_position = 'adopt' books them instead)",
            )

    def _adopt(self, symbol: str, diff: float, avg_cost: float, now: datetime) -> None:
        owners = self.owners.get(symbol, [])
        strategy = owners[0] if len(owners) == 1 else None
        price = avg_cost if math.isfinite(avg_cost) and avg_cost > 0 else 0.0
        exec_id = f"adopt:{self.account}:{symbol}:{now.strftime('%Y%m%dT%H%M%S.%fZ')}"
        side = "BUY" if diff > 0 else "SELL"
        self.jq.submit(
            self.journal.fills.record_fill,
            exec_id,
            None,
            now,
            abs(diff),
            price,
            side,
            symbol=symbol,
            strategy=strategy,
            commission=0.0,
            account=self.account or None,
        )
        if strategy is not None:
            t = int(now.timestamp() * 1_000_000) * 1000
            self.ledgers[strategy].add_fill(exec_id, symbol, diff, price, 0.0, t, exit_leg=True)

    async def resolve_unsent(
        self,
        report: ReconcileReport,
        latest: Callable[[str, str], int | None],
    ) -> None:
        children: dict[str, list[OrderRecord]] = {}
        parents = []
        for intent in report.unsent:
            parent = (intent.detail or {}).get("parent")
            if parent:
                children.setdefault(parent, []).append(intent)
            else:
                parents.append(intent)
        sent_parents: set[str] = set()
        for intent in parents:
            parts = parse_order_ref(intent.order_ref)
            bar_ns = int(intent.bar_time.timestamp() * 1_000_000) * 1000
            newest = latest(intent.strategy, intent.symbol)
            gated = parts is not None and parts.leg is None and self.guard.halted(intent.strategy)
            current = parts is not None and newest == bar_ns and not gated
            kids = children.get(intent.order_ref, [])
            if current and await self.executor.resend(intent, kids):
                report.resent += 1 + len(kids)
                sent_parents.add(intent.order_ref)
                log.info("sent %s, journaled before the restart but never sent", intent.order_ref)
                continue
            reason = (
                "halted"
                if gated
                else f"never sent; bar {intent.bar_time:%Y-%m-%d %H:%M} is no longer the "
                "newest closed bar, the strategy decides again"
            )
            await self.jq.call(self.journal.orders.abandon, intent.order_ref, reason)
            report.abandoned += 1
        for parent, kids in children.items():
            if parent in sent_parents:
                continue
            for kid in kids:
                await self.jq.call(
                    self.journal.orders.abandon, kid.order_ref, "never sent; its entry was not sent"
                )
                report.abandoned += 1
