"""Fills, commissions, order statuses and order echoes: what IB reports about our orders.

:class:`Receiver` listens to ib_async's ``execDetailsEvent``, ``commissionReportEvent``,
``orderStatusEvent`` and ``openOrderEvent`` (:meth:`Receiver.bind`) and keeps the
journal, the strategies' ledgers and the :class:`~stratvector.gateway.order_book.OrderBook`
in step with them:

- every execution (live ``execDetails`` or recovered by ``reqExecutions``) goes through
  :meth:`Receiver.ingest_fill`: journaled idempotently by ``execId`` and booked into its
  strategy's ledger once. IB sends the commission report right after the execution, so
  a fill without one waits up to :data:`FILL_WAIT` seconds and both are journaled in
  one write (:meth:`Receiver.flush_fills` writes the waiting ones at once: on stop, and
  before reconciliation compares positions with the journal); a later report updates
  the journaled fill;
- every ``orderStatus`` but ``Filled`` is journaled in order (the journal closes an
  order itself once its fills cover the quantity); a ``Cancelled``/``Inactive`` status
  with an IB error code is a rejection, handed to
  :class:`~stratvector.gateway.refusals.Refusals`. ``Filled`` measures ``placeOrder``
  -> IB's ``Filled`` (``fill_latency``, the ``order_latency_seconds`` metric) and, for a
  parent with bracket children to fix, re-prices the children at the fill price
  (:meth:`Receiver.fix_children`, after the messages already received);
- a cancel or modification is confirmed when IB reports the order done or echoes it
  (``openOrder``) with the expected fields, or settled by IB's refusal of it.

What a refusal means -- counted and journaled, a bracket that can never be transmitted
cancelled, a refused protective exit answered by abandoning the entry or halting the
strategy -- is decided in :mod:`~stratvector.gateway.refusals` (its docstring states the
policies). It runs only on a refusal: the per-status and per-fill paths only check that
the (nearly always empty) set of abandoned brackets is empty.

ib_async keeps every order's ``Trade`` and every ``Fill`` for the life of the
connection (~15 KB per order: some 65 MB a day at 5,000 orders). Once an order is done,
its fills are journaled with their commissions and nothing of ours still refers to it,
:meth:`Receiver.forget_settled` drops it from ib_async and from the order book, after
:data:`SETTLED_AGE` seconds (late duplicates of its messages come within seconds). A
re-sent execution of a forgotten order is still recognised by its ``execId``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ib_async import IB, Fill, Trade
from ib_async.order import OrderStatus

from stratvector.gateway.contracts import ContractBook
from stratvector.gateway.journal_queue import JournalQueue
from stratvector.gateway.order_book import EXIT_LEGS, OrderBook
from stratvector.gateway.refusals import Refusals
from stratvector.gateway.sizing import StrategyLedger
from stratvector.store import parse_order_ref

if TYPE_CHECKING:
    from stratvector.gateway.execution import ExecStats

log = logging.getLogger("stratvector.gateway.receiver")

FILL_WAIT = 2.0  # seconds a fill waits for its commission report before it is journaled
UNSET = 1.7976931348623157e308  # IB's "no value" (sys.float_info.max)
_NOT_JOURNALED = frozenset({OrderStatus.ValidationError, OrderStatus.PendingSubmit, ""})
SETTLED_AGE = 300.0  # seconds after its last status a settled order is forgotten


class Receiver:
    """Books what IB reports about our orders into the journal, ledgers and order book."""

    def __init__(
        self,
        ib: IB,
        jq: JournalQueue,
        contracts: ContractBook,
        ledgers: dict[str, StrategyLedger],
        book: OrderBook,
        stats: ExecStats,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_latency: Callable[[float], None] | None = None,
        on_unprotected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ib = ib
        self.jq = jq
        self.journal = jq.journal
        self.contracts = contracts
        self.ledgers = ledgers
        self.book = book
        self.stats = stats
        self.on_change = on_change
        self.on_latency = on_latency
        # what a refusal means; on_unprotected (strategy, reason): a position lost a
        # protective exit, trips its kill switch
        self.refusals = Refusals(
            ib, jq, ledgers, book, stats, on_change=on_change, on_unprotected=on_unprotected
        )
        self.seen: set[str] = set()  # execIds journaled and booked (or loaded from the journal)
        self._unjournaled: dict[str, dict[str, Any]] = {}  # fills waiting for commission
        self._bound = False

    @property
    def on_unprotected(self) -> Callable[[str, str], None] | None:
        """Told ``(strategy, reason)`` when a position lost a protective exit (the
        refusal policy's hook, :attr:`Refusals.on_unprotected`; :class:`Acting` wires it
        to the strategy's kill switch)."""
        return self.refusals.on_unprotected

    @on_unprotected.setter
    def on_unprotected(self, fn: Callable[[str, str], None] | None) -> None:
        self.refusals.on_unprotected = fn

    # ------------------------------------------------------------------ wiring

    def bind(self) -> None:
        """Listen to IB's execution, commission, status and open-order events (once)."""
        if self._bound:
            return
        self.ib.execDetailsEvent += self._on_exec
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_status
        self.ib.openOrderEvent += self._on_open_order
        self._bound = True

    def unbind(self) -> None:
        """Stop listening (the trader's stop)."""
        if not self._bound:
            return
        self.ib.execDetailsEvent -= self._on_exec
        self.ib.commissionReportEvent -= self._on_commission
        self.ib.orderStatusEvent -= self._on_status
        self.ib.openOrderEvent -= self._on_open_order
        self._bound = False

    # ------------------------------------------------------------------ fills

    def ingest_fill(self, fill: Fill) -> bool:
        """Journal and book one execution (live or recovered); False if already known."""
        ex = fill.execution
        exec_id = ex.execId
        if not exec_id or exec_id in self.seen:
            report = fill.commissionReport
            if exec_id and report is not None and report.execId == exec_id:
                self._commission(exec_id, report)
            return False
        self.seen.add(exec_id)
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
        if self.book.abandoned and ref in self.book.abandoned:
            self.refusals.abandoned_filled(ref)
        self.stats.fills += 1
        self.on_change()
        return True

    def flush_fills(self) -> None:
        """Journal the fills still waiting for their commission report."""
        for exec_id in list(self._unjournaled):
            self._journal_fill(exec_id)

    def _on_exec(self, trade: Trade, fill: Fill) -> None:
        self.ingest_fill(fill)

    def _on_commission(self, trade: Trade, fill: Fill, report: Any) -> None:
        self._commission(fill.execution.execId, report)

    def forget_settled(self, before: datetime) -> int:
        """Drop the orders settled before ``before`` (UTC) from ib_async's books and ours:
        done at IB, every fill journaled with its commission, no fix or confirmation of
        ours pending. Returns how many were dropped."""
        w = self.ib.wrapper
        dropped = []
        for key, trade in w.trades.items():
            if trade.orderStatus.status not in OrderStatus.DoneStates or not trade.log:
                continue
            if trade.log[-1].time >= before:
                continue
            ref = trade.order.orderRef
            if ref in self.book.fix or ref in self.book.acks:
                continue
            if any(
                not f.commissionReport.execId or f.execution.execId in self._unjournaled
                for f in trade.fills
            ):
                continue
            dropped.append((key, trade))
        for key, trade in dropped:
            del w.trades[key]
            if w.permId2Trade.get(trade.order.permId) is trade:
                del w.permId2Trade[trade.order.permId]
            for f in trade.fills:
                w.fills.pop(f.execution.execId, None)
            ref = trade.order.orderRef
            tracked = self.book.orders.get(ref)
            if tracked is not None and tracked.trade is trade:
                del self.book.orders[ref]
                self.book.live.discard(ref)
        return len(dropped)

    def _write_fill(self, record: dict[str, Any]) -> None:
        kwargs = {k: v for k, v in record.items() if k != "args"}
        self.jq.submit(self.journal.fills.record_fill, *record["args"], **kwargs)

    def _journal_fill(self, exec_id: str) -> None:
        record = self._unjournaled.pop(exec_id, None)
        if record is not None:
            self._write_fill(record)

    def _commission(self, exec_id: str, report: Any) -> None:
        """A commission report: into the ledger, and into the journal with its fill if the
        fill still waits for it, else as an update of the journaled fill."""
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

    # ------------------------------------------------------------------ orders

    def _on_status(self, trade: Trade) -> None:
        ref = trade.order.orderRef
        if parse_order_ref(ref) is None:
            return
        st = trade.orderStatus
        if st.status in _NOT_JOURNALED:
            if st.status == OrderStatus.ValidationError and ref in self.book.acks:
                self.refusals.modification_warned(trade)
            return
        book = self.book
        t = book.orders.get(ref)
        if t is None:
            t = book.track(trade)
        message = None
        code = 0
        if trade.log:
            last = trade.log[-1]
            message, code = (last.message or None), last.errorCode
        modifying = False  # a modification of ours was waiting for IB's confirmation
        if ref in book.acks and st.status in OrderStatus.DoneStates:
            modifying = book.acks.pop(ref)[1] is not None
        if book.closing and ref in book.closing:  # our own cancel of a staged order
            message = book.closing[ref]
        if st.status == OrderStatus.Filled and ref in book.fix:
            # after the messages already received (a child may have filled in the same bar)
            book.expect_ack(ref + "#fix")
            asyncio.get_running_loop().call_soon(self.fix_children, ref, float(st.avgFillPrice))
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
            self.refusals.rejected(trade, t, code, message, modifying)
        if book.abandoned and ref in book.abandoned:
            self.refusals.abandoned_status(ref, t)
        self.on_change()

    def _on_open_order(self, trade: Trade) -> None:
        """IB echoes an order: a modification is confirmed when the echo carries it."""
        ref = trade.order.orderRef
        acks = self.book.acks
        pending = acks.get(ref)
        if pending is None or pending[1] is None:
            return
        o = trade.order
        if all(getattr(o, k) == v for k, v in pending[1].items()):
            del acks[ref]
            self.on_change()

    def fix_children(self, parent_ref: str, fill_price: float) -> None:
        """The parent filled: move its children to their exact (fill-relative) prices."""
        book = self.book
        book.acks.pop(parent_ref + "#fix", None)
        self.on_change()
        for cref, leg, spec in book.fix.pop(parent_ref, []):
            t = book.orders.get(cref)
            if t is None or t.trade is None or t.done or t.trade.orderStatus.filled:
                continue
            order = spec.fixed(leg, t.trade.order, fill_price, self.contracts.get(t.symbol))
            # the child was placed staged (transmit=False) unless it was the bracket's
            # last: a modification sent that way would be held by TWS, never reaching IB
            order.transmit = True
            expected = {
                "orderType": order.orderType,
                "auxPrice": order.auxPrice,
                "lmtPrice": order.lmtPrice,
            }
            self.ib.placeOrder(t.trade.contract, order)
            book.expect_ack(cref, expected)
            price = order.auxPrice if leg == "stop" else order.lmtPrice
            log.info(
                "%s fixed at %s %.6f after the entry filled at %.6f",
                cref,
                order.orderType,
                price,
                fill_price,
            )


def _finite(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) and abs(v) < 1e300 else None


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000) * 1000
